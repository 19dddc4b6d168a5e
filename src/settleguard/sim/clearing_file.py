"""Write realistic UnionPay 全渠道 clearing files for tests and the demo: the INN detail (ASCII, CRLF, 607
characters a line, 41 fixed-width fields separated by one space) and the GBK RD summary, with injectable
长款 (lines the network has and we do not), 短款 (our transactions left out), amount and fee differences and a
summary that disagrees.

中文：模拟银联清算文件（INN 明细与 RD 汇总表），可注入长款、短款、金额差、手续费差与汇总不符，供测试与演示使用。
The layout is the one reconciliation/clearing.py reads (docs/reconciliation.md); the values of fields the reader
ignores are plausible constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from settleguard.reconciliation.clearing import INN_LINE, INN_NAMES, INN_WIDTHS, RD_TITLE
from settleguard.reconciliation.clearing_matching import NetworkLine, OurTxn, Totals, detail_totals
from settleguard.settlement.model import TxnKind

KIND_CODES = {int(TxnKind.SALE): "S22", int(TxnKind.VOID): "S31", int(TxnKind.REFUND): "S32",
              int(TxnKind.REVERSAL): "S30"}
ACQUIRER = "48020000"  # 代理机构 / 收单机构 identification code written into the files (made up)
OWNER = "898110048160001"  # the ACP merchant id in the file name (made up)


@dataclass(frozen=True)
class ClearingTxn:
    """One transaction as the network clears it."""

    merchant_code: str
    terminal_no: str
    stan: str
    sent_at: datetime  # aware
    amount_fen: int
    fee_fen: int  # + the merchant pays (D)
    credit: bool = True  # the settlement amount is owed to the merchant (a sale); False for voids and refunds
    txn_code: str = "S22"
    account: str = "622202******0123"
    mcc: str = "5411"
    query_id: str = ""

    @property
    def settle_fen(self) -> int:
        return self.amount_fen if self.credit else -self.amount_fen

    @property
    def net_fen(self) -> int:
        return self.settle_fen - self.fee_fen


@dataclass
class Injected:
    """What a writer injected: the keys a reconciliation must find (and nothing else)."""

    long: list[ClearingTxn] = field(default_factory=list)  # 长款
    short: list[OurTxn] = field(default_factory=list)  # 短款
    amount: list[ClearingTxn] = field(default_factory=list)
    fee: list[ClearingTxn] = field(default_factory=list)


def _dc(value: int, debit_positive: bool) -> str:
    debit = value >= 0 if debit_positive else value < 0
    return ("D" if debit else "C") + f"{abs(value):012d}"


def inn_line(x: ClearingTxn, tz: str = "Asia/Shanghai") -> str:
    """The 607-character INN line of ``x`` (no line end)."""
    local = x.sent_at.astimezone(ZoneInfo(tz))
    values = [""] * len(INN_WIDTHS)
    values[0] = x.txn_code
    values[1] = ACQUIRER
    values[2] = ACQUIRER
    values[3] = x.stan
    values[4] = f"{local:%m%d%H%M%S}"
    values[5] = x.account
    values[6] = f"{x.amount_fen:012d}"
    values[7] = x.mcc
    values[8] = "03"
    values[9] = x.query_id or f"{local:%Y%m%d%H%M%S}{x.stan}"[:21]
    values[12] = "01"
    values[15] = _dc(x.fee_fen, debit_positive=True)
    values[16] = _dc(x.settle_fen, debit_positive=False)
    values[19] = "01"
    values[20] = "01"
    values[21] = "000000"
    values[27] = x.merchant_code
    values[32] = _dc(x.net_fen, debit_positive=False)
    values[33] = x.terminal_no
    values[39] = "1"
    for i in (31, 35, 36):
        values[i] = "C000000000000"
    values[37] = "0" * 12
    line = " ".join(v.ljust(w)[:w] for v, w in zip(values, INN_WIDTHS, strict=True))
    assert len(line) == INN_LINE, (len(line), INN_NAMES)
    return line


def inn_name(day: date, owner: str = OWNER) -> str:
    return f"INN{day:%y%m%d}88ZM_{owner}"


def write_inn(directory: Path, day: date, txns: Iterable[ClearingTxn], *, owner: str = OWNER,
              tz: str = "Asia/Shanghai") -> Path:
    """The INN file of clearing day ``day`` in ``directory`` (ASCII, CRLF)."""
    path = directory / inn_name(day, owner)
    with path.open("w", encoding="ascii", newline="") as f:
        for x in txns:
            f.write(inn_line(x, tz) + "\r\n")
    return path


def _network(x: ClearingTxn) -> NetworkLine:
    return NetworkLine(0, x.merchant_code, x.terminal_no, x.stan, x.sent_at, x.amount_fen, x.fee_fen, x.settle_fen,
                       x.net_fen)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def rd_text(day: date, txns: Sequence[ClearingTxn], *, by_merchant: bool = True, owner: str = OWNER,
            total_off: dict[str, int] | None = None) -> str:
    """The summary table: one section per 商户代码 (or one for the file's ``owner`` with ``by_merchant=False``),
    rows by 交易类型 x 卡性质 and a 合计 row. ``total_off``: merchant code -> fen added to its 合计 net (a summary
    that disagrees with the detail)."""
    groups: dict[str, list[ClearingTxn]] = {}
    for x in txns:
        groups.setdefault(x.merchant_code if by_merchant else owner, []).append(x)
    out = [f"{'':16}中国银联{RD_TITLE}", ""]
    for code, rows in sorted(groups.items()):
        out += [f"商户代码：{code}        收单机构：{ACQUIRER}", f"清算日期：{day:%Y%m%d}        清算币种：156 人民币",
                "交易类型    卡性质      笔数      借方交易金额      贷方交易金额      费用      资金清算差额",
                "-" * 80]
        by_type: dict[str, list[ClearingTxn]] = {}
        for x in rows:
            by_type.setdefault("消费" if x.credit else "撤销退货", []).append(x)
        for name, part in sorted(by_type.items()):
            t = detail_totals(_network(x) for x in part)
            out.append(_row(f"{name}    借记卡", t))
        t = detail_totals(_network(x) for x in rows)
        off = (total_off or {}).get(code, 0)
        if off:
            t = Totals(t.txn_count, t.debit_fen, t.credit_fen, t.fee_fen, t.net_fen + off)
            out[-len(by_type):] = []  # the type rows would then not add up: give only the 合计 row
        out += [_row("合计", t), ""]
    return "\r\n".join(out) + "\r\n"


def _row(label: str, t: Totals) -> str:
    return (f"{label:<16}{t.txn_count:>8}  {_yuan(t.debit_fen):>16}  {_yuan(t.credit_fen):>16}  {_yuan(t.fee_fen):>10}"
            f"  {_yuan(t.net_fen):>14}")


def write_rd(directory: Path, day: date, txns: Sequence[ClearingTxn], *, encoding: str = "gbk",
             owner: str = OWNER, by_merchant: bool = True, total_off: dict[str, int] | None = None) -> Path:
    path = directory / f"RD{day:%y%m%d}01ACOM_{owner}"
    path.write_bytes(rd_text(day, txns, by_merchant=by_merchant, owner=owner, total_off=total_off).encode(encoding))
    return path


def from_ours(ours: Sequence[OurTxn], *, stan_from: int = 1) -> list[ClearingTxn]:
    """Our transactions as the network would clear them (same STAN, or a made-up 8xxxxx one where ours has none)."""
    out = []
    for i, o in enumerate(ours):
        out.append(ClearingTxn(merchant_code=o.merchant_no, terminal_no=o.terminal_no,
                               stan=o.stan or f"8{(stan_from + i) % 100_000:05d}", sent_at=o.occurred_at,
                               amount_fen=o.amount_fen, fee_fen=o.fee_fen, credit=o.kind == int(TxnKind.SALE),
                               txn_code=KIND_CODES.get(o.kind, "S22")))
    return out


def clearing_day(directory: Path, day: date, ours: Sequence[OurTxn], *, long: int = 1, short: int = 1,
                 amount_off: int = 0, fee_off: int = 0, rd_encoding: str = "gbk",
                 total_off: dict[str, int] | None = None, tz: str = "Asia/Shanghai") -> tuple[Path, Path, Injected]:
    """The INN and RD files of ``day`` for ``ours`` with ``short`` of them left out (短款), ``long`` lines added that
    we do not have (长款: STAN 9xxxxx at the first transaction's terminal), and ``amount_off`` / ``fee_off`` lines
    whose amount / fee is one fen more. The RD summary agrees with the INN lines (unless ``total_off``)."""
    ordered = sorted(ours, key=lambda o: (o.occurred_at, o.merchant_no, o.external_ref))
    if long and not ordered:
        raise ValueError("a 长款 needs a transaction to copy its merchant and terminal")
    inj = Injected()
    step = max(len(ordered) // max(short, 1), 1)
    dropped = set(range(0, step * short, step)) if short else set()
    inj.short = [ordered[i] for i in sorted(dropped) if i < len(ordered)]
    kept = [o for i, o in enumerate(ordered) if i not in dropped]
    lines = from_ours(kept)
    for i in range(min(amount_off, len(lines))):
        lines[-1 - i] = replace(lines[-1 - i], amount_fen=lines[-1 - i].amount_fen + 1)
        inj.amount.append(lines[-1 - i])
    for i in range(min(fee_off, len(lines) - amount_off)):
        j = amount_off + i
        lines[-1 - j] = replace(lines[-1 - j], fee_fen=lines[-1 - j].fee_fen + 1)
        inj.fee.append(lines[-1 - j])
    for k in range(long):
        base = ordered[k % len(ordered)]
        x = ClearingTxn(merchant_code=base.merchant_no, terminal_no=base.terminal_no, stan=f"9{k:05d}",
                        sent_at=base.occurred_at, amount_fen=12_345 + k, fee_fen=74, credit=True)
        lines.append(x)
        inj.long.append(x)
    lines.sort(key=lambda x: x.sent_at)
    inn = write_inn(directory, day, lines, tz=tz)
    rd = write_rd(directory, day, lines, encoding=rd_encoding, total_off=total_off)
    return inn, rd, inj
