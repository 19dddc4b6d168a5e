"""Merchant onboarding (商户入网): read a merchant file, check every row, register everything in one transaction.

- The file: CSV in UTF-8 (with or without BOM) or GBK, detected, or an .xlsx workbook (first sheet);
  Chinese or English headers (merchants/file_layout.py); one row per terminal, the merchant columns
  repeated (identical) on each of a merchant's rows.
- Every row is checked (merchants/checks.py); rows of one merchant must agree; a USCC, legal person ID,
  settlement card or terminal serial number used twice in the file, or already used by another registered
  merchant, is flagged as a duplicate for review and refused. Problems are collected for the whole file
  (the first ``limit`` are reported, with the total) and nothing is registered when there is any.
- Idempotent: a file whose SHA-256 was imported before changes nothing; a merchant already registered
  with exactly the row's facts is left as it is (``unchanged``); one registered with other facts is
  reported at its line (``changed``) and the file refused: an import never overwrites a merchant.
- The checks against the database and the inserts run in one transaction; card numbers are encrypted
  (the vault), the legal person's ID number is kept only masked and as a keyed hash.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select

from settleguard.audit import service as audit
from settleguard.cards.bins import BinTable
from settleguard.cards.vault import Vault, mask_pan
from settleguard.config import DEFAULT_TIMEZONE
from settleguard.db import tables as t
from settleguard.hashing import sha256_file
from settleguard.masking import bounded
from settleguard.merchants import repository as repo
from settleguard.merchants.checks import (
    Banks,
    Context,
    RowProblem,
    Rules,
    check_merchant_row,
    check_terminal,
    differing_columns,
    duplicate_problem,
)
from settleguard.merchants.file_layout import FIELDS, REQUIRED, canonical, label
from settleguard.merchants.mcc import load_mcc_table
from settleguard.merchants.model import MerchantDraft
from settleguard.reference import bins_repository as bins_repo

Progress = Callable[[str, int, int], None]
Row = tuple[int, dict[str, str]]
DEFAULT_LIMIT = 100
DEFAULT_RULES = Rules()
IMPORT_KIND = "merchants"
_HEAD = 1 << 16
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_MAX_FIELD = 4096
_NUMERIC_SENSITIVE = ("card_no", "legal_person_id", "holder_id")


class OnboardingRejected(ValueError):
    """The file (or the merchant) was refused; nothing was registered.

    ``problems``: the first ``limit`` problems, by line; ``total``: how many there were.
    """

    def __init__(self, path: Path | None, problems: Sequence[RowProblem], total: int | None = None,
                 reason: tuple[str, str] | None = None) -> None:
        self.path = path
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        self.reason = reason
        where = str(path) if path else "merchant"
        head = f"{reason[0]} / {reason[1]}" if reason else f"{self.total} problem(s)"
        super().__init__(f"{where}: {head}")

    def lines(self) -> list[str]:
        out = [p.text() for p in self.problems]
        if self.total > len(self.problems):
            out.append(f"……另有 {self.total - len(self.problems)} 个问题未列出 / … {self.total - len(self.problems)} "
                       "more problem(s) not shown")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"file": None if self.path is None else str(self.path), "registered": 0, "total_problems": self.total,
                "reason": None if self.reason is None else {"zh": self.reason[0], "en": self.reason[1]},
                "problems": [p.as_dict() for p in self.problems]}


@dataclass
class OnboardingResult:
    path: Path | None
    sha256: str
    encoding: str
    rows: int
    merchants: int
    registered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    import_id: int | None = None
    already_imported: bool = False
    warnings: list[RowProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"file": None if self.path is None else str(self.path), "sha256": self.sha256,
                "encoding": self.encoding, "rows": self.rows, "merchants": self.merchants,
                "registered": len(self.registered), "registered_merchant_nos": self.registered,
                "unchanged": len(self.unchanged), "import_id": self.import_id,
                "already_imported": self.already_imported, "warnings": [w.as_dict() for w in self.warnings]}


def _rejected(path: Path | None, zh: str, en: str) -> OnboardingRejected:
    return OnboardingRejected(path, [], 0, (zh, en))


# --- reading ---------------------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    return sha256_file(path)


def detect_encoding(head: bytes, more: bool) -> str:
    """utf-8-sig (a BOM), utf-8, or gbk: the first that decodes the head (a character cut at its end allowed)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    for enc in ("utf-8", "gbk"):
        try:
            head.decode(enc)
            return enc
        except UnicodeDecodeError as exc:
            if more and exc.start >= len(head) - 3:
                return enc
    raise ValueError("neither UTF-8 nor GBK")


def _header(path: Path | None, cells: Sequence[str]) -> list[str | None]:
    cols: list[str | None] = []
    for cell in cells:
        c = canonical(cell) if cell and cell.strip() else None
        if c is not None and c in cols:
            raise _rejected(path, f"表头中“{label(c)}”出现两次", f"the column {FIELDS[c][1]} appears twice in the header")
        cols.append(c)
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise _rejected(path, "表头缺少列：" + "、".join(FIELDS[c][0] for c in missing),
                        "the header lacks column(s): " + ", ".join(FIELDS[c][1] for c in missing)
                        + f"; header is {bounded(','.join(cells), 200)}")
    return cols


def _rows_csv(path: Path, encoding: str | None) -> tuple[str, Iterator[Row]]:
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
        more = bool(fh.read(1))
    bad = _CONTROL.search(head)
    if bad is not None:
        raise _rejected(path, f"二进制文件，不是 CSV 文本（偏移 {bad.start()} 处为 0x{head[bad.start()]:02x}）",
                        f"binary file, not CSV text (byte 0x{head[bad.start()]:02x} at offset {bad.start()}); "
                        "save it as CSV (UTF-8 or GBK) or .xlsx")
    try:
        enc = encoding or detect_encoding(head, more)
        if enc.lower().replace("_", "-") in ("utf-8", "utf8") and head.startswith(b"\xef\xbb\xbf"):
            enc = "utf-8-sig"
        "".encode(enc)
    except (ValueError, LookupError):
        raise _rejected(path, "文件既不是 UTF-8 也不是 GBK 文本", "the file is neither UTF-8 nor GBK text") from None

    def rows() -> Iterator[Row]:
        with path.open("r", encoding=enc, newline="") as text:
            reader = csv.reader(text)
            try:
                header = next(reader, None)
                if header is None:
                    raise _rejected(path, "空文件：缺少表头", "empty file: no header row")
                cols = _header(path, header)
                for cells in reader:
                    if not any(c.strip() for c in cells):
                        continue
                    line = reader.line_num
                    if len(cells) != len(cols):
                        yield line, {"__width__": f"{len(cells)}/{len(cols)}"}
                        continue
                    yield line, {c: v[:_MAX_FIELD] for c, v in zip(cols, cells, strict=True) if c is not None}
            except UnicodeDecodeError as exc:
                raise _rejected(path, f"第 {reader.line_num + 1} 行附近不是 {enc} 文本",
                                f"not {enc} text near line {reader.line_num + 1}: {exc.reason}") from None
            except csv.Error as exc:
                raise _rejected(path, f"第 {reader.line_num} 行 CSV 格式错误", f"malformed CSV at line {reader.line_num}: "
                                f"{bounded(str(exc), 100)}") from None

    return ("utf-8" if enc == "utf-8-sig" else enc), rows()


def _cell(v: Any) -> tuple[str, bool]:
    """A spreadsheet cell as text, and whether it was a number (a long number loses digits in Excel)."""
    if v is None:
        return "", False
    if isinstance(v, datetime):
        return v.date().isoformat(), False
    if isinstance(v, date):
        return v.isoformat(), False
    if isinstance(v, bool):
        return str(v), False
    if isinstance(v, float):
        return (str(int(v)) if v.is_integer() else repr(v)), True
    if isinstance(v, int):
        return str(v), True
    return str(v), False


def _rows_xlsx(path: Path) -> tuple[str, Iterator[Row]]:
    import zipfile

    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise _rejected(path, "无法读取 .xlsx 工作簿", f"cannot read the .xlsx workbook: {bounded(str(exc), 100)}") from None

    def rows() -> Iterator[Row]:
        try:
            ws = wb.worksheets[0]
            it = ws.iter_rows(values_only=True)
            first = next(it, None)
            if first is None:
                raise _rejected(path, "空工作表：缺少表头", "empty sheet: no header row")
            cols = _header(path, [_cell(v)[0] for v in first])
            for line, values in enumerate(it, start=2):
                cells = [_cell(v) for v in values]
                if not any(c.strip() for c, _ in cells):
                    continue
                row: dict[str, str] = {}
                for c, (v, numeric) in zip(cols, cells, strict=False):
                    if c is None:
                        continue
                    row[c] = v[:_MAX_FIELD]
                    if numeric and c in _NUMERIC_SENSITIVE:
                        row["__numeric__"] = c
                yield line, row
        finally:
            wb.close()

    return "xlsx", rows()


def read_rows(path: Path, encoding: str | None = None) -> tuple[str, Iterator[Row]]:
    """(encoding or "xlsx", the data rows with their line numbers), for a CSV or .xlsx merchant file."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    if path.suffix.lower() in (".xlsx", ".xlsm") or magic == b"PK\x03\x04":
        return _rows_xlsx(path)
    return _rows_csv(path, encoding)


# --- checking --------------------------------------------------------------------------------------------

def context(conn: Connection, today: date, rules: Rules) -> Context:
    bins: BinTable = bins_repo.binding_bins(conn)
    return Context(bins=bins, banks=Banks.from_bins(bins), mccs=load_mcc_table(), today=today, rules=rules)


@dataclass
class _Checked:
    drafts: list[MerchantDraft]
    problems: list[RowProblem]
    rows: int


def check_rows(rows: Iterator[Row], ctx: Context, progress: Progress | None = None) -> _Checked:
    """Every row checked; rows of one merchant gathered (their terminals) and compared; duplicates in the file."""
    problems: list[RowProblem] = []
    first_rows: dict[str, tuple[int, dict[str, str]]] = {}
    drafts: dict[str, MerchantDraft] = {}
    n = 0
    for line, row in rows:
        n += 1
        if progress and n % 1000 == 0:
            progress("check", n, 0)
        if "__width__" in row:
            got, want = row["__width__"].split("/")
            problems.append(RowProblem(line, "merchant_no", "row_width", f"该行有 {got} 列，表头有 {want} 列",
                                       f"the row has {got} fields, the header {want}"))
            continue
        if "__numeric__" in row:
            col = row.pop("__numeric__")
            problems.append(RowProblem(line, col, "excel_number",
                                       "在 Excel 中存成了数字（长数字会丢失末几位）：请把该列设为“文本”格式后重新填写",
                                       "stored as a number in Excel (long numbers lose their last digits): format "
                                       "the column as text and enter it again"))
            continue
        no = row.get("merchant_no", "").strip()
        seen = first_rows.get(no) if no else None
        if seen is not None:
            first_line, first = seen
            diff = differing_columns(first, row)
            if diff:
                problems.append(RowProblem(
                    line, diff[0], "rows_differ",
                    f"与第 {first_line} 行同一商户 {no}，但“{'、'.join(FIELDS[c][0] for c in diff)}”不一致",
                    f"same merchant {no} as line {first_line}, but {', '.join(FIELDS[c][1] for c in diff)} "
                    "differ(s)"))
                continue
            here: list[RowProblem] = []
            terminal = check_terminal(line, row, here)
            problems.extend(here)
            if terminal is not None and no in drafts:
                d = drafts[no]
                if any(x.terminal_no == terminal.terminal_no for x in d.terminals):
                    problems.append(RowProblem(line, "terminal_no", "duplicate",
                                               f"终端号在商户 {no} 中重复", f"terminal number repeats for merchant {no}"))
                else:
                    drafts[no] = _with_terminal(d, terminal)
            continue
        draft, found = check_merchant_row(line, row, ctx)
        problems.extend(found)
        if no:
            first_rows[no] = (line, row)
        if draft is not None:
            drafts[draft.merchant_no] = draft
    problems.extend(_file_duplicates(list(drafts.values())))
    return _Checked(list(drafts.values()), problems, n)


def _with_terminal(d: MerchantDraft, terminal: Any) -> MerchantDraft:
    from dataclasses import replace

    return replace(d, terminals=(*d.terminals, terminal))


def _file_duplicates(drafts: Sequence[MerchantDraft]) -> list[RowProblem]:
    out: list[RowProblem] = []
    seen: dict[tuple[str, str], str] = {}
    for d in drafts:
        keys = [("uscc", d.uscc), ("legal_person_id", d.legal_person_id), ("card_no", d.pan),
                *(("terminal_sn", tr.serial_no) for tr in d.terminals)]
        for col, value in keys:
            if not value:
                continue
            other = seen.setdefault((col, value), d.merchant_no)
            if other != d.merchant_no:
                out.append(duplicate_problem(d.line, col, other, "本文件中", "in this file"))
    return out


def _db_checks(conn: Connection, drafts: Sequence[MerchantDraft], vault: Vault) -> tuple[list[MerchantDraft],
                                                                                          list[str], list[RowProblem]]:
    """(new drafts, unchanged merchant numbers, problems) against what is registered."""
    existing = repo.registered(conn, [d.merchant_no for d in drafts], vault)
    problems: list[RowProblem] = []
    unchanged: list[str] = []
    new: list[MerchantDraft] = []
    for d in drafts:
        reg = existing.get(d.merchant_no)
        if reg is None:
            new.append(d)
            continue
        diff = _changed_fields(d, reg, vault)
        if diff:
            problems.append(RowProblem(
                d.line, diff[0], "changed",
                f"商户 {d.merchant_no} 已入网，但“{'、'.join(FIELDS[c][0] for c in diff)}”与登记的不同：导入不会覆盖已入网商户，"
                "变更请走变更流程（settleguard merchants / card 命令）",
                f"merchant {d.merchant_no} is registered with a different {', '.join(FIELDS[c][1] for c in diff)}: an "
                "import never overwrites a registered merchant; change it through the merchants / card commands"))
        else:
            unchanged.append(d.merchant_no)
    usccs = repo.owners_of_usccs(conn, [d.uscc for d in new if d.uscc])
    hashes = {d.merchant_no: [vault.keyed_hash(d.legal_person_id, v) for v in vault.versions] for d in new}
    id_owners = repo.owners_of_id_hashes(conn, [h for hs in hashes.values() for h in hs])
    cards = repo.owners_of_cards(conn, [d.pan for d in new], vault)
    serials = repo.owners_of_serials(conn, [tr.serial_no for d in new for tr in d.terminals])
    for d in new:
        if d.uscc and d.uscc in usccs:
            problems.append(duplicate_problem(d.line, "uscc", usccs[d.uscc], "已入网的", "already registered"))
        owner = next((id_owners[h] for h in hashes[d.merchant_no] if h in id_owners), None)
        if owner:
            problems.append(duplicate_problem(d.line, "legal_person_id", owner, "已入网的", "already registered"))
        if d.pan in cards:
            problems.append(duplicate_problem(d.line, "card_no", cards[d.pan], "已入网的", "already registered"))
        for tr in d.terminals:
            if tr.serial_no in serials:
                problems.append(duplicate_problem(d.line, "terminal_sn", serials[tr.serial_no], "已入网的",
                                                  "already registered"))
    return new, unchanged, problems


def _changed_fields(d: MerchantDraft, reg: repo.Registered, vault: Vault) -> list[str]:
    f = reg.fields
    diff: list[str] = []
    id_hash = None
    if f["id_key_version"] in vault.versions:
        id_hash = vault.keyed_hash(d.legal_person_id, f["id_key_version"])
    compare = [
        ("registered_name", f["registered_name"] == d.registered_name),
        ("kind", f["entity_kind"] == str(d.entity)),
        ("legal_person", f["legal_person"] == d.legal_person),
        ("legal_person_id", id_hash is not None and f["legal_person_id_hash"] == id_hash),
        ("uscc", f["uscc"] == d.uscc),
        ("business", f["business"] == d.business),
        ("mcc", f["mcc"] == d.mcc),
        ("city", f["city"] == d.city),
        ("contact_mobile", f["contact_mobile"] == d.contact_mobile),
        ("cycle", f["cycle"] == str(d.cycle)),
        ("debit_rate", f["fee"] == d.fee.rates_key()),
        ("fee_effective_from", f["fee_effective_from"] == d.fee.effective_from),
        ("holder_name", f["holder_name"] == d.holder_name),
        ("card_no", reg.pan == d.pan),
        ("bank", f["bank_code"] == d.bank_code),
        ("terminal_sn", reg.terminals == frozenset((x.terminal_no, x.serial_no, x.model) for x in d.terminals)),
    ]
    diff.extend(col for col, same in compare if not same)
    return diff


def _limit(problems: list[RowProblem], limit: int) -> list[RowProblem]:
    return sorted(problems, key=lambda p: (p.line, list(FIELDS).index(p.field) if p.field in FIELDS else 99))[:limit]


# --- the service -----------------------------------------------------------------------------------------

def _today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def _register_checked(engine: Engine, rows: Iterator[Row], *, path: Path | None, sha: str, encoding: str,
                      vault: Vault, now: datetime, rules: Rules, actor: str, limit: int, timezone: str,
                      progress: Progress | None) -> OnboardingResult:
    with engine.connect() as conn:
        ctx = context(conn, _today(now, timezone), rules)
    checked = check_rows(rows, ctx, progress)
    if checked.rows == 0 and not checked.problems:
        raise _rejected(path, "表头之后没有商户", "no merchants after the header")
    warnings = [p for p in checked.problems if p.severity != "error"]
    with engine.begin() as conn:  # the checks against the registered merchants and the inserts: one transaction
        new, unchanged, found = _db_checks(conn, checked.drafts, vault)
        errors = [p for p in checked.problems if p.severity == "error"] + found
        if errors:
            raise OnboardingRejected(path, _limit(errors, limit), len(errors))
        import_id: int | None = None
        if path is not None:
            got = conn.execute(insert(t.imports).values(
                kind=IMPORT_KIND, sha256=sha, filename=path.name[:512], encoding=encoding[:16], row_count=checked.rows,
                imported_at=now)).inserted_primary_key
            assert got is not None
            import_id = int(got[0])
        total = len(new)
        done = 0

        def advance(k: int) -> None:
            nonlocal done
            done += k
            if progress:
                progress("register", done, total)

        ids = repo.register(conn, new, vault, now, import_id, advance, actor)
        if path is not None:
            audit.record(conn, actor, "merchant.import", ("import", import_id or 0), {
                "file": path.name, "sha256": sha, "rows": checked.rows, "registered": len(ids),
                "unchanged": len(unchanged), "merchant_ids": [min(ids), max(ids)] if ids else [],
            }, now)
        else:
            for d, mid in zip(new, ids, strict=True):
                audit.record(conn, actor, "merchant.register", ("merchant", mid), {
                    "merchant_no": d.merchant_no, "entity_kind": str(d.entity), "mcc": d.mcc,
                    "account_kind": d.account_kind, "card": mask_pan(d.pan), "terminals": len(d.terminals)}, now)
    return OnboardingResult(path, sha, encoding, checked.rows, len(checked.drafts), [d.merchant_no for d in new],
                            unchanged, import_id, False, warnings)


def import_merchants(engine: Engine, path: Path, *, vault: Vault, now: datetime, rules: Rules = DEFAULT_RULES,
                     encoding: str | None = None, actor: str = "operator", limit: int = DEFAULT_LIMIT,
                     timezone: str = DEFAULT_TIMEZONE, progress: Progress | None = None) -> OnboardingResult:
    """Import one merchant file; see the module docstring. Raises :class:`OnboardingRejected`."""
    path = Path(path)
    if not path.is_file():
        raise _rejected(path, "文件不存在", "no such file")
    sha = file_sha256(path)
    with engine.connect() as conn:
        done = conn.execute(select(t.imports.c.id, t.imports.c.row_count, t.imports.c.encoding)
                            .where(t.imports.c.kind == IMPORT_KIND, t.imports.c.sha256 == sha)).first()
    if done is not None:
        return OnboardingResult(path, sha, done.encoding, done.row_count, 0, import_id=done.id, already_imported=True)
    enc, rows = read_rows(path, encoding)
    return _register_checked(engine, rows, path=path, sha=sha, encoding=enc, vault=vault, now=now, rules=rules,
                             actor=actor, limit=limit, timezone=timezone, progress=progress)


def add_merchant(engine: Engine, rows: Sequence[Mapping[str, str]], *, vault: Vault, now: datetime,
                 rules: Rules = DEFAULT_RULES, actor: str = "operator", timezone: str = DEFAULT_TIMEZONE) -> OnboardingResult:
    """Register one merchant given as rows of the file layout (one per terminal), with the same checks.

    Problems name the "line" 1, 2, … of the terminals given. A merchant already registered with the same
    facts is ``unchanged``."""
    numbered: list[Row] = [(i, {k: v for k, v in r.items()}) for i, r in enumerate(rows, start=1)]
    nos = {r.get("merchant_no", "").strip() for _, r in numbered}
    if len(nos) != 1:
        raise _rejected(None, "一次只能登记一个商户", "one merchant at a time")
    return _register_checked(engine, iter(numbered), path=None, sha="", encoding="", vault=vault, now=now,
                             rules=rules, actor=actor, limit=DEFAULT_LIMIT, timezone=timezone, progress=None)
