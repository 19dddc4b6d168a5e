"""The inbox (收件目录): what a dropped file is, recognised by its content, and the texts people read about it.

Pure: no I/O, no clock. The service reads a bounded head of each file and hands it here with the header layouts of
every domain (transactions, merchants, bank files, TMS exports: their alias tables, passed in by the caller, so
that this module imports no domain's reader). A file is recognised by content, never by name alone:

- ISO 20022 XML by its namespace: pain.002 (status report), camt.054 (notification, 退票), camt.053 (statement);
  a DOCTYPE / entity declaration is refused before any parser sees the file;
- UnionPay clearing files: INN detail (a first line of the fixed width with blanks at the field boundaries) and
  the RD summary (its title 全渠道商户交易汇总表);
- CSV text (UTF-8 with or without BOM, or GBK) or an Excel sheet by its header row: transaction day files,
  merchant files, bank 代付 result files (the configured reconciliation profile's column names) and TMS exports;
  a TMS JSON export by its keys.

A file that looks like one kind but is broken is given to that kind's importer, whose refusal names the place
(line, column, element); a file that looks like nothing is refused here, naming what was found.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

KINDS: Final = ("transactions", "merchants", "pain002", "camt054", "camt053", "bank_file", "clearing_inn",
                "clearing_rd", "tms")
STATUSES: Final = ("done", "rejected", "duplicate")
PROCESSING: Final = "processing"  # a row whose import has started and not yet been recorded (crash recovery)
HEAD_BYTES: Final = 1 << 16  # the bounded head read to recognise a file
PARTIAL_SUFFIXES: Final = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".filepart", ".uploading")
REASON_SUFFIX: Final = ".reason.txt"
MAX_NAME: Final = 200  # characters of a file name kept (stored and shown)
MAX_REASON: Final = 2000  # characters of a reason kept

_ISO_NS = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(pain\.00[12]|camt\.05[234])\.001\.(\d{2})")
_XML_KIND = {b"pain.002": "pain002", b"camt.054": "camt054", b"camt.053": "camt053"}
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_EXCEL = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_JSON_KEY = re.compile(r'"([^"\\]{1,64})"\s*:')
_CREATED = re.compile(rb"<(?:\w+:)?CreDtTm>\s*([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:?[0-9]{2})?)\s*<")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class Arrival:
    """One file the inbox took: what it was, what became of it (read by the day's cycle and the console).

    ``status``: done (imported), rejected (refused; ``reason_*`` says why, and the file lies in rejected/),
    duplicate (the same content was taken before, or imported by hand: nothing changed; the file lies in done/).
    ``business_days``: the days the file covered (a transaction file's cycle dates, a statement's date, a
    clearing file's date, a report's date); empty when the file covers no day (merchants, TMS) or was refused.
    ``summary``: what the import did (rows, lines, applied, ...), JSON-safe.
    """

    id: int
    kind: str | None
    name: str
    sha256: str
    status: str
    reason_zh: str | None
    reason_en: str | None
    business_days: tuple[date, ...]
    received_at: datetime
    processed_at: datetime | None
    summary: dict[str, Any] = field(default_factory=dict)
    directory: str = ""
    moved_to: str | None = None


@dataclass(frozen=True)
class HeaderLayout:
    """How one kind's header row is told: ``canonical(cell)`` names a cell's column (None: not this layout's);
    every column of ``required`` and one of each ``any_of`` group make a complete header; a header matching at
    least ``min_matched`` columns (and ``any_of``) is this kind when ``required`` is empty."""

    kind: str
    canonical: Callable[[str], str | None]
    required: frozenset[str] = frozenset()
    any_of: tuple[frozenset[str], ...] = ()
    min_matched: int = 1


@dataclass(frozen=True)
class ClearingSpec:
    """The UnionPay INN line (its width, the 0-based offsets of the blanks between fields) and the RD title."""

    inn_width: int
    inn_gaps: tuple[int, ...]
    rd_title: str


@dataclass(frozen=True)
class Recognition:
    """``kind`` (one of :data:`KINDS`) or None with the reason (zh, en); ``where``: what was looked at."""

    kind: str | None
    reason_zh: str = ""
    reason_en: str = ""
    encoding: str | None = None
    created: str | None = None  # an ISO 20022 report's CreDtTm as written (its business day)


def refused(zh: str, en: str) -> Recognition:
    return Recognition(None, zh, en)


# --- names -------------------------------------------------------------------------------------------------

def is_partial(name: str) -> bool:
    """A file still being written by the convention the inbox documents: ``.part``/``.tmp``/... or hidden."""
    low = name.lower()
    return name.startswith(".") or name.startswith("~$") or low.endswith(PARTIAL_SUFFIXES)


def name_problem(name: str) -> tuple[str, str] | None:
    """Why a file name cannot be taken as it is (control characters, slashes, undecodable bytes, too long), or
    None. The file is still taken, under a safe name (:func:`safe_name`)."""
    if _BAD_NAME.search(name):
        return "文件名含控制字符或路径分隔符", "the file name holds control characters or path separators"
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        return "文件名不是有效的 UTF-8", "the file name is not valid UTF-8"
    if len(name) > MAX_NAME:
        return f"文件名超过 {MAX_NAME} 个字符", f"the file name is longer than {MAX_NAME} characters"
    return None


def safe_name(name: str) -> str:
    """A name safe to write beside the inbox: control characters, separators and undecodable bytes as ``_``,
    no leading dot or dash, at most :data:`MAX_NAME` characters (the extension kept)."""
    out = "".join("_" if (_BAD_NAME.match(c) or 0xDC80 <= ord(c) <= 0xDCFF) else c for c in name)
    out = out.lstrip(".-") or "file"
    if out in (".", ".."):
        out = "file"
    if len(out) > MAX_NAME:
        stem, dot, ext = out.rpartition(".")
        ext = ext[:16] if dot and len(ext) <= 16 else ""
        out = out[: MAX_NAME - len(ext) - 1] + ("." + ext if ext else "")
    return out


def free_name(name: str, taken: Callable[[str], bool]) -> str:
    """``name``, or ``stem.2.ext``, ``stem.3.ext`` ... the first that ``taken`` says is free (with its reason
    file too)."""
    if not taken(name) and not taken(name + REASON_SUFFIX):
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    for n in range(2, 100_000):
        cand = f"{stem}.{n}.{ext}" if ext else f"{stem}.{n}"
        if not taken(cand) and not taken(cand + REASON_SUFFIX):
            return cand
    raise RuntimeError("no free name")  # pragma: no cover - 100,000 files of one name


# --- recognising -------------------------------------------------------------------------------------------

def looks_binary(head: bytes) -> bool:
    return b"\x00" in head or bool(_CONTROL.search(head))


def is_excel(head: bytes) -> bool:
    return head.startswith(_EXCEL)


def decode_head(head: bytes, more: bool) -> tuple[str, str] | None:
    """(text, encoding): UTF-8 with BOM, UTF-8, or GBK, a character cut at the head's end allowed; None if none."""
    if head.startswith(b"\xef\xbb\xbf"):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    else:
        candidates = ("utf-8", "gbk")
    for enc in candidates:
        try:
            return head.decode(enc), enc
        except UnicodeDecodeError as exc:
            if more and exc.start >= len(head) - 3:
                return head[: exc.start].decode(enc), enc
    return None


def recognise_xml(head: bytes) -> Recognition:
    """pain.002 / camt.054 / camt.053 by the namespace in the head; DTDs and entities refused."""
    if _DTD.search(head):
        return refused("XML 含 DOCTYPE/ENTITY 声明，拒绝处理（防实体注入）",
                       "the XML declares a DOCTYPE or ENTITY: refused (entity injection)")
    m = _ISO_NS.search(head)
    if m is None:
        return refused("XML 文件，但不是 pain.002、camt.053 或 camt.054（未找到 ISO 20022 命名空间）",
                       "an XML file, but not pain.002, camt.053 or camt.054 (no ISO 20022 namespace found)")
    msg = m.group(1)
    kind = _XML_KIND.get(msg)
    if kind is None:
        text = msg.decode("ascii")
        return refused(f"XML 文件是 {text}，收件目录不接收此类报文", f"the XML file is {text}: not a message the inbox takes")
    created = _CREATED.search(head)
    return Recognition(kind, encoding="xml", created=created.group(1).decode("ascii") if created else None)


def is_inn(first_line: bytes, spec: ClearingSpec) -> bool:
    return len(first_line) == spec.inn_width and all(first_line[g:g + 1] == b" " for g in spec.inn_gaps)


def header_cells(text: str) -> list[str]:
    """The cells of the first non-blank line of ``text`` (comma, tab, ``|`` or ``;`` separated)."""
    for line in text.splitlines():
        if line.strip():
            delim = max(",\t|;", key=line.count)
            try:
                row = next(csv.reader([line[:8192]], delimiter=delim))
            except (csv.Error, StopIteration):
                return []
            return [c.strip().lstrip("\ufeff") for c in row]
    return []


def _score(cells: Sequence[str], layout: HeaderLayout) -> tuple[int, bool, float]:
    """(cells this layout names, complete, share of what it requires that is there)."""
    found = {c for c in (layout.canonical(cell) for cell in cells if cell) if c is not None}
    groups_ok = sum(1 for g in layout.any_of if found & g)
    need = len(layout.required) + len(layout.any_of)
    have = len(found & layout.required) + groups_ok
    if need and layout.required:
        share = have / need
        complete = have == need
    else:
        complete = groups_ok == len(layout.any_of) and len(found) >= layout.min_matched
        share = 1.0 if complete else 0.0
    return len(found), complete, share


def classify_header(cells: Sequence[str], layouts: Sequence[HeaderLayout]) -> str | None:
    """The kind whose layout names the most cells of the header, provided it has at least half of what it
    requires (a broken file of that kind goes to its importer, whose refusal names the missing columns)."""
    best: tuple[int, int, float] | None = None
    kind = None
    for layout in layouts:
        n, complete, share = _score(cells, layout)
        if n == 0 or share < 0.5:
            continue
        key = (n, int(complete), share)
        if best is None or key > best:
            best, kind = key, layout.kind
    return kind


def classify_json_keys(text: str, tms: HeaderLayout) -> bool:
    """A TMS JSON export: its keys (in the head) name enough TMS fields."""
    keys = list(dict.fromkeys(_JSON_KEY.findall(text[:HEAD_BYTES])))
    _, complete, _ = _score(keys, tms)
    return complete


def recognise(head: bytes, more: bool, size: int, *, layouts: Sequence[HeaderLayout], clearing: ClearingSpec,
              inn_name: Callable[[str], bool], name: str, excel_header: Sequence[str] | None = None) -> Recognition:
    """What the file is, from its first bytes (``head``; ``more``: the file goes on). ``excel_header``: the
    first row of an Excel sheet when the file is one (the caller reads it, bounded)."""
    if size == 0 or not head.strip(b" \t\r\n\xef\xbb\xbf"):
        return refused("空文件", "empty file")
    if is_excel(head):
        if not excel_header:
            return refused("Excel 文件，但读不出表头（首行）", "an Excel file, but its header (first row) cannot be read")
        kind = classify_header(excel_header, [la for la in layouts if la.kind in ("transactions", "merchants")])
        if kind is None:
            return refused(f"无法识别的 Excel 表头：{','.join(excel_header)[:200]}",
                           f"an Excel header not recognised: {','.join(excel_header)[:200]}")
        return Recognition(kind, encoding="xlsx")
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"<"):
        return recognise_xml(head)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if is_inn(first, clearing):
        return Recognition("clearing_inn", encoding="ascii")
    if looks_binary(head):
        return refused("二进制内容，不是文本、XML 或 Excel 文件", "binary content: not a text, XML or Excel file")
    decoded = decode_head(head, more)
    if decoded is None:
        return refused("既不是 UTF-8 也不是 GBK 编码的文本", "text neither in UTF-8 nor in GBK")
    text, enc = decoded
    if clearing.rd_title in text[:4096]:
        return Recognition("clearing_rd", encoding=enc)
    if inn_name(name) and not stripped.startswith((b"{", b"[")):
        return Recognition("clearing_inn", encoding="ascii")  # an INN file by name whose first line is broken
    if stripped.startswith((b"{", b"[")):
        tms = next((la for la in layouts if la.kind == "tms"), None)
        if tms is not None and classify_json_keys(text, tms):
            return Recognition("tms", encoding=enc)
        return refused("JSON 文件，但不是 TMS 终端导出（未找到序列号/终端号等字段）",
                       "a JSON file, but not a TMS terminal export (no serial / terminal number fields)")
    cells = header_cells(text)
    kind = classify_header(cells, layouts)
    if kind is None:
        shown = ",".join(cells)[:200]
        return refused(f"无法识别的文件：首行（表头）不是交易、商户、银行代付结果或 TMS 文件的格式：{shown}",
                       f"file not recognised: the first line (header) is not that of a transaction, merchant, bank "
                       f"result or TMS file: {shown}")
    return Recognition(kind, encoding=enc)


# --- days and reasons --------------------------------------------------------------------------------------

def report_day(created: str | None, local_date: Callable[[datetime], date]) -> date | None:
    """The business day of an ISO 20022 report: its CreDtTm, in the business zone (``local_date``)."""
    if not created:
        return None
    text = created.replace("Z", "+00:00")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.date() if at.tzinfo is None else local_date(at)


def reason_text(name: str, kind_label: tuple[str, str] | None, status_label: tuple[str, str], zh: str, en: str,
                received: str) -> str:
    """The reason file written beside a refused (or duplicate) file: zh first, then en (texts already masked)."""
    k_zh, k_en = kind_label or ("未识别", "not recognised")
    return (f"文件 {name}\n类型：{k_zh}\n结果：{status_label[0]}\n收到时间：{received}\n原因：{zh}\n\n"
            f"File {name}\nKind: {k_en}\nResult: {status_label[1]}\nReceived: {received}\nReason: {en}\n")


def cut(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_days(days: Sequence[date]) -> tuple[date, ...]:
    return tuple(sorted(set(days)))


def label_of(table: Mapping[str, tuple[str, str]], code: str | None) -> tuple[str, str] | None:
    return None if code is None else table.get(code, (code, code))
