"""The card network's clearing files (UnionPay 全渠道 INN detail and RD summary): read, store, reconcile.

中文：银联全渠道清算文件。``recon import`` 识别并导入 INN 明细文件（定长字段、单空格分隔、每行 607 个字符）
与 RD 汇总表（GBK）；``recon clearing --date D`` 把清算日 D 的明细与我方导入的 POS 交易逐笔核对，
差错（长款、短款、金额不符、手续费不符、汇总不符）写入 recon_breaks（docs/reconciliation.md）。

Reading is hardened as the bank files are: bounded size and line length, ASCII only for INN (GBK/UTF-8 for RD),
every field checked, a bad line rejects the whole file naming the line and field (zh, en); the account is
stored masked; the file is stored in one transaction (atomic) and the same file twice changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from settleguard.config import DEFAULT_TIMEZONE
from settleguard.masking import bounded, mask_card_numbers
from settleguard.reconciliation import clearing_matching as cm
from settleguard.reconciliation import clearing_repository as repo
from settleguard.reconciliation.model import StatementRejected
from settleguard.reconciliation.service import file_sha256

# --- the INN detail layout (public ACP merchant demo package; see docs/reconciliation.md) -------------------
INN_WIDTHS = (3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1,
              15, 32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 131)
INN_NAMES = ("交易代码", "代理机构标识码", "发送机构标识码", "系统跟踪号", "交易传输时间", "账号", "交易金额", "商户类别",
             "终端类型", "查询流水号", "支付方式（旧）", "商户订单号", "支付卡类型", "原始交易的系统跟踪号", "原始交易日期时间",
             "商户手续费", "结算金额", "支付方式", "集团商户代码", "交易类型", "交易子类", "业务类型", "账号类型", "账单类型",
             "账单号码", "交互方式", "原交易查询流水号", "商户代码", "分账入账方式", "二级商户代码", "二级商户简称",
             "二级商户分账入账金额", "清算净额", "终端号", "商户自定义域", "优惠金额", "发票金额", "分期付款附加手续费",
             "分期付款期数", "交易介质", "保留使用")
INN_LINE = sum(INN_WIDTHS) + len(INN_WIDTHS) - 1  # 607
_STARTS = tuple(sum(INN_WIDTHS[:i]) + i for i in range(len(INN_WIDTHS)))
F_CODE, F_STAN, F_TIME, F_ACCOUNT, F_AMOUNT, F_MCC, F_QUERY, F_ORIG_STAN = 0, 3, 4, 5, 6, 7, 9, 13
F_FEE, F_SETTLE, F_MERCHANT, F_NET, F_TERMINAL = 15, 16, 27, 32, 33
MAX_FILE = 256 << 20  # bytes; a clearing file of a day for an acquirer, with room to spare
MAX_LINES = 1_000_000
_READ = 4 * INN_LINE  # bytes read at most for one line (room for multi-byte junk to be named as such)
MAX_RD_FILE = 4 << 20
MAX_RD_LINE = 4096
CHUNK = 1000
INN_NAME = re.compile(r"^INN(\d{6})\d{0,2}[A-Z]{0,4}(?:_([A-Za-z0-9]{1,15}))?")
RD_TITLE = "全渠道商户交易汇总表"
# 交易代码 -> a word for people. Codes beyond these are kept as written (unconfirmed: no public code list).
TXN_CODES = {"S22": ("消费", "sale"), "S31": ("消费撤销", "void"), "S32": ("退货", "refund"), "S30": ("冲正", "reversal")}

Progress = Callable[[int], None]


def _ymd(text: str) -> date:
    """YYYYMMDD as a date; ValueError otherwise."""
    if not re.fullmatch(r"[0-9]{8}", text):
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _reject(path: Path, where: str, zh: str, en: str) -> StatementRejected:
    return StatementRejected(str(path), where, zh, en)


def _line_where(n: int, name: str | None = None) -> str:
    return f"第 {n} 行 line {n}" + (f" {name}" if name else "")


def clearing_kind(path: Path) -> str | None:
    """``"inn"`` or ``"rd"`` when the file is a clearing detail or summary (by content, or an INN name), else None."""
    try:
        with path.open("rb") as f:
            head = f.read(8192)
    except OSError:
        return None
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if len(first) == INN_LINE and all(first[s - 1:s] == b" " for s in _STARTS[1:]):
        return "inn"
    if INN_NAME.match(path.name) and not head.lstrip().startswith(b"<"):
        return "inn"
    for enc in ("utf-8-sig", "gbk"):
        try:
            text = head.decode(enc, errors="strict" if len(head) < 8192 else "ignore")
        except UnicodeDecodeError:
            continue
        if RD_TITLE in text:
            return "rd"
    return None


# --- INN ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class InnLine:
    line_no: int
    txn_code: str
    stan: str
    sent_at_text: str
    sent_at: datetime  # UTC
    txn_date: date  # local
    account_masked: str
    amount_fen: int
    mcc: str
    query_id: str
    orig_stan: str
    fee_fen: int
    settle_fen: int
    net_fen: int
    merchant_code: str
    terminal_no: str


@dataclass
class InnFile:
    clearing_date: date
    owner_code: str | None
    lines: list[InnLine] = field(default_factory=list)


def _signed(path: Path, n: int, name: str, text: str, debit_positive: bool) -> int:
    """``D000000002861`` / ``C000000473939``: D or C then 12 digits, as signed fen."""
    if not re.fullmatch(r"[DC][0-9]{12}", text):
        raise _reject(path, _line_where(n, name), f"须为 D 或 C 加 12 位数字，填写的是 {bounded(repr(text), 40)}",
                      f"must be D or C followed by 12 digits, got {bounded(repr(text), 40)}")
    value = int(text[1:])
    return value if (text[0] == "D") == debit_positive else -value


def _sent_at(path: Path, n: int, text: str, clearing: date, tz: ZoneInfo) -> tuple[datetime, date]:
    """交易传输时间 MMDDhhmmss (Beijing time), dated in the year that puts it at most a day after the clearing day."""
    where = _line_where(n, INN_NAMES[F_TIME])
    if not re.fullmatch(r"[0-9]{10}", text):
        raise _reject(path, where, f"须为 MMDDhhmmss 10 位数字，填写的是 {bounded(repr(text), 40)}",
                      f"must be MMDDhhmmss (10 digits), got {bounded(repr(text), 40)}")
    mo, d, h, mi, s = (int(text[i:i + 2]) for i in range(0, 10, 2))
    for year in (clearing.year, clearing.year - 1):
        try:
            day = date(year, mo, d)
            at = time(h, mi, s)
        except ValueError:
            raise _reject(path, where, f"不是真实的日期时间 {text}", f"not a real date and time: {text}") from None
        if day <= clearing + timedelta(days=1):
            local = datetime.combine(day, at, tz)
            return local.astimezone(UTC), day
    raise _reject(path, where, f"日期 {text[:4]} 晚于清算日期", f"date {text[:4]} is after the clearing date")


def _mask_account(text: str) -> str:
    """The account as stored: a full card number is masked (first 6, last 4); a masked one kept."""
    masked = mask_card_numbers(text)
    if re.fullmatch(r"[0-9]{12,19}", masked):  # too short for the card-number pattern: mask it anyway
        masked = masked[:6] + "*" * (len(masked) - 10) + masked[-4:]
    return masked[:19]


def _inn_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its end) of every non-blank line; each read with a length limit."""
    with path.open("rb") as f:
        for n, raw in enumerate(iter(lambda: f.readline(_READ), b""), 1):
            if n > MAX_LINES:
                raise _reject(path, _line_where(n), f"超过 {MAX_LINES:,} 行", f"more than {MAX_LINES:,} lines")
            body = raw.rstrip(b"\r\n")
            if not raw.endswith(b"\n") and len(raw) >= _READ:
                raise _too_long(path, n)  # cut at the read limit: never held whole
            if body.strip():
                yield n, body


def _too_long(path: Path, n: int) -> StatementRejected:
    return _reject(path, _line_where(n), f"行长超过 {INN_LINE} 个字符，不是银联 INN 明细",
                   f"line longer than {INN_LINE} characters: not a UnionPay INN detail line")


def read_inn(path: Path, tz: str = DEFAULT_TIMEZONE, clearing_date: date | None = None) -> InnFile:
    """Every line of an INN file, checked; the clearing date comes from the name (``INN<yymmdd>…``)."""
    size = path.stat().st_size
    if size > MAX_FILE:
        raise _reject(path, "-", f"文件超过 {MAX_FILE >> 20} MiB", f"file larger than {MAX_FILE >> 20} MiB")
    m = INN_NAME.match(path.name)
    if clearing_date is None:
        if m is None:
            raise _reject(path, "文件名 file name", "INN 明细文件名须为 INN<yymmdd>…（据此确定清算日期）",
                          "an INN detail file must be named INN<yymmdd>… (it gives the clearing date)")
        try:
            clearing_date = _ymd("20" + m.group(1))
        except ValueError:
            raise _reject(path, "文件名 file name", f"文件名中的清算日期无效 {m.group(1)}",
                          f"bad clearing date in the file name: {m.group(1)}") from None
    zone = ZoneInfo(tz)
    out = InnFile(clearing_date, m.group(2) if m else None)
    for n, body in _inn_lines(path):
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise _reject(path, _line_where(n), f"第 {exc.start + 1} 个字节不是 ASCII 字符（INN 明细只含 ASCII）",
                          f"byte {exc.start + 1} is not ASCII (an INN detail line is ASCII only)") from None
        if not text.isprintable():
            raise _reject(path, _line_where(n), "含控制字符", "contains control characters")
        if len(text) > INN_LINE:
            raise _too_long(path, n)
        text = text.ljust(INN_LINE)
        for i, s in enumerate(_STARTS[1:], 1):
            if text[s - 1] != " ":
                raise _reject(path, _line_where(n, INN_NAMES[i]),
                              f"第 {s} 个字符应为分隔空格：字段宽度不符", f"character {s} must be the separating space: "
                              "field widths do not match the INN layout")
        f = [text[s:s + w] for s, w in zip(_STARTS, INN_WIDTHS, strict=True)]
        out.lines.append(_inn_line(path, n, f, out.clearing_date, zone))
    if not out.lines:
        raise _reject(path, "-", "文件中没有明细行", "no detail lines in the file")
    return out


def _need(path: Path, n: int, i: int, value: str, pattern: str, zh: str, en: str) -> str:
    if not re.fullmatch(pattern, value):
        shown = bounded(repr(value), 60)
        raise _reject(path, _line_where(n, INN_NAMES[i]), f"{zh}，填写的是 {shown}", f"{en}, got {shown}")
    return value


def _inn_line(path: Path, n: int, f: list[str], clearing: date, zone: ZoneInfo) -> InnLine:
    code = _need(path, n, F_CODE, f[F_CODE].strip(), r"[A-Z0-9]{3}", "须为 3 位交易代码", "must be a 3-character code")
    stan = _need(path, n, F_STAN, f[F_STAN], r"[0-9]{6}", "须为 6 位数字", "must be 6 digits")
    sent_at, txn_date = _sent_at(path, n, f[F_TIME], clearing, zone)
    account = _need(path, n, F_ACCOUNT, f[F_ACCOUNT].strip(), r"[0-9*]{0,19}", "须为数字或 *（屏蔽卡号）",
                    "must be digits or * (a masked card number)")
    amount = int(_need(path, n, F_AMOUNT, f[F_AMOUNT], r"[0-9]{12}", "须为 12 位数字（分）", "must be 12 digits (fen)"))
    mcc = _need(path, n, F_MCC, f[F_MCC].strip(), r"([0-9]{4})?", "须为 4 位数字", "must be 4 digits")
    query = _need(path, n, F_QUERY, f[F_QUERY].strip(), r"[A-Za-z0-9]{0,21}", "须为字母或数字", "must be letters or digits")
    orig = _need(path, n, F_ORIG_STAN, f[F_ORIG_STAN].strip(), r"([0-9]{6})?", "须为 6 位数字或空",
                 "must be 6 digits or blank")
    fee = _signed(path, n, INN_NAMES[F_FEE], f[F_FEE], debit_positive=True)
    settle = _signed(path, n, INN_NAMES[F_SETTLE], f[F_SETTLE], debit_positive=False)
    net = _signed(path, n, INN_NAMES[F_NET], f[F_NET], debit_positive=False)
    merchant = _need(path, n, F_MERCHANT, f[F_MERCHANT].strip(), r"[A-Za-z0-9]{1,15}", "须为 1–15 位字母或数字",
                     "must be 1-15 letters or digits")
    terminal = _need(path, n, F_TERMINAL, f[F_TERMINAL].strip(), r"[A-Za-z0-9]{0,8}", "须为最多 8 位字母或数字",
                     "must be at most 8 letters or digits")
    return InnLine(line_no=n, txn_code=code, stan=stan, sent_at_text=f[F_TIME], sent_at=sent_at, txn_date=txn_date,
                   account_masked=_mask_account(account), amount_fen=amount, mcc=mcc, query_id=query, orig_stan=orig,
                   fee_fen=fee, settle_fen=settle, net_fen=net, merchant_code=merchant, terminal_no=terminal)


# --- RD summary ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RdSection:
    line_no: int
    merchant_code: str
    clearing_date: date
    currency: str
    totals: cm.Totals


@dataclass
class RdFile:
    encoding: str
    sections: list[RdSection] = field(default_factory=list)


_RD_FIELD = re.compile(r"(商户代码|收单机构|清算日期|清算币种)\s*[：:]\s*(\S+)")
_YUAN = re.compile(r"^-?[0-9]{1,3}(?:,?[0-9]{3})*(?:\.[0-9]{1,2})?$")


def _yuan_fen(path: Path, n: int, text: str) -> int:
    if not _YUAN.match(text):
        raise _reject(path, _line_where(n), f"金额格式错误 {bounded(repr(text), 40)}（元，最多两位小数）",
                      f"bad amount {bounded(repr(text), 40)} (yuan, at most 2 decimals)")
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").replace(",", "").partition(".")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    return -fen if neg else fen


def _rd_text(path: Path) -> tuple[list[str], str]:
    size = path.stat().st_size
    if size > MAX_RD_FILE:
        raise _reject(path, "-", f"汇总表超过 {MAX_RD_FILE >> 20} MiB", f"summary file larger than {MAX_RD_FILE >> 20} MiB")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise _reject(path, "-", "二进制文件，不是汇总表", "binary file, not a summary table")
    for enc in ("utf-8-sig", "gbk"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        lines = text.splitlines()
        for n, ln in enumerate(lines, 1):
            if len(ln.encode(enc)) > MAX_RD_LINE:
                raise _reject(path, _line_where(n), f"行长超过 {MAX_RD_LINE} 字节", f"line longer than {MAX_RD_LINE} bytes")
        return lines, "utf-8" if enc == "utf-8-sig" else enc
    raise _reject(path, "-", "既不是 GBK 也不是 UTF-8 文本", "neither GBK nor UTF-8 text")


def read_rd(path: Path) -> RdFile:
    """The sections of an RD summary: per 商户代码 its clearing date, currency and the 合计 row (笔数, 借方交易金额,
    贷方交易金额, 费用, 资金清算差额, in yuan). The type rows (交易类型 x 卡性质) must add up to the 合计 row."""
    lines, enc = _rd_text(path)
    out = RdFile(enc)
    head: dict[str, str] = {}
    start = 0
    rows: list[tuple[int, cm.Totals]] = []
    total: tuple[int, cm.Totals] | None = None

    def close() -> None:
        nonlocal rows, total, head
        if not head:
            return
        where = _line_where(start)
        for key in ("商户代码", "清算日期"):
            if key not in head:
                raise _reject(path, where, f"汇总表缺少 {key}", f"the summary lacks {key}")
        code = head["商户代码"]
        if not re.fullmatch(r"[A-Za-z0-9]{1,15}", code):
            raise _reject(path, where, f"商户代码无效 {bounded(repr(code), 40)}", f"bad merchant code {bounded(repr(code), 40)}")
        try:
            day = _ymd(head["清算日期"])
        except ValueError:
            raise _reject(path, where, f"清算日期须为 YYYYMMDD，填写的是 {bounded(repr(head['清算日期']), 40)}",
                          f"清算日期 must be YYYYMMDD, got {bounded(repr(head['清算日期']), 40)}") from None
        summed = cm.Totals(*(sum(getattr(t, k) for _, t in rows) for k in cm.Totals.__slots__))
        if total is None:
            if not rows:
                raise _reject(path, where, "汇总表没有合计行或明细行", "the summary has neither a 合计 row nor type rows")
            total = (start, summed)
        elif rows and summed != total[1]:
            raise _reject(path, _line_where(total[0], "合计"), "各交易类型之和与合计行不符",
                          "the type rows do not add up to the 合计 row")
        currency = head.get("清算币种", "156")
        if not currency.startswith(("156", "CNY", "人民币")):
            raise _reject(path, where, f"清算币种须为人民币 (156)，填写的是 {bounded(repr(currency), 20)}",
                          f"the clearing currency must be CNY (156), got {bounded(repr(currency), 20)}")
        if any(s.merchant_code == code and s.clearing_date == day for s in out.sections):
            raise _reject(path, where, f"商户 {code} 的汇总出现两次", f"merchant {code} appears twice")
        out.sections.append(RdSection(start, code, day, "CNY", total[1]))
        head, rows, total = {}, [], None

    for n, ln in enumerate(lines, 1):
        found = _RD_FIELD.findall(ln)
        if found:
            if any(k == "商户代码" for k, _ in found) and "商户代码" in head:
                close()
            if not head:
                start = n
            head.update(found)
            continue
        parts = ln.split()
        if not parts or RD_TITLE in ln or "交易类型" in ln or set(ln.strip()) <= set("-=—_ "):
            continue
        if not head:
            continue  # text before the first section (a title, a page header)
        numbers = parts[-5:]
        if len(parts) < 6:
            raise _reject(path, _line_where(n), "汇总行须有 交易类型 卡性质 笔数 借方金额 贷方金额 费用 资金清算差额",
                          "a summary row needs its type, then 5 figures: count, debit, credit, fee, net")
        if not re.fullmatch(r"[0-9]{1,9}", numbers[0]):
            raise _reject(path, _line_where(n, "笔数"), f"笔数须为整数，填写的是 {bounded(repr(numbers[0]), 40)}",
                          f"the count must be a whole number, got {bounded(repr(numbers[0]), 40)}")
        figures = cm.Totals(int(numbers[0]), *(_yuan_fen(path, n, x) for x in numbers[1:]))
        if parts[0] == "合计":
            if total is not None:
                raise _reject(path, _line_where(n), "合计行出现两次", "two 合计 rows")
            total = (n, figures)
        else:
            rows.append((n, figures))
    close()
    if not out.sections:
        raise _reject(path, "-", f"不是银联{RD_TITLE}：没有 商户代码 / 清算日期", f"not a UnionPay {RD_TITLE}: no 商户代码 / 清算日期")
    return out


# --- use cases -----------------------------------------------------------------------------------------------

@dataclass
class ClearingImportResult:
    file: str
    sha256: str
    kind: str  # inn | rd
    already_imported: bool
    clearing_dates: list[date] = field(default_factory=list)
    lines: int = 0
    new_lines: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "kind": self.kind, "already_imported": self.already_imported,
                "clearing_dates": [d.isoformat() for d in self.clearing_dates], "lines": self.lines,
                "new_lines": self.new_lines, "totals": self.totals}


def import_clearing_file(engine: Engine, path: Path, *, now: datetime, tz: str = DEFAULT_TIMEZONE,
                         after_chunk: Progress | None = None, chunk: int = CHUNK) -> ClearingImportResult:
    """Read and check the whole INN or RD file, then store it in one transaction; the same file twice changes
    nothing, and a re-sent INN file adds only lines not stored before (natural key per line)."""
    kind = clearing_kind(path)
    if kind is None:
        raise _reject(path, "-", "不是银联清算明细 (INN) 或汇总表 (RD)", "not a UnionPay clearing detail (INN) or summary (RD)")
    sha = file_sha256(path)
    res = ClearingImportResult(str(path), sha, kind, already_imported=False)
    if kind == "inn":
        inn = read_inn(path, tz)
        t = cm.Totals()
        for ln in inn.lines:
            t = t.add(cm.NetworkLine(0, "", "", "", ln.sent_at, ln.amount_fen, ln.fee_fen, ln.settle_fen, ln.net_fen))
        res.totals = {k: getattr(t, k) for k in cm.Totals.__slots__}
        res.clearing_dates, res.lines = [inn.clearing_date], len(inn.lines)
        with engine.begin() as conn:
            if repo.file_imported(conn, sha):
                res.already_imported = True
                return res
            _no_repeats(path, inn)
            known = repo.existing_line_keys(conn, inn.clearing_date)
            fresh = [ln for ln in inn.lines if _key(inn.clearing_date, ln) not in known]
            file_id = repo.insert_file(conn, sha=sha, kind=kind, filename=path.name[:200],
                                       clearing_date=inn.clearing_date, owner_code=inn.owner_code,
                                       line_count=len(inn.lines), new_lines=len(fresh), encoding="ascii", now=now)
            stored = 0
            for at in range(0, len(fresh), chunk):
                stored += repo.insert_lines(conn, file_id, inn.clearing_date, fresh[at:at + chunk])
                if after_chunk is not None:
                    after_chunk(stored)
            res.new_lines = len(fresh)
        return res
    rd = read_rd(path)
    res.clearing_dates = sorted({s.clearing_date for s in rd.sections})
    res.lines = len(rd.sections)
    with engine.begin() as conn:
        if repo.file_imported(conn, sha):
            res.already_imported = True
            return res
        fresh_sections = []
        for s in rd.sections:
            have = repo.summary(conn, s.clearing_date, s.merchant_code)
            if have is None:
                fresh_sections.append(s)
            elif have != s.totals:
                raise _reject(path, _line_where(s.line_no, "商户代码"),
                              f"商户 {s.merchant_code} 清算日 {s.clearing_date} 已导入过不同的汇总",
                              f"a different summary of merchant {s.merchant_code} for {s.clearing_date} was imported before")
        file_id = repo.insert_file(conn, sha=sha, kind=kind, filename=path.name[:200], clearing_date=res.clearing_dates[0],
                                   owner_code=None, line_count=len(rd.sections), new_lines=len(fresh_sections),
                                   encoding=rd.encoding, now=now)
        for s in fresh_sections:
            repo.insert_summary(conn, file_id, s.clearing_date, s.merchant_code, s.currency, s.totals)
        res.new_lines = len(fresh_sections)
    return res


def _key(day: date, ln: InnLine) -> tuple[str, str, str, str, str]:
    return (ln.merchant_code, ln.terminal_no, ln.stan, ln.sent_at_text, ln.txn_code)


def _no_repeats(path: Path, inn: InnFile) -> None:
    seen: dict[tuple[str, str, str, str, str], int] = {}
    for ln in inn.lines:
        k = _key(inn.clearing_date, ln)
        if k in seen:
            raise _reject(path, _line_where(ln.line_no), f"与第 {seen[k]} 行重复（商户、终端、系统跟踪号、时间、交易代码相同）",
                          f"repeats line {seen[k]} (same merchant, terminal, STAN, time and transaction code)")
        seen[k] = ln.line_no


@dataclass
class ClearingRunResult:
    run_id: int
    clearing_date: date
    network_lines: int
    our_transactions: int
    matched: int
    breaks_by_type: dict[str, int]
    opened: int
    cleared: int
    summaries: int

    @property
    def breaks(self) -> int:
        return sum(self.breaks_by_type.values())

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "date": self.clearing_date.isoformat(), "network_lines": self.network_lines,
                "our_transactions": self.our_transactions, "matched": self.matched, "breaks": self.breaks,
                "breaks_by_type": self.breaks_by_type, "opened": self.opened, "cleared": self.cleared,
                "summaries_checked": self.summaries}


class NoClearingFile(LookupError):
    def __init__(self, day: date) -> None:
        self.day = day
        super().__init__(f"没有清算日 {day} 的银联清算明细 (INN)，请先 recon import / no INN clearing file for {day}: "
                         "import it first (recon import)")


def day_window(day: date, tz: str, cutoff_hour: int) -> tuple[datetime, datetime]:
    """The network's day D: local [D-1 cutoff_hour:00, D cutoff_hour:00) (日切; 23 by default, 0 = the calendar day)."""
    zone = ZoneInfo(tz)
    end = datetime.combine(day, time(0), zone) + timedelta(hours=cutoff_hour if cutoff_hour else 24)
    start = end - timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def run_clearing(engine: Engine, day: date, *, now: datetime, tz: str = DEFAULT_TIMEZONE,
                 cutoff_hour: int = 23) -> ClearingRunResult:
    """Compare clearing day ``day``'s INN lines with our card transactions of the network's day window, check the
    RD totals, and store the breaks (idempotent per day: a re-run updates, clears or reopens them)."""
    from settleguard.reconciliation.breaks import safe_detail

    start, end = day_window(day, tz, cutoff_hour)
    with engine.begin() as conn:
        lines = repo.lines_of_day(conn, day)
        if not lines:
            raise NoClearingFile(day)
        owners = repo.owners_of_lines(conn, day)
        ours = repo.card_transactions(conn, start, end)
        summaries = repo.summaries_of_day(conn, day)
        plan = cm.plan(day, lines, ours, summaries, owners)
        breaks = [cm.ClearingBreak(key=b.key, type=b.type, amount_fen=b.amount_fen, end_to_end_id=b.end_to_end_id,
                                   bank_ref=b.bank_ref, booking_date=b.booking_date, detail=safe_detail(b.detail))
                  for b in plan.breaks]
        run_id = repo.start_run(conn, day, now)
        opened, cleared = repo.store_breaks(conn, run_id, day, breaks, now)
        repo.finish_run(conn, run_id, now, network_lines=len(lines), our_transactions=len(ours), matched=plan.matched,
                        breaks_open=len(breaks), breaks_cleared=cleared)
    return ClearingRunResult(run_id, day, len(lines), len(ours), plan.matched, plan.by_type(), opened, cleared,
                             len(summaries))
