"""Import a POS transaction CSV file: validated whole, inserted atomically, idempotent.

The file is parsed and checked column-wise with pyarrow (multi-threaded C++), so a
10-million-row file is validated without a Python loop per row. Any bad row rejects
the whole file with its line number, column and reason; nothing is written. Importing a
file whose SHA-256 was already imported changes nothing. See docs/import.md.

Hostile input: the first 64 KiB are checked before anything else (control bytes such as NUL mean a
binary file; bytes that are neither UTF-8 nor GBK are refused; the header must end inside that block),
the file is only ever read block-wise (pyarrow) or line by line with a length limit, and every value
echoed in an error passes :func:`settleguard.masking.bounded` (200 characters, card numbers masked).
"""

from __future__ import annotations

import csv
import hashlib
import io
import queue
import re
import threading
from collections.abc import Callable, Iterator
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

from settleguard.db import tables as t
from settleguard.imports.csv_layout import (
    ALIASES,
    AMOUNT_COLUMNS,
    FEN_PATTERN,
    REF_PATTERN,
    REQUIRED,
    TIME_PATTERN,
    YUAN_PATTERN,
)
from settleguard.masking import bounded
from settleguard.merchants import repository as merchants_repo
from settleguard.settlement.model import CARD_ALIASES, KIND_ALIASES, CutOffs, Cycle, TxnKind

Progress = Callable[[str, int, int], None]
_EPOCH = date(1970, 1, 1)
_ROWS_PER_STATEMENT = 250  # 7 bound parameters per row -> 1,750 per INSERT
_PARAMS = 7
_CHUNK = 100_000
_COLUMNS = ("cycle_date", "merchant_id", "external_ref", "terminal_id", "kind", "card_type", "amount_fen", "fee_fen",
            "occurred_at", "import_id")
_INSERT = f"INSERT INTO transactions ({', '.join(_COLUMNS)}) VALUES "
_HEAD = 1 << 16  # the first block: checked for binary content; the header line must end inside it
_MAX_LINE = 1 << 20  # finding a bad line reads at most this much of one line (error path only)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")  # never in a CSV text, in UTF-8 or in GBK
DEFAULT_FUTURE_TOLERANCE = timedelta(minutes=10)


class ImportRejected(ValueError):
    """The file was rejected; nothing was imported.

    Attributes:
        path: the file.
        line: 1-based line number in the file (the header is line 1), or None.
        reason: what is wrong, in English with the offending value.
    """

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


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
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            if stop is not None and stop.is_set():
                return ""
            h.update(block)
    return h.hexdigest()


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
        raise ImportRejected(path, 1, "empty file: expected a header row")
    return [c.strip().strip('"').strip() for c in first.rstrip("\r\n").split(",")]


def _canonical_columns(path: Path, names: list[str]) -> list[str]:
    out: list[str] = []
    for i, n in enumerate(names):
        canon = ALIASES.get(n, ALIASES.get(n.lower(), f"_ignored_{i}"))
        if canon in out:
            raise ImportRejected(path, 1, f"column {canon!r} appears twice in the header")
        out.append(canon)
    missing = [c for c in REQUIRED if c not in out]
    if missing:
        raise ImportRejected(path, 1, f"missing column(s) {', '.join(missing)}; header is {bounded(','.join(names))}")
    amounts = [c for c in AMOUNT_COLUMNS if c in out]
    if len(amounts) != 1:
        raise ImportRejected(path, 1, "need exactly one amount column: amount_fen (integer fen) or amount (yuan)")
    return out


def _read(path: Path, encoding: str) -> tuple[pa.Table, str]:
    names = _canonical_columns(path, _header(path, encoding))
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
        raise ImportRejected(path, line, f"malformed CSV: {bounded(text.splitlines()[0] if text else '')}") from exc
    return table, encoding


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


def _first_false(mask: pa.ChunkedArray | pa.Array) -> int | None:
    idx = pc.index(pc.fill_null(mask, False), False).as_py()
    return None if idx < 0 else int(idx)


def _check(path: Path, col: str, values: pa.ChunkedArray, valid: Any, reason: str) -> None:
    bad = _first_false(valid)
    if bad is not None:
        v = values[bad].as_py()
        raise ImportRejected(path, bad + 2, f"column {col}: {reason}, got {bounded(repr(v))}")


def _map_codes(path: Path, col: str, values: pa.ChunkedArray, aliases: dict[str, int]) -> np.ndarray:
    keys = list(aliases)
    idx = pc.index_in(values, value_set=pa.array(keys))  # the common case: canonical spelling
    if idx.null_count:
        norm = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        idx = pc.index_in(norm, value_set=pa.array(keys))
        _check(path, col, values, pc.is_valid(idx), f"must be one of {sorted(set(keys))}")
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


def _check_refs(path: Path, refs: pa.ChunkedArray) -> None:
    _check(path, "external_ref", refs, pc.match_substring_regex(refs, REF_PATTERN),
           "must be 1-32 characters of A-Z a-z 0-9 _ -")


def _amounts(path: Path, table: pa.Table) -> np.ndarray:
    if "amount_fen" in table.column_names:
        col, raw = "amount_fen", table["amount_fen"]
        try:  # the cast checks the digits; the slower pattern only runs to find a bad line
            amount = pc.cast(raw, pa.int64()).to_numpy()
            shape_ok = bool((amount < 10**13).all())  # signs are caught by the "> 0" check below
        except pa.ArrowInvalid:
            shape_ok = False
        if not shape_ok:
            _check(path, col, raw, pc.match_substring_regex(raw, FEN_PATTERN),
                   "must be a whole number of fen (at most 13 digits)")
            amount = pc.cast(raw, pa.int64()).to_numpy()
    else:
        col, raw = "amount", table["amount"]
        _check(path, col, raw, pc.match_substring_regex(raw, YUAN_PATTERN), "must be yuan with at most 2 decimals")
        amount = pc.cast(pc.multiply(pc.cast(raw, pa.decimal128(15, 2)), pa.scalar(100, pa.decimal128(3, 0))),
                         pa.int64()).to_numpy()
    _check(path, col, raw, pa.array(amount > 0), "must be greater than zero")
    out: np.ndarray = amount
    return out


def _times(path: Path, times: pa.ChunkedArray, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTC microseconds, local hour, local day number) of every row.

    Arrow's ISO 8601 cast is the check (it refuses values without a UTC offset); only when
    it fails are the values walked in Python to name the first bad line.
    """
    try:
        ts_utc = pc.cast(times, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        raise _first_bad_time(path, times) from None
    local = pc.cast(ts_utc, pa.timestamp("us", tz=tz))
    hour = pc.hour(local).to_numpy()
    local_days = pc.cast(pc.cast(pc.local_timestamp(local), pa.date32()), pa.int32()).to_numpy()
    return pc.cast(ts_utc, pa.int64()).to_numpy(), hour, local_days


def _first_bad_time(path: Path, times: pa.ChunkedArray) -> ImportRejected:
    shape = re.compile(TIME_PATTERN)
    for i, v in enumerate(times.to_pylist()):
        if not shape.match(v):
            return ImportRejected(path, i + 2, "column occurred_at: must be ISO 8601 with a UTC offset, "
                                  f"e.g. 2026-11-20T12:03:11+08:00, got {bounded(repr(v))}")
        try:
            pc.cast(pa.array([v]), pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            return ImportRejected(path, i + 2, f"column occurred_at: not a real date and time, got {bounded(repr(v))}")
    return ImportRejected(path, None, "column occurred_at: unreadable timestamps")


def _refuse_future(path: Path, times: pa.ChunkedArray, ts_us: np.ndarray, now: datetime, tolerance: timedelta,
                   tz: str) -> None:
    """Reject the first row whose time is later than ``now + tolerance`` (one vectorised comparison)."""
    limit = now + tolerance
    late = ts_us > (limit - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    if late.any():
        i = int(np.argmax(late))
        minutes = int(tolerance.total_seconds() // 60)
        raise ImportRejected(path, i + 2, f"column occurred_at: 交易时间晚于当前时间 {minutes} 分钟以上 / in the future, "
                             f"more than {minutes} min after now ({now.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} "
                             f"北京时间 Beijing time), got {bounded(repr(times[i].as_py()))}")


def _lookup(path: Path, col: str, values: pa.ChunkedArray, keys: pa.Array, reason: str) -> np.ndarray:
    idx = pc.index_in(values, value_set=keys)
    _check(path, col, values, pc.is_valid(idx), reason)
    out: np.ndarray = idx.to_numpy()
    return out


def _prepare(conn: Connection, path: Path, table: pa.Table, cutoffs: CutOffs,
             latest: tuple[datetime, timedelta] | None = None) -> _Prepared:
    """Check every column and compute ids, business days and fees, vectorised.

    The column checks and the sort run on two threads (pyarrow's kernels and numpy's sort
    release the GIL); results are read in a fixed order, so the error reported for a file
    with several problems is always the same one.
    """
    n = table.num_rows
    if n == 0:
        raise ImportRejected(path, None, "no transactions after the header")
    m_id_list, m_no_list, m_cycle_list, m_sched_list = merchants_repo.merchant_columns(conn)
    terms = merchants_repo.terminal_keys(conn)
    schedules = merchants_repo.fee_schedules(conn)
    m_nos = pa.array(m_no_list, pa.string())

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
        f_refs = pool.submit(_check_refs, path, table["external_ref"])
        f_kind = pool.submit(_map_codes, path, "kind", table["kind"], dict(KIND_ALIASES))
        f_card = pool.submit(_map_codes, path, "card_type", table["card_type"], dict(CARD_ALIASES))
        f_amount = pool.submit(_amounts, path, table)
        f_times = pool.submit(_times, path, table["occurred_at"], cutoffs.timezone)
        f_midx = pool.submit(_lookup, path, "merchant_no", table["merchant_no"], m_nos, "unknown merchant")
        f_tidx = pool.submit(lambda: _terminal_ids(path, table["terminal_no"], f_midx.result(), m_no_list, terms))
        ts_us, hour, local_days = f_times.result()
        if latest is not None:
            _refuse_future(path, table["occurred_at"], ts_us, *latest, cutoffs.timezone)
        midx = f_midx.result()
        merchant_id = m_ids[midx]
        cutoff = np.where(m_t1[midx], cutoffs.t1_hour, cutoffs.d0_hour)
        cycle_days = local_days + (hour >= cutoff).astype(np.int32)
        f_order = pool.submit(_sort_order, cycle_days, merchant_id)  # numpy sorts without the GIL
        kind, card, amount = f_kind.result(), f_card.result(), f_amount.result()
        # fee = min(cap, round_half_up(amount * rate)) with the sign of the kind (money.fee_fen)
        flat = m_sched[midx] * 4 + card
        fee = amount * rate.ravel()[flat]
        fee += 500_000
        fee //= 1_000_000
        np.minimum(fee, cap.ravel()[flat], out=fee)
        sign_of = np.zeros(len(TxnKind) + 1, dtype=np.int64)
        sign_of[int(TxnKind.SALE)] = 1
        sign_of[int(TxnKind.VOID)] = sign_of[int(TxnKind.REVERSAL)] = -1
        fee *= sign_of[kind]
        f_refs.result()
        tidx = f_tidx.result()
        order = f_order.result()

    d0 = int(cycle_days.min())
    days_present = np.flatnonzero(np.bincount(cycle_days - d0)) + d0
    settled = _settled_keys(conn, days_present)
    if settled.size:
        late = np.isin((cycle_days.astype(np.int64) << 32) | merchant_id, settled)
        if late.any():
            i = int(np.flatnonzero(late)[0])
            day = _EPOCH + timedelta(days=int(cycle_days[i]))
            raise ImportRejected(path, i + 2, f"merchant {table['merchant_no'][i].as_py()}: business day {day} "
                                 "is already settled; late transactions belong in a later file day")
    return _Prepared(n, order, cycle_days, merchant_id, tidx, kind, card,
                     amount, fee, table["external_ref"], ts_us)


def _terminal_ids(path: Path, terminal_no: pa.ChunkedArray, midx: np.ndarray, merchant_nos: list[str],
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
    _check(path, "terminal_no", terminal_no, pa.array(ok), "terminal not registered to this merchant")
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
    cols: list[Any] = [p.merchant_id[order], pc.take(p.refs, pa.array(order)).combine_chunks(),
                       p.terminal_id[order], kind_card[order], p.amount[order], p.fee[order], p.ts_us[order]]
    for day, seg_start, seg_end in _segments(p):
        for start in range(seg_start, seg_end, _CHUNK):
            end = min(start + _CHUNK, seg_end)
            flat: list[object] = [None] * ((end - start) * _PARAMS)
            for j, col in enumerate(cols):
                flat[j::_PARAMS] = col[start:end].tolist() if j != 1 else col.slice(start, end - start).to_pylist()
            yield day, end, flat


def _row_values(day: date, import_id: int, row: int) -> str:
    """VALUES tuple of the ``row``-th row of a statement, with numbered parameters.

    The business day and import id are literals; kind and card type arrive as one number
    ``kind * 4 + card`` (binding parameters is the costliest part of the load).
    """
    b = row * _PARAMS
    return (f"('{day.isoformat()}',?{b + 1},?{b + 2},?{b + 3},?{b + 4}/4,?{b + 4}%4,?{b + 5},?{b + 6},?{b + 7},"
            f"{int(import_id)})")


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
    width = _PARAMS * _ROWS_PER_STATEMENT
    statements: dict[date, tuple[str, str]] = {}
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            day, done, flat = item
            if day not in statements:
                statements[day] = (
                    _INSERT + ",".join(_row_values(day, import_id, r) for r in range(_ROWS_PER_STATEMENT)),
                    _INSERT + _row_values(day, import_id, 0))
            many_sql, row_sql = statements[day]
            full = (len(flat) // width) * width
            for off in range(0, full, width):
                cur.execute(many_sql, flat[off:off + width])
            rest = flat[full:]
            if rest:
                cur.executemany(row_sql, [rest[i:i + _PARAMS] for i in range(0, len(rest), _PARAMS)])
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
            })
            buf = io.BytesIO()
            pcsv.write_csv(part, buf, write_options=pcsv.WriteOptions(include_header=False))
            with cur.copy(f"COPY transactions ({', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)") as cp:
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
    return ImportRejected(path, first, f"column external_ref: {row['ref'][0].as_py()!r} repeats line "
                          f"{row['line_min'][0].as_py()} for the same merchant and business day")


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
                return ImportRejected(path, i + 2, f"column external_ref: {found[0]!r} was already imported "
                                      "from another file")
    return None


def _read_any(path: Path, encoding: str | None) -> tuple[pa.Table, str]:
    """Parse with the given encoding, or detect it: UTF-8 first, GBK when that fails."""
    enc = (encoding or detect_encoding(path)).lower().replace("_", "-")
    if enc in ("utf8", "utf-8-sig"):
        enc = "utf-8"
    head, more = _head(path)
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
) -> ImportResult:
    """Import one transaction file; see the module docstring for the guarantees.

    With ``future_tolerance`` (the CLI passes ``Settings.future_tolerance_minutes``), a row whose time is
    later than ``now`` plus it rejects the file at its line: a sale cannot happen after its import.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportRejected(path, None, "no such file")
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as hasher:  # hash while pyarrow parses (both release the GIL)
        f_sha = hasher.submit(file_sha256, path, stop)
        try:
            table, enc = _read_any(path, encoding)
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

    p: _Prepared | None = None
    try:
        with engine.begin() as conn:
            latest = None if future_tolerance is None else (now, future_tolerance)
            p = _prepare(conn, path, table, cutoffs, latest)
            del table
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
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE transactions")
    days = sorted({_EPOCH + timedelta(days=int(d)) for d in np.unique(p.cycle_days)})
    return ImportResult(path, sha, enc, p.n, iid, already_imported=False, cycle_dates=days)


def _is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    name = type(exc).__name__
    return name in ("IntegrityError", "UniqueViolation")
