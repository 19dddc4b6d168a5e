"""Import a POS transaction CSV file: validated whole, inserted atomically, idempotent.

The file is parsed and checked column-wise with pyarrow (multi-threaded C++), so a
10-million-row file is validated without a Python loop per row. Any bad row rejects
the whole file; the error lists every bad row (the first MAX_REPORTED, with the count) with its line,
the column as the file's header names it, the reason (zh, en) and the value; nothing is written.
Times without a UTC offset are local time in the configured zone. An .xlsx workbook is read too
(its first sheet, openpyxl read-only). Importing a file whose SHA-256 was already imported changes
nothing. See docs/import.md.

Hostile input: the first 64 KiB are checked before anything else (control bytes such as NUL mean a
binary file; bytes that are neither UTF-8 nor GBK are refused; the header must end inside that block),
the file is only ever read block-wise (pyarrow) or line by line with a length limit, and every value
echoed in an error passes :func:`settleguard.masking.bounded` (200 characters, card numbers masked).
"""

from __future__ import annotations

import csv
import io
import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import Connection, Engine, insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from settleguard.db import partitions
from settleguard.db import tables as t
from settleguard.fees.compute import fees as contract_fees
from settleguard.hashing import sha256_file
from settleguard.imports.card_token import card_tokens
from settleguard.imports.csv_layout import (
    ALIASES,
    AMOUNT_COLUMNS,
    AUTH_PATTERN,
    CARD_PATTERN,
    EXCEL_MAGIC,
    FEN_PATTERN,
    LABELS,
    OFFSET_PATTERN,
    OPTIONAL,
    REF_PATTERN,
    REQUIRED,
    RRN_ALIAS,
    RRN_PATTERN,
    STAN_PATTERN,
    TIME_PARTS,
    TIME_PATTERN,
    YUAN_PATTERN,
)
from settleguard.masking import bounded
from settleguard.merchants import contracts_repository as contracts_repo
from settleguard.merchants import repository as merchants_repo
from settleguard.settlement.model import CARD_ALIASES, KIND_ALIASES, CutOffs, Cycle

Progress = Callable[[str, int, int], None]
CardKey = bytes | Callable[[], bytes]  # the card-token key, or how to get it when a file has a card column
_EPOCH = date(1970, 1, 1)
_ROWS_PER_STATEMENT = 250  # 7 bound parameters per row -> 1,750 per INSERT
_PARAMS = 7
_CHUNK = 100_000
_COLUMNS = ("cycle_date", "merchant_id", "external_ref", "terminal_id", "kind", "card_type", "amount_fen", "fee_fen",
            "occurred_at", "import_id")
_HEAD = 1 << 16  # the first block: checked for binary content; the header line must end inside it
_MAX_LINE = 1 << 20  # finding a bad line reads at most this much of one line (error path only)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")  # never in a CSV text, in UTF-8 or in GBK
DEFAULT_FUTURE_TOLERANCE = timedelta(minutes=10)
MAX_REPORTED = 100  # a rejected file lists at most this many problems (and counts all bad rows)


class ImportRejected(ValueError):
    """The file was rejected; nothing was imported.

    Attributes:
        path: the file.
        line: 1-based line number in the file (the header is line 1) of the first problem, or None.
        reason: what is wrong there, zh then en, naming the column as the file's header does and the value.
        problems: (line, reason) of every problem found, first lines first, at most ``MAX_REPORTED``.
        rows: how many rows are bad in all (may exceed the problems listed).
    """

    def __init__(self, path: Path, line: int | None, reason: str,
                 problems: Sequence[tuple[int | None, str]] = (), rows: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        self.problems = list(problems) or [(line, reason)]
        self.rows = len(self.problems) if rows is None else rows
        where = f"{path}:{line}" if line is not None else str(path)
        if len(self.problems) == 1 and self.rows <= 1:
            super().__init__(f"{where}: {reason}")
            return
        shown = (f"，以下为前 {len(self.problems)} 处 / first {len(self.problems)} shown"
                 if self.rows > len(self.problems) else "")
        lines = [f"{path}: {self.rows} 行有错误，整个文件未导入 / {self.rows} bad rows, nothing imported{shown}:"]
        lines += [f"  第 {n} 行 line {n}: {r}" for n, r in self.problems]
        super().__init__("\n".join(lines))


class _Problems:
    """Row problems found by the vectorised checks, collected instead of raised at the first one.

    Each check hands over its failing row indices (from its mask, no loop over rows); the first
    ``MAX_REPORTED`` of each are turned into messages. ``raise_if_any`` raises one ImportRejected with
    the first ``MAX_REPORTED`` problems by line and the count of all bad rows. Thread-safe (the checks
    run on two threads).
    """

    def __init__(self, path: Path, labels: Mapping[str, str]) -> None:
        self.path = path
        self.labels = labels
        self._found: list[tuple[int, str]] = []
        self._rows: list[np.ndarray] = []
        self._lock = threading.Lock()

    def label(self, col: str) -> str:
        """The column as the file's header named it (交易时间 when the file said 交易时间)."""
        return self.labels.get(col) or LABELS.get(col, col)

    def message(self, col: str, zh: str, en: str, value: object) -> str:
        name, got = self.label(col), bounded(repr(value))
        return f"列 {name}：{zh} / column {name}: {en}; 填写的是 got {got}"

    def add(self, col: str, values: pa.ChunkedArray | pa.Array, bad: np.ndarray, zh: str, en: str) -> None:
        self.add_each(bad, lambda i: self.message(col, zh, en, values[i].as_py()))

    def add_each(self, bad: np.ndarray, message: Callable[[int], str]) -> None:
        """Record the rows ``bad``; ``message(i)`` is asked for the first ``MAX_REPORTED`` only."""
        if not bad.size:
            return
        found = [(int(i), message(int(i))) for i in bad[:MAX_REPORTED]]
        with self._lock:
            self._rows.append(bad)
            self._found += found

    def raise_if_any(self) -> None:
        if not self._rows:
            return
        rows = int(np.unique(np.concatenate(self._rows)).size)
        found = sorted(self._found)[:MAX_REPORTED]
        raise ImportRejected(self.path, found[0][0] + 2, found[0][1], [(i + 2, m) for i, m in found], rows)


@dataclass
class ImportResult:
    path: Path
    sha256: str
    encoding: str
    rows: int
    import_id: int | None
    already_imported: bool
    cycle_dates: list[date] = field(default_factory=list)


def file_sha256(path: Path, stop: threading.Event | None = None) -> str:
    """SHA-256 of the file, read in 1 MiB blocks; "" when ``stop`` is set before the end."""
    return sha256_file(path, stop)


def _head(path: Path) -> tuple[bytes, bool]:
    """The first block of the file and whether more follows."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
        return head, bool(fh.read(1))


def _decodes(head: bytes, encoding: str, more: bool) -> bool:
    """``head`` is valid ``encoding``, but for a character cut at the block's end."""
    try:
        head.decode(encoding)
    except UnicodeDecodeError as exc:
        return more and exc.start >= len(head) - 3
    return True


def detect_encoding(path: Path) -> str:
    """utf-8 (with or without BOM) when the head decodes as UTF-8, otherwise gbk."""
    head, more = _head(path)
    return "utf-8" if _decodes(head, "utf-8", more) else "gbk"


def _refuse_binary(path: Path, head: bytes, more: bool, encoding: str | None) -> None:
    """Refuse, from the first block alone, a file that is not CSV text: control bytes (NUL ...), bytes that
    decode in neither UTF-8 nor GBK (or not in the ``encoding`` asked for), a header longer than the block."""
    bad = _CONTROL.search(head)
    if bad is not None:
        line = head.count(b"\n", 0, bad.start()) + 1
        raise ImportRejected(path, line, f"二进制文件，不是 CSV 文本（第 {bad.start() + 1} 字节为 0x{head[bad.start()]:02x}）"
                             f" / binary file, not CSV text: byte 0x{head[bad.start()]:02x} at offset {bad.start()} "
                             "(UTF-16 or a spreadsheet? save it as CSV in UTF-8 or GBK)")
    tried = [encoding] if encoding else ["utf-8", "gbk"]
    try:
        text = any(_decodes(head, e, more) for e in tried)
    except LookupError:
        raise ImportRejected(path, None, f"未知编码 / unknown encoding {bounded(repr(encoding))}; use utf-8 or gbk") from None
    if not text:
        raise ImportRejected(path, None, f"不是 {' 或 '.join(tried)} 文本 / not {' or '.join(tried)} text "
                             f"in the first {_HEAD // 1024} KiB")
    if more and b"\n" not in head:
        raise ImportRejected(path, 1, f"首行（表头）超过 {_HEAD // 1024} KiB，不是交易明细文件 / the first line (header) "
                             f"is longer than {_HEAD // 1024} KiB: not a transaction file")


def _header(path: Path, encoding: str) -> list[str]:
    head, _ = _head(path)
    end = head.find(b"\n")
    raw = head if end < 0 else head[:end + 1]
    try:
        first = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        raise ImportRejected(path, 1, f"header is not valid {encoding}: {exc.reason}") from exc
    if not first.strip():
        raise ImportRejected(path, 1, "空文件，缺少表头 / empty file: expected a header row")
    return [c.strip().strip('"').strip() for c in first.rstrip("\r\n").split(",")]


def _canonical_columns(path: Path, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The canonical name of every header column, and canonical -> the header as the file wrote it."""
    out: list[str] = []
    labels: dict[str, str] = {}
    other_ref = any(ALIASES.get(n, ALIASES.get(n.lower())) == "external_ref" for n in names if n != RRN_ALIAS)
    for i, n in enumerate(names):
        canon = ALIASES.get(n, ALIASES.get(n.lower(), f"_ignored_{i}"))
        if n == RRN_ALIAS and other_ref:  # 检索参考号 beside another reference column: it is the RRN
            canon = "rrn"
        if canon in out:
            raise ImportRejected(path, 1, f"表头中 {bounded(labels[canon])} 与 {bounded(n)} 是同一列 / column "
                                 f"{bounded(n)} appears twice in the header (as {bounded(labels[canon])})")
        out.append(canon)
        labels[canon] = n
    missing = [LABELS[c] for c in REQUIRED if c not in out]
    if missing:
        raise ImportRejected(path, 1, f"缺少列 missing column(s): {', '.join(missing)}; "
                             f"表头为 header is {bounded(','.join(names))}")
    amounts = [c for c in AMOUNT_COLUMNS if c in out]
    if len(amounts) != 1:
        raise ImportRejected(path, 1, "金额列须恰好一列：金额分 (amount_fen，整数分) 或 交易金额 (amount，元) / need exactly "
                             "one amount column: amount_fen (integer fen) or amount (yuan)")
    return out, {c: labels[c] for c in out if not c.startswith("_ignored_")}


def _read(path: Path, encoding: str) -> tuple[pa.Table, str, dict[str, str]]:
    names, labels = _canonical_columns(path, _header(path, encoding))
    wanted = [n for n in names if not n.startswith("_ignored_")]
    read = pcsv.ReadOptions(column_names=names, skip_rows=1, encoding=encoding, block_size=1 << 24)
    conv = pcsv.ConvertOptions(
        include_columns=wanted,
        column_types={n: pa.string() for n in wanted},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pcsv.read_csv(path, read_options=read, convert_options=conv)
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "UTF8" in text or "utf8" in text.lower() or "decode" in text.lower():
            raise UnicodeError(text) from exc
        line = _arrow_line(text)
        if line is None:
            line, too_long = _first_bad_line(path, encoding, len(names))
            if too_long:
                raise ImportRejected(path, line, f"第 {line} 行超过 {_MAX_LINE >> 20} MiB，不是交易明细 / line longer "
                                     f"than {_MAX_LINE >> 20} MiB: not a transaction row") from exc
        raise ImportRejected(path, line, f"CSV 格式错误（列数与表头不符？）/ malformed CSV: "
                             f"{bounded(text.splitlines()[0] if text else '')}") from exc
    return table, encoding, labels


def _first_bad_line(path: Path, encoding: str, width: int) -> tuple[int | None, bool]:
    """(line, too long) of the first row longer than ``_MAX_LINE`` bytes or whose field count differs from
    the header's; lines are read one at a time with that limit, so a huge "line" is never held whole
    (error path only). Rows are physical lines: pyarrow is told values hold no newlines."""
    with path.open("rb") as fh:
        for n, raw in enumerate(iter(lambda: fh.readline(_MAX_LINE + 1), b""), 1):
            if len(raw) > _MAX_LINE:
                return n, True
            if n == 1:
                continue
            try:
                row = next(csv.reader([raw.decode(encoding, errors="replace")]), [])
            except csv.Error:
                return n, False
            if len(row) != width and any(f.strip() for f in row):
                return n, False
    return None, False


def _arrow_line(text: str) -> int | None:
    """Arrow reports 'Row #N' for structural errors (N counts the header as 1)."""
    m = re.search(r"Row #(\d+)", text)
    return int(m.group(1)) if m else None


def _bad_rows(valid: Any) -> np.ndarray:
    """Indices of the rows where ``valid`` (a boolean Arrow or numpy mask; null = bad) is not true."""
    if isinstance(valid, np.ndarray):
        return np.flatnonzero(~valid)
    ok = pc.fill_null(valid, False)
    if pc.all(ok).as_py():  # the common case: no row-wise work at all
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool))


def _check(problems: _Problems, col: str, values: pa.ChunkedArray, valid: Any, zh: str, en: str) -> np.ndarray:
    """Record every row where ``valid`` is not true; returns those rows' indices."""
    bad = _bad_rows(valid)
    problems.add(col, values, bad, zh, en)
    return bad


def _map_codes(problems: _Problems, col: str, values: pa.ChunkedArray, aliases: dict[str, int]) -> np.ndarray:
    keys = list(aliases)
    idx = pc.index_in(values, value_set=pa.array(keys))  # the common case: canonical spelling
    if idx.null_count:
        norm = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        idx = pc.index_in(norm, value_set=pa.array(keys))
        shown = " / ".join(sorted(set(keys)))
        _check(problems, col, values, pc.is_valid(idx), f"须为以下之一 {shown}", f"must be one of {shown}")
        idx = pc.fill_null(idx, 0)  # a placeholder: the file is rejected
    codes = np.array([aliases[k] for k in keys], dtype=np.int16)
    out: np.ndarray = codes[idx.to_numpy()]
    return out


@dataclass
class _Prepared:
    n: int
    order: np.ndarray
    cycle_days: np.ndarray
    merchant_id: np.ndarray
    terminal_id: np.ndarray
    kind: np.ndarray
    card: np.ndarray
    amount: np.ndarray
    fee: np.ndarray
    refs: pa.ChunkedArray
    ts_us: np.ndarray  # UTC microseconds since the epoch
    extra: dict[str, pa.Array] = field(default_factory=dict)  # optional columns present: stan, rrn, ... (None = NULL)


def _check_refs(problems: _Problems, refs: pa.ChunkedArray) -> None:
    _check(problems, "external_ref", refs, pc.match_substring_regex(refs, REF_PATTERN),
           "须为 1–32 位字母、数字、_ 或 -", "must be 1-32 characters of A-Z a-z 0-9 _ -")


_OPTIONAL_CHECKS = {
    "stan": (STAN_PATTERN, "须为 6 位数字（或留空）", "must be 6 digits (or empty)"),
    "rrn": (RRN_PATTERN, "须为 12 位字母或数字（或留空）", "must be 12 letters or digits (or empty)"),
    "auth_code": (AUTH_PATTERN, "须为 6 位字母或数字（或留空）", "must be 6 letters or digits (or empty)"),
    "card_no": (CARD_PATTERN, "须为 12–19 位卡号，或前 6 后 4 的屏蔽卡号（如 622202******0123），或留空",
                "must be a card number of 12-19 digits, a masked one (first 6, last 4: 622202******0123), or empty"),
}
_NULL = pa.scalar(None, pa.string())


def _card_column(problems: _Problems, table: pa.Table, card_key: bytes | None) -> pa.Array | None:
    """The card_token of every row from the card number column (checked; null where empty), or None without one.

    The card number never leaves this function: only its token does."""
    if "card_no" not in table.column_names:
        return None
    raw = table["card_no"]
    values = pc.replace_substring(pc.utf8_trim_whitespace(raw), " ", "")
    pattern, zh, en = _OPTIONAL_CHECKS["card_no"]
    _check(problems, "card_no", raw, pc.match_substring_regex(values, pattern), zh, en)
    if card_key is None:
        raise ImportRejected(problems.path, 1, f"文件有卡号列 {problems.label('card_no')}，需要卡号密钥计算卡标识 / "
                             f"the file has a card number column ({problems.label('card_no')}): the card key is "
                             "needed to compute the card token (SETTLEGUARD_KEY_FILE)")
    return card_tokens(values, card_key)


def _optional(problems: _Problems, table: pa.Table) -> dict[str, pa.Array]:
    """The optional text columns present (stan, rrn, auth_code), checked column-wise.

    Values are trimmed; an empty value is NULL. A file whose only reference column is 检索参考号 keeps it as
    the external_ref (as before) and gives it as the rrn too where it is an RRN (12 letters or digits)."""
    out: dict[str, pa.Array] = {}
    for col in OPTIONAL:
        if col == "card_no" or col not in table.column_names:
            continue
        raw = table[col]
        values = pc.utf8_trim_whitespace(raw)
        pattern, zh, en = _OPTIONAL_CHECKS[col]
        _check(problems, col, raw, pc.match_substring_regex(values, pattern), zh, en)
        kept = pc.if_else(pc.greater(pc.utf8_length(values), 0), values, _NULL)
        out[col] = kept.combine_chunks() if isinstance(kept, pa.ChunkedArray) else kept
    if "rrn" not in table.column_names and problems.labels.get("external_ref") == RRN_ALIAS:
        refs = table["external_ref"]
        rrn = pc.if_else(pc.match_substring_regex(refs, r"^[A-Za-z0-9]{12}$"), refs, _NULL)
        out["rrn"] = rrn.combine_chunks() if isinstance(rrn, pa.ChunkedArray) else rrn
    return out


def _amounts(problems: _Problems, table: pa.Table) -> np.ndarray:
    """Amounts in fen; bad rows are recorded and read as 0 (the file is then rejected)."""
    shape_bad = np.zeros(0, dtype=np.int64)
    if "amount_fen" in table.column_names:
        col, raw = "amount_fen", table["amount_fen"]
        try:  # the cast checks the digits; the slower pattern only runs to find the bad lines
            amount = pc.cast(raw, pa.int64()).to_numpy()
            shape_ok = bool((amount < 10**13).all())  # signs are caught by the "> 0" check below
        except pa.ArrowInvalid:
            shape_ok = False
        if not shape_ok:
            mask = pc.fill_null(pc.match_substring_regex(raw, FEN_PATTERN), False)
            shape_bad = _check(problems, col, raw, mask, "须为整数分（最多 13 位数字）",
                               "must be a whole number of fen (at most 13 digits)")
            amount = pc.cast(pc.if_else(mask, raw, "0"), pa.int64()).to_numpy()
    else:
        col, raw = "amount", table["amount"]
        mask = pc.fill_null(pc.match_substring_regex(raw, YUAN_PATTERN), False)
        shape_bad = _check(problems, col, raw, mask, "须为金额（元），最多两位小数", "must be yuan with at most 2 decimals")
        if shape_bad.size:
            raw = pc.if_else(mask, raw, "0")
        amount = pc.cast(pc.multiply(pc.cast(raw, pa.decimal128(15, 2)), pa.scalar(100, pa.decimal128(3, 0))),
                         pa.int64()).to_numpy()
    positive = amount > 0
    positive[shape_bad] = True  # reported once, as its shape
    _check(problems, col, table[col], positive, "须大于零", "must be greater than zero")
    out: np.ndarray = amount
    return out


def _times(problems: _Problems, times: pa.ChunkedArray, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTC microseconds, local hour, local day number) of every row.

    A time with a UTC offset is read as such; one without is local time in ``tz`` (Settings.timezone,
    Asia/Shanghai by default: the usual Chinese POS export). Arrow's ISO 8601 cast is the check; only when
    it fails are the rows checked one column-wise step at a time to find every bad one.
    """
    try:
        ts_utc = pc.cast(times, pa.timestamp("us", tz="UTC"))  # every row has an offset
    except pa.ArrowInvalid:
        try:  # no row has one
            ts_utc = pc.assume_timezone(pc.cast(times, pa.timestamp("us")), timezone=tz,
                                        ambiguous="earliest", nonexistent="earliest")
        except pa.ArrowInvalid:
            ts_utc = _mixed_times(problems, times, tz)
    local = pc.cast(ts_utc, pa.timestamp("us", tz=tz))
    hour = pc.hour(local).to_numpy()
    local_days = pc.cast(pc.cast(pc.local_timestamp(local), pa.date32()), pa.int32()).to_numpy()
    return pc.cast(ts_utc, pa.int64()).to_numpy(), hour, local_days


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _mixed_times(problems: _Problems, times: pa.ChunkedArray, tz: str) -> pa.ChunkedArray:
    """Times with and without offsets, or bad ones: every bad row is recorded (vectorised masks) and read as
    the epoch; the others are read with their offset or in ``tz``."""
    shape = pc.fill_null(pc.match_substring_regex(times, TIME_PATTERN), False)
    bad_shape = _check(problems, "occurred_at", times, shape, "须为日期时间，如 2026-11-20 12:03:11（本地时间）或 "
                       "2026-11-20T12:03:11+08:00", "must be a date and time such as 2026-11-20 12:03:11 (local time) "
                       "or 2026-11-20T12:03:11+08:00")
    parts = pc.extract_regex(pc.if_else(shape, times, "1970-01-01 00:00:00"), TIME_PARTS)
    y, mo, d, h, mi, sec = (pc.cast(parts.field(k) if isinstance(parts, pa.StructArray) else
                                    pc.struct_field(parts, k), pa.int64()).to_numpy()
                            for k in ("y", "mo", "d", "h", "mi", "s"))
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_ok = (mo >= 1) & (mo <= 12)
    dim = _DAYS_IN_MONTH[np.where(month_ok, mo, 1)] + ((mo == 2) & leap)
    real = month_ok & (d >= 1) & (d <= dim) & (h <= 23) & (mi <= 59) & (sec <= 59)
    real[bad_shape] = True  # reported once, as its shape
    _check(problems, "occurred_at", times, real, "不是真实的日期时间", "not a real date and time")
    ok = pa.array(real & np.asarray(shape.to_numpy(zero_copy_only=False), dtype=bool))
    has_offset = pc.and_(ok, pc.fill_null(pc.match_substring_regex(times, OFFSET_PATTERN), False))
    no_offset = pc.and_(ok, pc.invert(has_offset))
    try:
        aware = pc.cast(pc.if_else(has_offset, times, "1970-01-01T00:00:00Z"), pa.timestamp("us", tz="UTC"))
        naive = pc.cast(pc.if_else(no_offset, times, "1970-01-01T00:00:00"), pa.timestamp("us"))
        local = pc.cast(pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="earliest"),
                        pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:  # a value the checks above let through (an offset such as +99:00): name it
        raise _first_bad_time(problems, times) from None
    out: pa.ChunkedArray = pc.if_else(has_offset, aware, local)
    return out


def _first_bad_time(problems: _Problems, times: pa.ChunkedArray) -> ImportRejected:
    """The first row Arrow cannot read as a time, found row by row (a last resort, error path only)."""
    for i, v in enumerate(times.to_pylist()):
        try:
            if re.search(OFFSET_PATTERN, v):
                pc.cast(pa.array([v]), pa.timestamp("us", tz="UTC"))
            else:
                pc.cast(pa.array([v]), pa.timestamp("us"))
        except pa.ArrowInvalid:
            return ImportRejected(problems.path, i + 2, problems.message(
                "occurred_at", "不是真实的日期时间", "not a real date and time", v))
    return ImportRejected(problems.path, None, f"列 {problems.label('occurred_at')} 无法读取 / unreadable times")


def _refuse_future(problems: _Problems, times: pa.ChunkedArray, ts_us: np.ndarray, now: datetime,
                   tolerance: timedelta, tz: str) -> None:
    """Record every row whose time is later than ``now + tolerance`` (one vectorised comparison)."""
    limit = now + tolerance
    late = ts_us > (limit - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    if late.any():
        minutes = int(tolerance.total_seconds() // 60)
        shown = f"{now.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"
        problems.add("occurred_at", times, np.flatnonzero(late),
                     f"交易时间晚于当前时间 {minutes} 分钟以上（现在 {shown} 北京时间）",
                     f"in the future, more than {minutes} min after now ({shown} Beijing time)")


def _lookup(problems: _Problems, col: str, values: pa.ChunkedArray, keys: pa.Array, zh: str, en: str) -> np.ndarray:
    idx = pc.index_in(values, value_set=keys)
    if idx.null_count:
        _check(problems, col, values, pc.is_valid(idx), zh, en)
        idx = pc.fill_null(idx, -1)  # unknown: the file is rejected (-1 picks a placeholder row)
    out: np.ndarray = idx.to_numpy()
    return out


def _prepare(conn: Connection, problems: _Problems, table: pa.Table, cutoffs: CutOffs,
             latest: tuple[datetime, timedelta] | None = None, card_key: bytes | None = None) -> _Prepared:
    """Check every column and compute ids, business days and fees, vectorised.

    The column checks and the sort run on two threads (pyarrow's kernels and numpy's sort
    release the GIL); every check records all its bad rows (``problems``) and the file is rejected
    once, after them all, with the problems in line order.
    """
    path = problems.path
    n = table.num_rows
    if n == 0:
        raise ImportRejected(path, None, "表头之后没有交易 / no transactions after the header")
    m_id_list, m_no_list, m_cycle_list, m_sched_list = merchants_repo.merchant_columns(conn)
    terms = merchants_repo.terminal_keys(conn)
    schedules = merchants_repo.fee_schedules(conn)
    m_nos = pa.array(m_no_list, pa.string())
    contract_keys, contract_sched = _contract_table(conn, m_id_list, schedules)
    retired = merchants_repo.retired_terminals(conn)
    closed = merchants_repo.closed_since(conn)  # a closed merchant takes no transaction after its close

    m_ids = np.array(m_id_list, dtype=np.int64)
    m_t1 = np.array(m_cycle_list, dtype=object) == str(Cycle.T1)
    sched_pos = {sid: i for i, sid in enumerate(schedules)}
    m_sched = np.array([sched_pos[sid] for sid in m_sched_list], dtype=np.int64)
    rate = np.zeros((len(schedules), 4), dtype=np.int64)
    cap = np.full((len(schedules), 4), np.iinfo(np.int64).max, dtype=np.int64)
    for sid, sched in schedules.items():
        for ct, r in sched.rates.items():
            rate[sched_pos[sid], int(ct)] = r.rate_ppm
            if r.cap_fen is not None:
                cap[sched_pos[sid], int(ct)] = r.cap_fen

    with ThreadPoolExecutor(max_workers=2) as pool:
        f_tokens = pool.submit(_card_column, problems, table, card_key)  # first: the longest (one HMAC per card)
        f_extra = pool.submit(_optional, problems, table)
        f_refs = pool.submit(_check_refs, problems, table["external_ref"])
        f_kind = pool.submit(_map_codes, problems, "kind", table["kind"], dict(KIND_ALIASES))
        f_card = pool.submit(_map_codes, problems, "card_type", table["card_type"], dict(CARD_ALIASES))
        f_amount = pool.submit(_amounts, problems, table)
        f_times = pool.submit(_times, problems, table["occurred_at"], cutoffs.timezone)
        f_midx = pool.submit(_lookup, problems, "merchant_no", table["merchant_no"], m_nos, "商户未注册",
                             "unknown merchant")
        f_tidx = pool.submit(lambda: _terminal_ids(problems, table["terminal_no"], f_midx.result(), m_no_list,
                                                   terms))
        ts_us, hour, local_days = f_times.result()
        if latest is not None:
            _refuse_future(problems, table["occurred_at"], ts_us, *latest, cutoffs.timezone)
        midx = f_midx.result()
        if not m_ids.size:  # no merchant registered: every row was refused, nothing to compute
            f_refs.result(), f_kind.result(), f_card.result(), f_amount.result(), f_tidx.result(), f_extra.result(), f_tokens.result()
            problems.raise_if_any()
        merchant_id = m_ids[midx]
        cutoff = np.where(m_t1[midx], cutoffs.t1_hour, cutoffs.d0_hour)
        cycle_days = local_days + (hour >= cutoff).astype(np.int32)
        f_order = pool.submit(_sort_order, cycle_days, merchant_id)  # numpy sorts without the GIL
        kind, card, amount = f_kind.result(), f_card.result(), f_amount.result()
        # fee = min(cap, round_half_up(amount * rate)) with the sign of the kind (money.fee_fen), under
        # the contract in force on the row's business day (merchants/contracts.py); one formula with the fee
        # audit (fees/compute.py), so what is charged here is what the audit expects
        fee = contract_fees(amount, kind, card,
                            _schedule_in_force(m_sched, midx, cycle_days, contract_keys, contract_sched), rate, cap)
        f_refs.result()
        tidx = f_tidx.result()
        if retired:
            _refuse_retired(problems, table["terminal_no"], tidx, ts_us, retired, cutoffs.timezone)
        if closed:
            _refuse_closed(problems, table["merchant_no"], merchant_id, midx, ts_us, closed)
        order = f_order.result()
        extra = f_extra.result()
        tokens = f_tokens.result()
        if tokens is not None:
            extra["card_token"] = tokens
    problems.raise_if_any()  # every bad row of every column, at once

    d0 = int(cycle_days.min())
    days_present = np.flatnonzero(np.bincount(cycle_days - d0)) + d0
    settled = _settled_keys(conn, days_present)
    if settled.size:
        late = np.isin((cycle_days.astype(np.int64) << 32) | merchant_id, settled)
        def settled_message(i: int) -> str:
            day = _EPOCH + timedelta(days=int(cycle_days[i]))
            no = str(table["merchant_no"][i].as_py())  # a registered merchant's number (it was found), not masked
            return (f"商户 {no} 的业务日 {day} 已结算，迟到的交易请放入以后的文件 / merchant {no}: business day {day} "
                    "is already settled; late transactions belong in a later file day")

        problems.add_each(np.flatnonzero(late), settled_message)
        problems.raise_if_any()
    return _Prepared(n, order, cycle_days, merchant_id, tidx, kind, card,
                     amount, fee, table["external_ref"], ts_us, extra)


def _contract_table(conn: Connection, m_id_list: list[int], schedules: Mapping[int, Any]) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Sorted keys (merchant position << 32 | first business day) and schedule positions of contract changes."""
    changes = contracts_repo.contract_changes(conn)
    if not changes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    m_pos = {mid: i for i, mid in enumerate(m_id_list)}
    s_pos = {sid: i for i, sid in enumerate(schedules)}
    keys = np.array([(m_pos[mid] << 32) | (day - _EPOCH).days for mid, day, _ in changes], dtype=np.int64)
    sched = np.array([s_pos[sid] for _, _, sid in changes], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    return keys[order], sched[order]


def _schedule_in_force(m_sched: np.ndarray, midx: np.ndarray, cycle_days: np.ndarray, keys: np.ndarray,
                       sched: np.ndarray) -> np.ndarray:
    """Each row's fee schedule position: its merchant's, or the latest contract change on or before its day."""
    base: np.ndarray = m_sched[midx]
    if not keys.size:
        return base
    q = (midx.astype(np.int64) << 32) | cycle_days.astype(np.int64)
    i = np.searchsorted(keys, q, side="right") - 1
    safe = np.maximum(i, 0)
    hit = (i >= 0) & ((keys[safe] >> 32) == midx)
    out: np.ndarray = np.where(hit, sched[safe], base)
    return out


def _refuse_retired(problems: _Problems, terminal_no: pa.ChunkedArray, tidx: np.ndarray, ts_us: np.ndarray,
                    retired: list[tuple[int, datetime]], tz: str) -> None:
    """Record every row from a terminal at or after its retirement (撤机)."""
    ids = np.array([tid for tid, _ in retired], dtype=np.int64)
    at = np.array([(when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for _, when in retired],
                  dtype=np.int64)
    order = np.argsort(ids)
    ids, at = ids[order], at[order]
    pos = np.minimum(np.searchsorted(ids, tidx), len(ids) - 1)
    bad = (ids[pos] == tidx) & (ts_us >= at[pos])
    if bad.any():
        problems.add("terminal_no", terminal_no, np.flatnonzero(bad), "终端已撤机，不能再有交易（撤机后的交易）",
                     "terminal retired: a transaction after its retirement is refused")


def _refuse_closed(problems: _Problems, merchant_no: pa.ChunkedArray, merchant_id: np.ndarray, midx: np.ndarray,
                   ts_us: np.ndarray, closed: Mapping[int, datetime]) -> None:
    """Record every row of a closed merchant (注销) that happened at or after its close (merchants.lifecycle)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ids = np.array(sorted(closed), dtype=np.int64)
    at = np.array([(closed[int(i)] - epoch) // timedelta(microseconds=1) for i in ids], dtype=np.int64)
    pos = np.minimum(np.searchsorted(ids, merchant_id), len(ids) - 1)
    bad = (midx >= 0) & (ids[pos] == merchant_id) & (ts_us >= at[pos])
    if bad.any():
        problems.add("merchant_no", merchant_no, np.flatnonzero(bad), "商户已注销，注销后的交易不能导入",
                     "merchant closed: a transaction at or after its close is refused")


def _terminal_ids(problems: _Problems, terminal_no: pa.ChunkedArray, midx: np.ndarray, merchant_nos: list[str],
                  terms: list[tuple[int, str, str]]) -> np.ndarray:
    """Terminal id of every row; the terminal must be registered to the row's merchant.

    Works on integer keys (merchant position x terminal number code), not on joined strings.
    """
    numbers = sorted({tn for _, _, tn in terms})
    code_of = {tn: i for i, tn in enumerate(numbers)}
    tcode = pc.index_in(terminal_no, value_set=pa.array(numbers, pa.string()))
    width = len(numbers) + 1
    row_keys = midx.astype(np.int64) * width + pc.fill_null(tcode, len(numbers)).to_numpy()
    m_pos = {mn: i for i, mn in enumerate(merchant_nos)}
    reg_keys = np.array([m_pos[mn] * width + code_of[tn] for _, mn, tn in terms], dtype=np.int64)
    reg_ids = np.array([tid for tid, _, _ in terms], dtype=np.int64)
    by_key = np.argsort(reg_keys)
    reg_keys, reg_ids = reg_keys[by_key], reg_ids[by_key]
    pos = np.minimum(np.searchsorted(reg_keys, row_keys), max(len(reg_keys) - 1, 0))
    ok = reg_keys[pos] == row_keys if len(reg_keys) else np.zeros(len(row_keys), dtype=bool)
    ok |= midx < 0  # an unknown merchant is reported as such, not again as its terminal
    _check(problems, "terminal_no", terminal_no, ok, "终端未登记在该商户名下", "terminal not registered to this merchant")
    out: np.ndarray = reg_ids[pos] if len(reg_ids) else np.zeros(0, dtype=np.int64)
    return out


def _sort_order(cycle_days: np.ndarray, merchant_id: np.ndarray) -> np.ndarray:
    """Row order by (business day, merchant), stable: the clustered key's order, so inserts append.

    Two 16-bit radix passes when the combined key fits 32 bits (10 M rows: 0.3 s instead of 1.1 s).
    """
    d0 = int(cycle_days.min())
    width = int(merchant_id.max()) + 1
    span = (int(cycle_days.max()) - d0 + 1) * width
    if span >= 2**32:
        out: np.ndarray = np.argsort((cycle_days.astype(np.int64) << 32) | merchant_id, kind="stable")
        return out
    k32 = ((cycle_days.astype(np.int64) - d0) * width + merchant_id).astype(np.uint32)
    order = np.argsort((k32 & 0xFFFF).astype(np.uint16), kind="stable")
    order = order[np.argsort((k32[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def _settled_keys(conn: Connection, days: np.ndarray) -> np.ndarray:
    dates = [_EPOCH + timedelta(days=int(d)) for d in days]
    rows = conn.execute(
        select(t.settlements.c.cycle_date, t.settlements.c.merchant_id).where(t.settlements.c.cycle_date.in_(dates))
    ).all()
    return np.array([((d - _EPOCH).days << 32) | m for d, m in rows], dtype=np.int64)


def _segments(p: _Prepared) -> list[tuple[date, int, int]]:
    """(business day, start, end) runs of the sorted rows."""
    days_sorted = p.cycle_days[p.order]
    bounds = (np.flatnonzero(np.diff(days_sorted)) + 1).tolist()
    starts, ends = [0, *bounds], [*bounds, p.n]
    return [(_EPOCH + timedelta(days=int(days_sorted[a])), a, b) for a, b in zip(starts, ends, strict=True)]


def _sqlite_chunks(p: _Prepared) -> Iterator[tuple[date, int, list[object]]]:
    """Row-major parameter lists, one chunk at a time, in clustered-key order.

    Columns are gathered into key order once, in C (numpy / Arrow take), so that each
    chunk converts a contiguous slice instead of scattering reads over 10 M rows.
    """
    order = p.order
    kind_card = p.kind.astype(np.int64) * 4 + p.card  # one parameter, split again in SQL (_row_values)
    taken = pa.array(order)
    cols: list[Any] = [p.merchant_id[order], pc.take(p.refs, taken).combine_chunks(),
                       p.terminal_id[order], kind_card[order], p.amount[order], p.fee[order], p.ts_us[order]]
    cols += [pc.take(v, taken) for v in _sqlite_extra(p)[1]]  # optional text columns (Arrow, None = NULL)
    width = len(cols)
    for day, seg_start, seg_end in _segments(p):
        for start in range(seg_start, seg_end, _CHUNK):
            end = min(start + _CHUNK, seg_end)
            flat: list[object] = [None] * ((end - start) * width)
            for j, col in enumerate(cols):
                flat[j::width] = (col[start:end].tolist() if isinstance(col, np.ndarray)
                                  else col.slice(start, end - start).to_pylist())
            yield day, end, flat


def _sqlite_extra(p: _Prepared) -> tuple[list[str], list[pa.Array], list[str]]:
    """(column names, parameter columns, SQL expressions with ``{n}`` for the n-th extra parameter) of the
    optional columns, one bound parameter each. (Packing stan, rrn and auth_code into one padded parameter split
    by substr() in SQL was measured slower: the string functions cost more than the binding they save.)"""
    return list(p.extra), list(p.extra.values()), [f"?{{{n}}}" for n in range(len(p.extra))]


def _row_values(day: date, import_id: int, row: int, exprs: Sequence[str] = (), extra: int = 0) -> str:
    """VALUES tuple of the ``row``-th row of a statement, with numbered parameters.

    The business day and import id are literals; kind and card type arrive as one number
    ``kind * 4 + card`` (binding parameters is the costliest part of the load). The optional
    columns' ``exprs`` (over ``extra`` parameters, see _sqlite_extra) follow the import id.
    """
    width = _PARAMS + extra
    b = row * width
    first = [b + _PARAMS + 1 + k for k in range(extra)]
    more = "".join(f",{e.format(*first)}" for e in exprs)
    return (f"('{day.isoformat()}',?{b + 1},?{b + 2},?{b + 3},?{b + 4}/4,?{b + 4}%4,?{b + 5},?{b + 6},?{b + 7},"
            f"{int(import_id)}{more})")


def _insert_sqlite(conn: Connection, p: _Prepared, import_id: int, progress: Progress | None) -> None:
    """Multi-row INSERTs; a second thread builds the next chunk's parameters meanwhile.

    sqlite3 releases the GIL while SQLite works, so building and inserting overlap. Seven
    bound parameters per row, not ten (see _row_values).
    """
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    cache = cur.execute("PRAGMA cache_size").fetchone()[0]
    cur.execute("PRAGMA cache_size=-1048576")  # 1 GiB for this load: fewer dirty-page spills mid-transaction
    chunks: queue.Queue[tuple[date, int, list[object]] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def build() -> None:
        try:
            for item in _sqlite_chunks(p):
                if stop.is_set():
                    return
                chunks.put(item)
        except BaseException as exc:  # handed to the inserting thread
            chunks.put(exc)
        chunks.put(None)

    builder = threading.Thread(target=build, name="import-chunks", daemon=True)
    builder.start()
    names, params, exprs = _sqlite_extra(p)
    extra = len(params)
    row_width = _PARAMS + extra
    width = row_width * _ROWS_PER_STATEMENT
    head = f"INSERT INTO transactions ({', '.join((*_COLUMNS, *names))}) VALUES "
    statements: dict[date, tuple[str, str]] = {}
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            day, done, flat = item
            if day not in statements:
                statements[day] = (
                    head + ",".join(_row_values(day, import_id, r, exprs, extra)
                                    for r in range(_ROWS_PER_STATEMENT)),
                    head + _row_values(day, import_id, 0, exprs, extra))
            many_sql, row_sql = statements[day]
            full = (len(flat) // width) * width
            for off in range(0, full, width):
                cur.execute(many_sql, flat[off:off + width])
            rest = flat[full:]
            if rest:
                cur.executemany(row_sql, [rest[i:i + row_width] for i in range(0, len(rest), row_width)])
            if progress:
                progress("insert", done, p.n)
    finally:
        stop.set()
        while builder.is_alive():  # unblock the builder after an error
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                pass
        cur.execute(f"PRAGMA cache_size={int(cache)}")
        cur.close()


def _insert_postgres(conn: Connection, p: _Prepared, import_id: int, progress: Progress | None) -> None:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cur:  # type: ignore[attr-defined]
        for start in range(0, p.n, _CHUNK * 5):
            idx = p.order[start:start + _CHUNK * 5]
            taken = pa.array(idx)
            part = pa.table({
                "cycle_date": pa.array(p.cycle_days[idx], pa.int32()).cast(pa.date32()),
                "merchant_id": pa.array(p.merchant_id[idx]),
                "external_ref": pc.take(p.refs, taken),
                "terminal_id": pa.array(p.terminal_id[idx]),
                "kind": pa.array(p.kind[idx]),
                "card_type": pa.array(p.card[idx]),
                "amount_fen": pa.array(p.amount[idx]),
                "fee_fen": pa.array(p.fee[idx]),
                "occurred_at": pa.array(p.ts_us[idx]),
                "import_id": pa.array(np.full(len(idx), import_id, dtype=np.int64)),
                **{name: pc.take(values, taken) for name, values in p.extra.items()},  # null -> empty -> NULL
            })
            buf = io.BytesIO()
            pcsv.write_csv(part, buf, write_options=pcsv.WriteOptions(include_header=False))
            with cur.copy(f"COPY transactions ({', '.join(part.column_names)}) FROM STDIN WITH (FORMAT csv)") as cp:
                cp.write(buf.getvalue())
            if progress:
                progress("insert", min(start + len(idx), p.n), p.n)


def _find_repeat(path: Path, p: _Prepared) -> ImportRejected | None:
    """After a unique violation: does a reference repeat inside the file (same merchant and day)?"""
    rows = pa.table({"day": p.cycle_days, "mid": p.merchant_id, "ref": p.refs, "line": np.arange(p.n) + 2})
    groups = rows.group_by(["day", "mid", "ref"], use_threads=False).aggregate(
        [("line", "min"), ("line", "max"), ("line", "count")])
    dups = groups.filter(pc.greater(groups["line_count"], 1))
    if dups.num_rows == 0:
        return None
    first = int(pc.min(dups["line_max"]).as_py())
    row = dups.filter(pc.equal(dups["line_max"], first))
    ref, other = bounded(repr(row['ref'][0].as_py())), row['line_min'][0].as_py()
    return ImportRejected(path, first, f"参考号 {ref} 与第 {other} 行重复（同一商户、同一业务日）/ column external_ref: "
                          f"{ref} repeats line {other} for the same merchant and business day")


def _find_existing(engine: Engine, path: Path, p: _Prepared) -> ImportRejected | None:
    """After a unique violation: which line is already in the database?"""
    with engine.connect() as conn:
        for start in range(0, p.n, 500):
            rows = range(start, min(start + 500, p.n))
            keys = [(_EPOCH + timedelta(days=int(p.cycle_days[i])), int(p.merchant_id[i]), p.refs[i].as_py())
                    for i in rows]
            found = conn.execute(
                select(t.transactions.c.external_ref).where(
                    tuple_(t.transactions.c.cycle_date, t.transactions.c.merchant_id,
                           t.transactions.c.external_ref).in_(keys))
            ).first()
            if found is not None:
                i = next(i for i in rows if p.refs[i].as_py() == found[0])
                ref = bounded(repr(found[0]))
                return ImportRejected(path, i + 2, f"参考号 {ref} 已由另一个文件导入 / column external_ref: {ref} "
                                      "was already imported from another file")
    return None


_XLSX_MAX_UNZIPPED = 1 << 31  # declared uncompressed size of a workbook's parts: refuse a zip bomb unopened


def _is_xlsx(path: Path, head: bytes) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError):
        return False
    if not any(i.filename == "xl/workbook.xml" for i in infos):
        return False
    if sum(i.file_size for i in infos) > _XLSX_MAX_UNZIPPED:
        raise ImportRejected(path, None, f"Excel 文件解压后超过 {_XLSX_MAX_UNZIPPED >> 30} GiB / the workbook unpacks to "
                             f"more than {_XLSX_MAX_UNZIPPED >> 30} GiB")
    return True


def _cell(v: object) -> str:
    """A workbook cell as the CSV text it would be: a date-time without a zone stays local time (as in a CSV),
    a whole number typed as a number loses its ".0"."""
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _read_xlsx(path: Path) -> tuple[pa.Table, str, dict[str, str]]:
    """The first sheet of an .xlsx workbook as the CSV reader's string columns, streamed row by row (openpyxl
    read-only mode); line numbers are the sheet's row numbers. Trailing empty rows are dropped."""
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # only for workbooks

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a broken or encrypted workbook
        raise ImportRejected(path, None, f"无法读取 Excel 文件，请另存为 CSV / cannot read the Excel file, save it as "
                             f"CSV: {bounded(str(exc))}") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or not any(_cell(v).strip() for v in header):
            raise ImportRejected(path, 1, "空文件，缺少表头 / empty file: expected a header row")
        names, labels = _canonical_columns(path, [_cell(v).strip() for v in header])
        keep = [(i, c) for i, c in enumerate(names) if not c.startswith("_ignored_")]
        cols: dict[str, list[str]] = {c: [] for _, c in keep}
        filled = 0  # rows up to the last one with any value
        for row in rows:
            cells = [_cell(row[i]) if i < len(row) else "" for i, _ in keep]
            for (_, c), v in zip(keep, cells, strict=True):
                cols[c].append(v)
            if any(v.strip() for v in cells):
                filled = len(cols[keep[0][1]])
    finally:
        wb.close()
    table = pa.table({c: pa.array(v[:filled], pa.string()) for c, v in cols.items()})
    return table, "xlsx", labels


def _refuse_excel(path: Path, head: bytes) -> None:
    """An old Excel .xls (OLE2) or a zip that is not a workbook, given as CSV: say so, and how to fix it."""
    if head.startswith(EXCEL_MAGIC):
        if head.startswith(b"PK"):
            raise ImportRejected(path, None, "这是 zip 压缩文件，不是 CSV 或 Excel (.xlsx)：请先解压 / this is a zip "
                                 "archive, not CSV or an Excel .xlsx workbook: unzip it first")
        raise ImportRejected(path, None, "这是旧版 Excel (.xls) 文件：请在 Excel 中“另存为”CSV（UTF-8，逗号分隔）或 .xlsx "
                             "后再导入 / this is an Excel file (.xls): save it as CSV (UTF-8, comma-separated) or "
                             ".xlsx and import that")


def _read_any(path: Path, encoding: str | None) -> tuple[pa.Table, str, dict[str, str]]:
    """Parse with the given encoding, or detect it: UTF-8 first, GBK when that fails."""
    head, more = _head(path)
    if _is_xlsx(path, head):
        return _read_xlsx(path)
    _refuse_excel(path, head)
    enc = (encoding or detect_encoding(path)).lower().replace("_", "-")
    if enc in ("utf8", "utf-8-sig"):
        enc = "utf-8"
    _refuse_binary(path, head, more, enc if encoding else None)
    try:
        return _read(path, enc)
    except UnicodeError as exc:
        if encoding is None and enc == "utf-8":
            try:
                return _read(path, "gbk")
            except UnicodeError as exc2:
                raise ImportRejected(path, None, f"neither UTF-8 nor GBK: {exc2}") from exc2
        raise ImportRejected(path, None, f"not valid {enc}: {exc}") from exc


def import_transactions(
    engine: Engine,
    path: Path,
    *,
    cutoffs: CutOffs,
    now: datetime,
    encoding: str | None = None,
    progress: Progress | None = None,
    future_tolerance: timedelta | None = None,
    card_key: CardKey | None = None,
) -> ImportResult:
    """Import one transaction file; see the module docstring for the guarantees.

    With ``future_tolerance`` (the CLI passes ``Settings.future_tolerance_minutes``), a row whose time is
    later than ``now`` plus it rejects the file at its line: a sale cannot happen after its import.
    ``card_key`` is the card-token key (imports/card_token.token_key of the card vault), or a function
    returning it that is called only when the file has a card number column; without it such a file is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportRejected(path, None, "no such file")
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as hasher:  # hash while pyarrow parses (both release the GIL)
        f_sha = hasher.submit(file_sha256, path, stop)
        try:
            table, enc, labels = _read_any(path, encoding)
        except BaseException:
            stop.set()  # a rejected file is not read to its end
            raise
        sha = f_sha.result()
    with engine.connect() as conn:
        done = conn.execute(
            select(t.imports.c.id, t.imports.c.row_count, t.imports.c.encoding)
            .where(t.imports.c.kind == "transactions", t.imports.c.sha256 == sha)
        ).first()
    if done is not None:
        return ImportResult(path, sha, done.encoding, done.row_count, done.id, already_imported=True)
    if progress:
        progress("parsed", table.num_rows, table.num_rows)
    key = None
    if "card_no" in table.column_names and card_key is not None:
        key = card_key() if callable(card_key) else card_key

    p: _Prepared | None = None
    try:
        with engine.begin() as conn:
            latest = None if future_tolerance is None else (now, future_tolerance)
            p = _prepare(conn, _Problems(path, labels), table, cutoffs, latest, key)
            del table
            _ensure_partitions(engine, path, p)  # PostgreSQL: the days' partitions, committed before the rows
            import_id = conn.execute(insert(t.imports).values(
                kind="transactions", sha256=sha, filename=path.name, encoding=enc, row_count=p.n, imported_at=now,
            )).inserted_primary_key
            assert import_id is not None
            iid = int(import_id[0])
            if conn.dialect.name == "postgresql":
                _insert_postgres(conn, p, iid, progress)
            else:
                _insert_sqlite(conn, p, iid, progress)
    except Exception as exc:
        if p is None or not _is_unique_violation(exc):
            raise
        found = _find_repeat(path, p) or _find_existing(engine, path, p)
        raise (found or ImportRejected(path, None, f"duplicate transaction: {exc}")) from exc
    days = sorted({_EPOCH + timedelta(days=int(d)) for d in np.unique(p.cycle_days)})
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # partitioned: the days' partitions only (the parent would sample them all)
            for name in partitions.analyze_targets(conn, days):
                conn.exec_driver_sql(f'ANALYZE "{name}"')
    return ImportResult(path, sha, enc, p.n, iid, already_imported=False, cycle_dates=days)


def _ensure_partitions(engine: Engine, path: Path, p: _Prepared) -> None:
    """The daily partitions of the days about to be inserted (db/partitions.py), in their own short transaction:
    attaching holds locks to the end of its transaction, and inside this one they would serialise two imports
    and stall readers of the default partition for the whole COPY. An empty partition left by a failed import
    is harmless; the rows stay all-or-nothing."""
    if engine.dialect.name != "postgresql":
        return
    try:
        partitions.ensure_days(engine, (_EPOCH + timedelta(days=int(d)) for d in np.unique(p.cycle_days)))
    except partitions.PartitionError as exc:
        raise ImportRejected(path, None, f"{exc.zh} / {exc.en}") from exc


def _is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    name = type(exc).__name__
    return name in ("IntegrityError", "UniqueViolation")
