"""Read a Chinese bank's 代付结果 (payout result) or 账户明细 (account detail) file through a TOML profile.

中文：国内银行的代付结果文件、账户明细文件没有公开的统一格式，因此每家银行写一份 TOML 配置
（profiles/*.toml，写法见 docs/reconciliation.md）：CSV 列名或定长位置、日期与金额格式、借贷标志取值、
状态取值、末尾汇总行（笔数、金额）的识别方式。文件编码 UTF-8、带 BOM 的 UTF-8 或 GBK 均可。
汇总行与明细核对不符、任何一行无法解析，整份文件拒绝并指明行号；原始行保存前屏蔽卡号并截断。

English: :func:`load_profile` reads and checks a profile; :func:`read_bank_file` returns one
:class:`Statement` (source ``bank_file``) or raises :class:`StatementRejected` naming the line.
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from settleguard.masking import bounded, mask_card_numbers
from settleguard.reconciliation.model import (
    RAW_LIMIT,
    BankLine,
    Direction,
    EntryStatus,
    Source,
    Statement,
    StatementRejected,
    decimal_to_fen,
)
from settleguard.reconciliation.refs import safe_ref

MAX_BYTES = 256 * 1024 * 1024
MAX_LINE = 8192  # characters; a longer line is not a bank file line
FIELDS = ("entry_ref", "booking_date", "value_date", "amount", "debit_amount", "credit_amount", "direction",
          "status", "end_to_end_id", "acct_svcr_ref", "pmt_inf_id", "account")
_ENCODINGS = ("utf-8", "gbk")


class ProfileError(ValueError):
    """A profile that cannot be used (zh en)."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    format: str  # "csv" | "fixed"
    encoding: str  # "auto" | "utf-8" | "gbk"
    delimiter: str
    header: bool
    skip_lines: int
    positions_in: str  # "bytes" | "chars" (fixed)
    columns: dict[str, Any]  # field -> list of header names (csv) or [start, end] 1-based inclusive (fixed)
    date_formats: tuple[str, ...]
    amount_unit: str  # "yuan" | "fen"
    thousands: str
    debit_values: frozenset[str]
    credit_values: frozenset[str]
    negative_is_debit: bool
    booked_values: frozenset[str]
    pending_values: frozenset[str]
    info_values: frozenset[str]
    account: str
    summary_prefix: str | None
    summary_count: re.Pattern[str] | None
    summary_total: re.Pattern[str] | None
    summary_required: bool
    summary_total_of: str  # "all" | "debit" | "credit"


def profile_path(name: str) -> Path:
    """The shipped profile ``name`` (reconciliation/profiles/NAME.toml)."""
    return Path(str(resources.files("settleguard.reconciliation") / "profiles" / f"{name}.toml"))


def load_profile(name_or_path: str | Path | None = None) -> Profile:
    """A shipped profile by name (default ``generic``) or a profile file by path."""
    text = str(name_or_path or "generic")
    path = Path(text)
    if not (path.suffix == ".toml" or path.is_file()):
        path = profile_path(text)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"找不到银行文件配置 {text} no such bank file profile") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"银行文件配置无法读取 cannot read profile {path}: {bounded(str(exc), 200)}") from None
    return parse_profile(data, path.stem)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ProfileError(f"配置项 {key} 须为字符串或字符串列表 {key} must be a string or a list of strings")


def parse_profile(data: dict[str, Any], default_name: str) -> Profile:
    fmt = data.get("format", "csv")
    if fmt not in ("csv", "fixed"):
        raise ProfileError("format 须为 csv 或 fixed  format must be csv or fixed")
    encoding = str(data.get("encoding", "auto")).lower()
    if encoding not in ("auto", *_ENCODINGS):
        raise ProfileError("encoding 须为 auto、utf-8 或 gbk  encoding must be auto, utf-8 or gbk")
    raw_cols = data.get("columns")
    if not isinstance(raw_cols, dict):
        raise ProfileError("缺少 [columns] 表 the profile has no [columns] table")
    unknown = sorted(set(raw_cols) - set(FIELDS))
    if unknown:
        raise ProfileError(f"未知的列 unknown columns: {', '.join(unknown)}")
    columns: dict[str, Any] = {}
    for key, value in raw_cols.items():
        if fmt == "fixed":
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)
                    and 1 <= value[0] <= value[1]):
                raise ProfileError(f"定长列 {key} 须为 [起, 止]（从 1 起，含止）fixed column {key} must be [start, end]")
            columns[key] = (value[0], value[1])
        else:
            columns[key] = _strings(value, f"columns.{key}")
    if "amount" not in columns and not {"debit_amount", "credit_amount"} <= set(columns):
        raise ProfileError("须配置 amount 列，或 debit_amount 与 credit_amount 两列 "
                           "configure an amount column, or both debit_amount and credit_amount")
    dates = data.get("date", {})
    amounts = data.get("amount", {})
    direction = data.get("direction", {})
    status = data.get("status", {})
    summary = data.get("summary", {})
    if "direction" not in columns and "amount" in columns and not amounts.get("negative_is_debit", False):
        raise ProfileError("须配置 direction 列，或 amount.negative_is_debit = true，或借贷两列金额 "
                           "configure a direction column, amount.negative_is_debit, or debit/credit amount columns")

    def rx(key: str) -> re.Pattern[str] | None:
        pattern = summary.get(key)
        if pattern is None:
            return None
        try:
            return re.compile(str(pattern))
        except re.error as exc:
            raise ProfileError(f"summary.{key} 不是正则表达式 is not a regular expression: {exc}") from None

    if fmt == "csv" and not data.get("header", True):
        raise ProfileError("CSV 配置须有表头 header = true  a CSV profile needs header = true")
    unit = amounts.get("unit", "yuan")
    total_of = summary.get("total_of", "all")
    if unit not in ("yuan", "fen") or total_of not in ("all", "debit", "credit"):
        raise ProfileError("amount.unit 须为 yuan 或 fen；summary.total_of 须为 all、debit 或 credit "
                           "amount.unit must be yuan or fen; summary.total_of all, debit or credit")
    return Profile(
        name=str(data.get("name", default_name))[:32], format=fmt, encoding=encoding,
        delimiter=str(data.get("delimiter", ",")), header=bool(data.get("header", fmt == "csv")),
        skip_lines=int(data.get("skip_lines", 0)), positions_in=str(data.get("positions_in", "bytes")),
        columns=columns, date_formats=_strings(dates.get("formats", ["%Y-%m-%d", "%Y%m%d"]), "date.formats"),
        amount_unit=unit, thousands=str(amounts.get("thousands", ",")),
        debit_values=frozenset(_strings(direction.get("debit", ["D", "借"]), "direction.debit")),
        credit_values=frozenset(_strings(direction.get("credit", ["C", "贷"]), "direction.credit")),
        negative_is_debit=bool(amounts.get("negative_is_debit", False)),
        booked_values=frozenset(_strings(status.get("booked", ["成功", "BOOK", ""]), "status.booked")),
        pending_values=frozenset(_strings(status.get("pending", ["处理中", "PDNG"]), "status.pending")),
        info_values=frozenset(_strings(status.get("info", ["失败", "INFO"]), "status.info")),
        account=str(data.get("account", ""))[:64],
        summary_prefix=summary.get("prefix"), summary_count=rx("count"), summary_total=rx("total"),
        summary_required=bool(summary.get("required", False)), summary_total_of=total_of)


def decode(path: Path, data: bytes, encoding: str) -> tuple[str, str]:
    """(text, encoding used): a UTF-8 BOM wins; ``auto`` tries UTF-8 then GBK."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8"
    for enc in ((encoding,) if encoding != "auto" else _ENCODINGS):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as exc:
            if encoding != "auto":
                line = data.count(b"\n", 0, exc.start) + 1
                raise StatementRejected(str(path), f"第 {line} 行 line {line}", f"不是 {enc} 编码",
                                        f"not {enc} text") from None
    raise StatementRejected(str(path), "-", "编码无法识别（应为 UTF-8 或 GBK）", "encoding not UTF-8 or GBK")


class _Reader:
    def __init__(self, path: Path, profile: Profile, sha256: str) -> None:
        self.path, self.p, self.sha256 = path, profile, sha256
        self.encoding = "utf-8"

    def reject(self, line: int, zh: str, en: str) -> StatementRejected:
        return StatementRejected(str(self.path), f"第 {line} 行 line {line}", bounded(zh, 300), bounded(en, 300))

    def run(self, data: bytes) -> Statement:
        text, self.encoding = decode(self.path, data, self.p.encoding)
        rows = text.splitlines()
        numbered = [(i, r) for i, r in enumerate(rows, 1) if r.strip()][self.p.skip_lines:]
        for n, row in numbered:
            if len(row) > MAX_LINE or "\x00" in row:
                raise self.reject(n, "行过长或含二进制内容", "line too long or binary")
        summary_line = None
        if numbered and self.p.summary_prefix and numbered[-1][1].strip().startswith(self.p.summary_prefix):
            summary_line = numbered.pop()
        elif self.p.summary_required:
            last = numbered[-1][0] if numbered else 1
            raise self.reject(last, f"缺少汇总行（以“{self.p.summary_prefix}”开头）",
                              f"no trailing summary line starting with '{self.p.summary_prefix}'")
        for n, row in numbered:  # a summary line must be the last one
            if self.p.summary_prefix and row.strip().startswith(self.p.summary_prefix):
                raise self.reject(n, "汇总行须在文件末尾", "the summary line must be the last line")
        cells = self._cells(numbered)
        statement_id = f"{self.p.name}:{self.sha256[:16]}"
        lines = [self._line(n, raw, c, statement_id) for n, raw, c in cells]
        if not lines:
            raise self.reject(numbered[-1][0] if numbered else 1, "文件中没有明细行", "no detail line in the file")
        if summary_line is not None:
            self._check_summary(summary_line, lines)
        refs: dict[str, int] = {}
        for (n, _raw, _c), ln in zip(cells, lines, strict=True):
            if ln.entry_ref in refs:
                raise self.reject(n, f"流水号重复（同第 {refs[ln.entry_ref]} 行）",
                                  f"serial number repeats line {refs[ln.entry_ref]}")
            refs[ln.entry_ref] = n
        account = self._account(cells)
        return Statement(source=Source.BANK_FILE, statement_id=statement_id, account=account, lines=lines)

    def _account(self, cells: list[tuple[int, str, dict[str, str]]]) -> str:
        found = {c.get("account", "") for _n, _r, c in cells} - {""}
        if len(found) > 1:
            raise self.reject(cells[0][0], "文件含多个本方账号", "the file mixes several accounts")
        return bounded(mask_card_numbers(found.pop() if found else self.p.account), 64)

    def _cells(self, numbered: list[tuple[int, str]]) -> list[tuple[int, str, dict[str, str]]]:
        out: list[tuple[int, str, dict[str, str]]] = []
        if self.p.format == "fixed":
            for n, row in numbered[1 if self.p.header else 0:]:
                out.append((n, row, {k: self._slice(row, pos) for k, pos in self.p.columns.items()}))
            return out
        if not numbered:
            return out
        parsed = list(csv.reader([r for _n, r in numbered], delimiter=self.p.delimiter))
        head = [h.strip() for h in parsed[0]]
        index: dict[str, int] = {}
        for key, names in self.p.columns.items():
            at = next((head.index(nm) for nm in names if nm in head), None)
            if at is not None:
                index[key] = at
            elif key in ("amount", "debit_amount", "credit_amount", "booking_date", "direction"):
                raise self.reject(numbered[0][0], f"表头缺少列：{'/'.join(names)}",
                                  f"the header has no column {'/'.join(names)}")
        for (n, row), fields in zip(numbered[1:], parsed[1:], strict=True):
            if len(fields) != len(head):
                raise self.reject(n, f"列数 {len(fields)} 与表头 {len(head)} 不符",
                                  f"{len(fields)} fields, the header has {len(head)}")
            out.append((n, row, {k: fields[i].strip() for k, i in index.items()}))
        return out

    def _slice(self, row: str, pos: tuple[int, int]) -> str:
        if self.p.positions_in == "chars":
            return row[pos[0] - 1:pos[1]].strip()
        data = row.encode(self.encoding)
        return data[pos[0] - 1:pos[1]].decode(self.encoding, errors="replace").strip()

    def _fen(self, n: int, text: str, what: str) -> int:
        text = text.replace(self.p.thousands, "") if self.p.thousands else text
        text = text.strip().lstrip("+").removeprefix("¥").removeprefix("￥")
        negative = text.startswith("-")
        text = text.removeprefix("-")
        try:
            fen = int(text) if self.p.amount_unit == "fen" and text.isascii() and text.isdigit() else (
                decimal_to_fen(text) if self.p.amount_unit == "yuan" else None)
        except ValueError as exc:
            raise self.reject(n, f"{what}：{exc}", f"{what}: invalid amount") from None
        if fen is None:
            raise self.reject(n, f"{what}：金额须为整数分 '{bounded(text, 30)}'", f"{what}: not an integer fen amount")
        return -fen if negative else fen

    def _date(self, n: int, text: str, what: str) -> date | None:
        if not text:
            return None
        for fmt in self.p.date_formats:
            try:
                return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date, no time of day
            except ValueError:
                continue
        raise self.reject(n, f"{what} 日期格式错误 '{bounded(text, 30)}'", f"{what}: date not in {self.p.date_formats}")

    def _line(self, n: int, raw: str, c: dict[str, str], statement_id: str) -> BankLine:
        if "amount" in c and c["amount"]:
            signed = self._fen(n, c["amount"], "金额 amount")
        else:
            debit = self._fen(n, c.get("debit_amount") or "0", "借方金额 debit amount")
            credit = self._fen(n, c.get("credit_amount") or "0", "贷方金额 credit amount")
            if (debit == 0) == (credit == 0):
                raise self.reject(n, "借方金额与贷方金额须有且只有一个", "exactly one of debit/credit amount expected")
            signed = credit or -debit
        flag = c.get("direction")
        if flag is not None and "amount" in c and c["amount"]:
            if flag in self.p.debit_values:
                direction = Direction.DEBIT
            elif flag in self.p.credit_values:
                direction = Direction.CREDIT
            else:
                raise self.reject(n, f"借贷标志无法识别 '{bounded(flag, 10)}'", f"unknown debit/credit flag '{flag[:10]}'")
            if signed < 0:
                raise self.reject(n, "有借贷标志时金额不能为负", "negative amount with a debit/credit flag")
        else:
            direction = Direction.DEBIT if signed < 0 else Direction.CREDIT
        sts = c.get("status", "")
        if sts in self.p.booked_values:
            status = EntryStatus.BOOKED
        elif sts in self.p.pending_values:
            status = EntryStatus.PENDING
        elif sts in self.p.info_values:
            status = EntryStatus.INFO
        else:
            raise self.reject(n, f"状态无法识别 '{bounded(sts, 20)}'", f"unknown status '{bounded(sts, 20)}'")
        booking = self._date(n, c.get("booking_date", ""), "记账日期 booking date")
        if booking is None and status is EntryStatus.BOOKED:
            raise self.reject(n, "已记账的行缺少记账日期", "a booked line has no booking date")

        def ref(key: str) -> str | None:
            return safe_ref(c.get(key))

        return BankLine(source=Source.BANK_FILE, statement_id=statement_id,
                        entry_ref=ref("entry_ref") or f"L{n}", amount_fen=abs(signed), direction=direction,
                        status=status, booking_date=booking, value_date=self._date(n, c.get("value_date", ""),
                                                                                   "起息日 value date"),
                        acct_svcr_ref=ref("acct_svcr_ref") or ref("entry_ref"), end_to_end_id=ref("end_to_end_id"),
                        pmt_inf_id=ref("pmt_inf_id"), raw=bounded(mask_card_numbers(raw), RAW_LIMIT))

    def _check_summary(self, summary: tuple[int, str], lines: list[BankLine]) -> None:
        n, row = summary
        chosen = {"all": lines, "debit": [ln for ln in lines if ln.direction is Direction.DEBIT],
                  "credit": [ln for ln in lines if ln.direction is Direction.CREDIT]}[self.p.summary_total_of]
        if self.p.summary_count is not None:
            m = self.p.summary_count.search(row)
            if m is None:
                raise self.reject(n, "汇总行中找不到笔数", "no count in the summary line")
            if int(m.group(1)) != len(lines):
                raise self.reject(n, f"汇总笔数 {m.group(1)} 与明细 {len(lines)} 笔不符",
                                  f"summary count {m.group(1)} differs from the {len(lines)} detail lines")
        if self.p.summary_total is not None:
            m = self.p.summary_total.search(row)
            if m is None:
                raise self.reject(n, "汇总行中找不到总金额", "no total in the summary line")
            stated = abs(self._fen(n, m.group(1), "汇总金额 summary total"))
            found = sum(ln.amount_fen for ln in chosen)
            if stated != found:
                raise self.reject(n, f"汇总金额 {stated} 分与明细合计 {found} 分不符",
                                  f"summary total {stated} fen differs from the detail sum {found} fen")


def read_bank_file(path: Path, profile: Profile, sha256: str, *, max_bytes: int = MAX_BYTES) -> Statement:
    """The bank file as one statement, checked against its summary line; StatementRejected otherwise."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise StatementRejected(str(path), "-", f"文件过大（{size} 字节）", f"file too large ({size} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise StatementRejected(str(path), "-", f"无法读取文件：{exc.strerror}", f"cannot read: {exc.strerror}") from None
    return _Reader(path, profile, sha256).run(data)
