"""Merchant statements (对账单): the period, the totals of transaction lines, the carry of negative balances
and the checks of what a person asks for. Pure (no I/O, no clock).

Rules (docs/statements.md):

- A statement covers the business days (业务日, ``cycle_date``) ``start`` .. ``end`` inclusive, at most
  :data:`MAX_DAYS` days; ``start`` after ``end`` is refused.
- A transaction line's net (净额) is signed: a sale adds its amount, a void (撤销), a refund (退货) or a
  reversal (冲正) takes its amount off, and the line's signed fee is taken off (a void's and a reversal's fee
  is negative: the fee is given back; a refund keeps it, settlement/model.py).
  net = sales − voids − refunds − reversals − fees, the settlement run's formula.
- Carry (结转): the settlement run pays a merchant only what its payable balance holds above zero, so a day
  whose net is negative (refunds above sales) pays nothing and is netted against the next days. Walking the
  period's settled days in order from the balance carried in: balance = carried in + net − payout; the
  balance after the last day is carried out (≤ 0 unless a payout is still to be created).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from settleguard.money import format_yuan
from settleguard.settlement.model import TxnKind

MAX_DAYS = 366
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class StatementRefused(ValueError):
    """What a person asked for cannot be a statement (unknown merchant, bad period), in zh and en, naming
    what was typed."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def parse_day(what: str, text: str) -> date:
    """A date typed as YYYY-MM-DD for ``what`` (a field or option name), else :class:`StatementRefused`."""
    shown = text.strip()[:40]
    try:
        if not _DAY.match(shown):
            raise ValueError(shown)
        return date.fromisoformat(shown)
    except ValueError:
        raise StatementRefused(f"{what} 的值「{shown}」不是有效日期：应写作 YYYY-MM-DD，如 2026-11-18",
                               f"{what} {shown!r} is not a valid date: expected YYYY-MM-DD, e.g. 2026-11-18") from None


def check_period(start: date, end: date, *, from_name: str = "--from", to_name: str = "--to") -> None:
    """Refuse ``start`` after ``end`` and a period longer than :data:`MAX_DAYS` days, naming both dates."""
    if start > end:
        raise StatementRefused(f"开始日期 {from_name} {start.isoformat()} 晚于结束日期 {to_name} {end.isoformat()}",
                               f"the start {from_name} {start.isoformat()} is after the end {to_name} {end.isoformat()}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise StatementRefused(
            f"期间 {start.isoformat()} 至 {end.isoformat()} 共 {days} 天，超过上限 {MAX_DAYS} 天，请分段导出",
            f"the period {start.isoformat()} to {end.isoformat()} has {days} days, more than {MAX_DAYS}; "
            "export it in parts")


def line_net(kind: int, amount_fen: int, fee_fen: int) -> int:
    """A transaction line's signed net: + a sale's amount, − a void's, refund's or reversal's, − the fee."""
    return (amount_fen if kind == TxnKind.SALE else -amount_fen) - fee_fen


@dataclass
class Totals:
    """The sums of transaction lines (fen), by kind; filled line by line (:meth:`add`) or from SQL sums."""

    count: int = 0
    sale_fen: int = 0
    void_fen: int = 0
    refund_fen: int = 0
    reversal_fen: int = 0
    fee_fen: int = 0
    counts: dict[int, int] = field(default_factory=lambda: {int(k): 0 for k in TxnKind})

    def add(self, kind: int, amount_fen: int, fee_fen: int, n: int = 1) -> None:
        k = TxnKind(kind)
        self.count += n
        self.counts[int(k)] += n
        self.fee_fen += fee_fen
        if k is TxnKind.SALE:
            self.sale_fen += amount_fen
        elif k is TxnKind.VOID:
            self.void_fen += amount_fen
        elif k is TxnKind.REFUND:
            self.refund_fen += amount_fen
        else:
            self.reversal_fen += amount_fen

    @property
    def net_fen(self) -> int:
        return self.sale_fen - self.void_fen - self.refund_fen - self.reversal_fen - self.fee_fen

    def key(self) -> tuple[int, ...]:
        return (self.count, self.sale_fen, self.void_fen, self.refund_fen, self.reversal_fen, self.fee_fen)


def totals_of(lines: Iterable[tuple[int, int, int]]) -> Totals:
    """The totals of (kind, amount_fen, fee_fen) lines."""
    out = Totals()
    for kind, amount, fee in lines:
        out.add(kind, amount, fee)
    return out


@dataclass(frozen=True)
class Day:
    """One settled business day of the merchant: its net and the payout the run created for it (0: none)."""

    cycle_date: date
    net_fen: int
    payout_fen: int


@dataclass(frozen=True)
class CarryLine:
    """A settled day with what was carried into it and out of it, and why in words (zh, en)."""

    cycle_date: date
    carried_in_fen: int
    net_fen: int
    payout_fen: int
    carried_out_fen: int

    @property
    def note(self) -> tuple[str, str]:
        if self.carried_out_fen < 0:
            if self.net_fen < 0:
                return (f"退款多于消费，本日净额 {format_yuan(self.net_fen)}，余额 {format_yuan(self.carried_out_fen)} "
                        "结转至下一结算日抵扣，本日不出款",
                        f"refunds above sales: net {format_yuan(self.net_fen)}; the balance "
                        f"{format_yuan(self.carried_out_fen)} is carried to the next settlement, no payout today")
            return (f"本日净额 {format_yuan(self.net_fen)} 不足以抵扣上期结转 {format_yuan(self.carried_in_fen)}，"
                    f"余额 {format_yuan(self.carried_out_fen)} 继续结转，本日不出款",
                    f"net {format_yuan(self.net_fen)} does not cover the {format_yuan(self.carried_in_fen)} carried "
                    f"in; {format_yuan(self.carried_out_fen)} is carried on, no payout today")
        if self.carried_in_fen < 0:
            return (f"出款 = 本日净额 {format_yuan(self.net_fen)} − 上期结转负余额 {format_yuan(-self.carried_in_fen)}",
                    f"payout = net {format_yuan(self.net_fen)} less the negative balance "
                    f"{format_yuan(-self.carried_in_fen)} carried in")
        if self.carried_out_fen > 0:
            return ("余额待出款", "balance awaiting a payout")
        return ("", "")


def carry(carried_in_fen: int, days: Sequence[Day]) -> list[CarryLine]:
    """Each settled day (in date order) with the balance carried in and out: out = in + net − payout."""
    out: list[CarryLine] = []
    balance = carried_in_fen
    for d in sorted(days, key=lambda d: d.cycle_date):
        after = balance + d.net_fen - d.payout_fen
        out.append(CarryLine(d.cycle_date, balance, d.net_fen, d.payout_fen, after))
        balance = after
    return out
