"""The inbox (收件目录): files dropped into the configured directories are taken, recognised by content, imported
through each domain's own importer, and moved to ``done/`` or ``rejected/`` beside them (docs/operations.md
"收件目录 Inbox").

One scan (:func:`ingest`, the worker's first step ``inbox`` and ``settleguard inbox scan``):

1. Each directory is locked (an ``flock`` on ``<dir>/.inbox.lock``: a second scan on the same host skips it).
2. A file is taken only when complete: names ending ``.part``/``.tmp``/... or starting with a dot are being
   written (write, then rename), and a file modified less than ``quiet_seconds`` ago (file-system time) waits.
   Its size and time are checked again after hashing: a file that grew meanwhile waits for the next scan.
3. Symbolic links, FIFOs and devices are never opened: they are moved to rejected/ with the reason. A file larger
   than ``max_bytes`` is refused without being read. The head (64 KiB) is read to recognise the kind
   (inbox.model.recognise).
4. The files of one scan are imported in dependency order — merchants, TMS exports, transactions, clearing files,
   pain.002 / camt.054, statements — oldest first within a kind, each through its domain's importer, which is
   atomic and knows a file it imported before by its SHA-256.
5. A row in ``inbox_files`` records the attempt before the import (processing) and its outcome after (done,
   rejected, duplicate); only then, after the commit, is the file moved: ``done/<name>`` or
   ``rejected/<name>`` with ``<name>.reason.txt`` (zh, then en) beside it; a name already there gets ``.2``,
   ``.3`` ... A crash between the import's commit and the move is finished by the next scan: the file's SHA-256
   finds the row, the importer finds its import, nothing is imported twice.

The same content dropped again is a duplicate: nothing changes, the file goes to done/ with a reason file naming
the first. A refused file dropped again (fixed or not) is tried again: the database may have changed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from settleguard import labels
from settleguard.hashing import sha256_stream
from settleguard.inbox import model
from settleguard.inbox import repository as repo
from settleguard.inbox.model import Arrival, HeaderLayout, Recognition
from settleguard.masking import bounded

LOG = logging.getLogger(__name__)
DONE, REJECTED = "done", "rejected"
LOCK_NAME = ".inbox.lock"
DEFAULT_QUIET_SECONDS = 10.0
DEFAULT_MAX_BYTES = 2 << 30
ORDER = ("merchants", "tms", "transactions", "clearing_inn", "clearing_rd", "pain002", "camt054", "camt053",
         "bank_file")


@dataclass(frozen=True)
class Imported:
    """What an importer did: its summary (JSON-safe), the business days, and whether it had the file already."""

    summary: dict[str, Any]
    days: tuple[date, ...] = ()
    already_imported: bool = False


class Refused(Exception):
    """An importer refused the file: nothing imported; the reason (zh, en) names the place."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


ImportFn = Callable[[Engine, Path, datetime, Recognition], Imported]


@dataclass(frozen=True)
class Importers:
    """What the domain importers need (built by the composition root: bootstrap.Container.inbox_importers).

    ``overrides``: kind -> an import function used instead of the domain's (tests; a deployment that imports a
    kind its own way). ``bank_profile``: the reconciliation profile bank 代付 result files are read with."""

    tz: str
    cutoffs: Any = None  # settlement.model.CutOffs
    vault: Any = None  # cards.vault.Vault, or a function returning it (opened only for a file that needs it)
    payout_options: Any = None  # payouts.service.Options
    merchant_rules: Any = None  # merchants.checks.Rules
    future_tolerance: timedelta | None = None
    bank_profile: str | Path | None = None
    actor: str = "inbox"
    overrides: Mapping[str, ImportFn] = field(default_factory=dict)


@dataclass(frozen=True)
class InboxConfig:
    """The worker's inbox: the directories, the importers' needs, the quiet period and the size limit."""

    dirs: tuple[Path, ...]
    importers: Importers
    quiet_seconds: float = DEFAULT_QUIET_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class IngestSummary:
    """One scan: how many files were imported (done), refused, duplicates, left waiting (still being written),
    moves finished after a crash, and the rows written (arrivals)."""

    done: int = 0
    rejected: int = 0
    duplicate: int = 0
    waiting: int = 0
    finished_moves: int = 0
    busy: list[str] = field(default_factory=list)  # directories another scan held
    arrivals: list[Arrival] = field(default_factory=list)

    @property
    def taken(self) -> int:
        return self.done + self.rejected + self.duplicate

    def as_dict(self, tz: str) -> dict[str, Any]:
        return {"done": self.done, "rejected": self.rejected, "duplicate": self.duplicate, "waiting": self.waiting,
                "finished_moves": self.finished_moves, "busy": self.busy,
                "files": [arrival_dict(a, tz) for a in self.arrivals]}


def arrival_dict(a: Arrival, tz: str) -> dict[str, Any]:
    """An arrival as JSON, with labels (zh, en) and times in the business zone."""
    zone = ZoneInfo(tz)
    kind = labels.INBOX_KIND.get(a.kind or "", ("未识别", "not recognised"))
    st = labels.INBOX_STATUS.get(a.status, (a.status, a.status))
    return {"id": a.id, "name": a.name, "kind": a.kind, "kind_zh": kind[0], "kind_en": kind[1], "status": a.status,
            "status_zh": st[0], "status_en": st[1], "reason_zh": a.reason_zh, "reason_en": a.reason_en,
            "business_days": [d.isoformat() for d in a.business_days], "sha256": a.sha256,
            "received_at": a.received_at.astimezone(zone).isoformat(),
            "processed_at": a.processed_at.astimezone(zone).isoformat() if a.processed_at else None,
            "summary": a.summary, "directory": a.directory, "moved_to": a.moved_to}


# --- recognising: every domain's header layout, handed to the pure model ----------------------------------

def layouts(bank_profile: str | Path | None = None) -> tuple[HeaderLayout, ...]:
    """The header layouts of the kinds told by a header row (transactions, merchants, bank file, TMS)."""
    from settleguard.imports import csv_layout
    from settleguard.merchants import file_layout
    from settleguard.reconciliation.bank_file import load_profile
    from settleguard.terminals import registry

    tx_aliases = csv_layout.ALIASES
    txn = HeaderLayout("transactions", lambda c: tx_aliases.get(c.strip()) or tx_aliases.get(c.strip().lower()),
                       frozenset(csv_layout.REQUIRED), (frozenset(csv_layout.AMOUNT_COLUMNS),))
    merchants = HeaderLayout("merchants", file_layout.canonical, frozenset(file_layout.REQUIRED))
    tms = HeaderLayout("tms", lambda c: registry.ALIASES.get(_tms_norm(c)), frozenset(),
                       (frozenset({"serial_no", "terminal_no"}),), min_matched=3)
    out = [txn, merchants, tms]
    try:
        prof = load_profile(bank_profile)
    except Exception:  # a bad profile: bank files are not recognised (the worker logs it once per scan)
        LOG.warning("银行文件配置无法读取，收件目录不识别银行代付结果文件 bank profile unreadable: bank files not "
                    "recognised", exc_info=True)
        return tuple(out)
    if prof.format == "csv" and prof.header:
        names = {str(n).strip(): f for f, ns in prof.columns.items() for n in ns}
        amount = frozenset({"amount"} if "amount" in prof.columns else {"debit_amount", "credit_amount"})
        out.append(HeaderLayout("bank_file", lambda c: names.get(c.strip()), frozenset({"booking_date"}),
                                (amount,)))
    return tuple(out)


def _tms_norm(cell: str) -> str:
    import re

    return re.sub(r"[\s_\-]+", "", cell.strip().lstrip("\ufeff")).lower()


def _clearing() -> tuple[model.ClearingSpec, Callable[[str], bool]]:
    from settleguard.reconciliation import clearing

    gaps = tuple(s - 1 for s in clearing._STARTS[1:])  # noqa: SLF001 - the blanks between the INN fields
    return (model.ClearingSpec(clearing.INN_LINE, gaps, clearing.RD_TITLE),
            lambda name: bool(clearing.INN_NAME.match(name)))


def _excel_header(path: Path) -> list[str] | None:
    """The first row of the first sheet of an .xlsx (at most 64 cells), or None when it cannot be read."""
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        with path.open("rb") as fh:  # a file object: openpyxl then goes by content, not by the name's extension
            wb = load_workbook(fh, read_only=True, data_only=True)
            try:
                first = next(wb.worksheets[0].iter_rows(values_only=True, max_row=1), None)
            finally:
                wb.close()
    except Exception:  # noqa: BLE001 - whatever a hostile zip makes openpyxl raise: not a readable sheet
        return None
    if first is None:
        return None
    return ["" if v is None else str(v)[:200] for v in first[:64]]


def recognise_file(path: Path, head: bytes, more: bool, size: int,
                   layout_set: Sequence[HeaderLayout]) -> Recognition:
    spec, inn_name = _clearing()
    excel = _excel_header(path) if model.is_excel(head) else None
    return model.recognise(head, more, size, layouts=layout_set, clearing=spec, inn_name=inn_name, name=path.name,
                           excel_header=excel)


# --- importing: each kind through its domain's importer ---------------------------------------------------

def _where(text: str, path: Path) -> str:
    """An importer's message with the full path shortened to the file name (the inbox directory is known)."""
    return text.replace(str(path), path.name)


def _import(engine: Engine, path: Path, now: datetime, rec: Recognition, imp: Importers) -> Imported:
    kind = rec.kind
    assert kind is not None
    if kind in imp.overrides:
        return imp.overrides[kind](engine, path, now, rec)
    if kind == "transactions":
        return _transactions(engine, path, now, imp)
    if kind == "merchants":
        return _merchants(engine, path, now, imp)
    if kind in ("pain002", "camt054"):
        return _report(engine, path, now, rec, imp)
    if kind in ("camt053", "bank_file"):
        return _statement(engine, path, now, kind, imp)
    if kind in ("clearing_inn", "clearing_rd"):
        return _clearing_file(engine, path, now, imp)
    if kind == "tms":
        return _tms(engine, path, now, imp)
    raise Refused(f"不支持的类型 {kind}", f"unsupported kind {kind}")  # pragma: no cover


def _vault(imp: Importers) -> Any:
    return imp.vault() if callable(imp.vault) else imp.vault


def _transactions(engine: Engine, path: Path, now: datetime, imp: Importers) -> Imported:
    from settleguard.imports.card_token import token_key
    from settleguard.imports.transactions import ImportRejected, import_transactions
    from settleguard.inbox.repository import transaction_days

    try:
        res = import_transactions(engine, path, cutoffs=imp.cutoffs, now=now, future_tolerance=imp.future_tolerance,
                                  card_key=lambda: token_key(_vault(imp)))
    except ImportRejected as exc:
        detail = _where(str(exc), path)
        raise Refused(f"交易文件被拒绝，未导入任何数据：{detail}", f"transaction file refused, nothing imported: "
                      f"{detail}") from None
    days = tuple(res.cycle_dates)
    if res.already_imported:
        with engine.connect() as conn:
            days = tuple(transaction_days(conn, res.sha256))
    return Imported({"rows": res.rows, "encoding": res.encoding, "import_id": res.import_id}, days,
                    res.already_imported)


def _merchants(engine: Engine, path: Path, now: datetime, imp: Importers) -> Imported:
    from settleguard.merchants.checks import Rules
    from settleguard.merchants.onboarding import OnboardingRejected, import_merchants

    try:
        res = import_merchants(engine, path, vault=_vault(imp), now=now, rules=imp.merchant_rules or Rules(),
                               actor=imp.actor, timezone=imp.tz)
    except OnboardingRejected as exc:
        if exc.reason:
            zh, en = exc.reason
        else:
            zh = en = ""
        lines = exc.lines()[:20]
        tail = ("\n" + "\n".join(lines)) if lines else ""
        raise Refused(f"商户文件被拒绝，未登记任何商户：{zh or f'{exc.total} 个问题'}{tail}",
                      f"merchant file refused, no merchant registered: {en or f'{exc.total} problem(s)'}{tail}") \
            from None
    return Imported({"rows": res.rows, "merchants": res.merchants, "registered": len(res.registered),
                     "unchanged": len(res.unchanged), "import_id": res.import_id, "warnings": len(res.warnings)},
                    (), res.already_imported)


def _report(engine: Engine, path: Path, now: datetime, rec: Recognition, imp: Importers) -> Imported:
    from settleguard.cases.service import SystemCases
    from settleguard.channels.iso20022.reports import ReportRejected
    from settleguard.payouts.files import NothingMatched, import_report
    from settleguard.payouts.service import DEFAULT_OPTIONS

    try:
        s = import_report(engine, path, now=now, cases=SystemCases(imp.tz), opts=imp.payout_options or DEFAULT_OPTIONS)
    except NothingMatched as exc:
        detail = _where(str(exc), path)
        raise Refused(f"文件未涉及任何我们发出的出款，未导入：{detail}",
                      f"the file matches no payout we sent, not imported: {detail}") from None
    except ReportRejected as exc:
        detail = _where(str(exc), path)
        raise Refused(f"银行回执被拒绝，未做任何更改：{detail}", f"bank report refused, nothing changed: {detail}") \
            from None
    zone = ZoneInfo(imp.tz)
    day = model.report_day(rec.created, lambda at: at.astimezone(zone).date())
    return Imported({"statuses": s.statuses, "applied": s.applied, "ignored": s.ignored, "conflicts": s.conflicts,
                     "returned": s.returned, "returned_fen": s.returned_fen, "unknown": s.unknown,
                     "case_id": s.case_id}, (day,) if day else (), s.already_imported)


def _statement(engine: Engine, path: Path, now: datetime, kind: str, imp: Importers) -> Imported:
    from settleguard.inbox.repository import statement_days
    from settleguard.reconciliation.bank_file import ProfileError
    from settleguard.reconciliation.model import StatementRejected
    from settleguard.reconciliation.service import import_statement_file

    try:
        res = import_statement_file(engine, path, now=now, profile=None if kind == "camt053" else imp.bank_profile
                                    or "generic", tz=imp.tz)
    except StatementRejected as exc:
        raise Refused(f"对账文件被拒绝，未做任何更改：{exc.where}：{exc.zh}",
                      f"statement file refused, nothing changed: {exc.where}: {exc.en}") from None
    except ProfileError as exc:
        raise Refused(f"银行文件配置有误：{exc}", f"bad bank file profile: {exc}") from None
    with engine.connect() as conn:
        days = tuple(statement_days(conn, res.sha256))
    return Imported({"statements": len(res.statements), "new_lines": res.new_lines, "source": res.kind},
                    days, res.already_imported)


def _clearing_file(engine: Engine, path: Path, now: datetime, imp: Importers) -> Imported:
    from settleguard.reconciliation.clearing import import_clearing_file
    from settleguard.reconciliation.model import StatementRejected

    try:
        res = import_clearing_file(engine, path, now=now, tz=imp.tz)
    except StatementRejected as exc:
        raise Refused(f"清算文件被拒绝，未做任何更改：{exc.where}：{exc.zh}",
                      f"clearing file refused, nothing changed: {exc.where}: {exc.en}") from None
    return Imported({"lines": res.lines, "new_lines": res.new_lines, "clearing_kind": res.kind},
                    tuple(res.clearing_dates), res.already_imported)


def _tms(engine: Engine, path: Path, now: datetime, imp: Importers) -> Imported:
    from settleguard.terminals.registry import ExportRejected
    from settleguard.terminals.service import ImportRefused, import_export

    try:
        res = import_export(engine, path, zone=ZoneInfo(imp.tz), now=now, actor=imp.actor)
    except ExportRejected as exc:
        raise Refused(f"TMS 导出文件被拒绝，未导入：{exc.zh}", f"TMS export refused, nothing imported: {exc.en}") \
            from None
    except ImportRefused as exc:
        shown = exc.problems[:20]
        zh = "\n".join(f"{p.where_zh} {p.field}：{p.zh}" for p in shown)
        en = "\n".join(f"{p.where_en} {p.field}: {p.en}" for p in shown)
        raise Refused(f"TMS 导出文件有 {len(exc.problems)} 个问题，未导入：\n{zh}",
                      f"TMS export has {len(exc.problems)} problem(s), nothing imported:\n{en}") from None
    return Imported({"rows": res.rows, "changed": res.changed, "unchanged": res.unchanged,
                     "heartbeats": res.heartbeats, "unknown": len(res.unknown)})


# --- the scan ---------------------------------------------------------------------------------------------

@dataclass
class _Candidate:
    directory: Path
    path: Path
    name: str  # as received, masked and bounded (stored, shown)
    safe: str  # the name it is moved under
    size: int
    mtime: float
    rec: Recognition | None = None
    sha256: str = ""
    problem: tuple[str, str] | None = None  # refused before recognition (link, special file, too large)


@contextmanager
def _locked(directory: Path) -> Iterator[bool]:
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _hash(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        return sha256_stream(fh)


def _head(path: Path) -> tuple[bytes, bool]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        head = fh.read(model.HEAD_BYTES)
        return head, bool(fh.read(1))


def _candidates(directory: Path, *, wall: float, quiet: float, max_bytes: int,
                summary: IngestSummary) -> list[_Candidate]:
    out: list[_Candidate] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        LOG.warning("无法读取收件目录 cannot list the inbox %s: %s", directory, exc.strerror)
        return out
    for e in entries:
        name = e.name
        if name in (DONE, REJECTED) or model.is_partial(name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        shown = bounded(name.replace("\n", "\\n").replace("\t", "\\t"), model.MAX_NAME)  # one line, masked
        cand = _Candidate(directory, Path(e.path), shown, model.safe_name(name), st.st_size, st.st_mtime)
        if stat.S_ISLNK(st.st_mode):
            cand.problem = ("符号链接不被读取（请放入文件本身）", "a symbolic link is not followed (drop the file itself)")
        elif not stat.S_ISREG(st.st_mode):
            cand.problem = ("不是普通文件（管道、设备或套接字）", "not a regular file (a pipe, device or socket)")
        elif wall - st.st_mtime < quiet:
            summary.waiting += 1  # still being written, or just written: the next scan takes it
            continue
        elif st.st_size > max_bytes:
            cand.problem = (f"文件过大：{st.st_size:,} 字节，上限 {max_bytes:,}",
                            f"file too large: {st.st_size:,} bytes, at most {max_bytes:,}")
        out.append(cand)
    return out


def _move(src: Path, dest_dir: Path, name: str, reason: str | None) -> str:
    """Move ``src`` into ``dest_dir`` under ``name`` (or the first free variant), the reason file written first;
    returns the name used."""
    dest_dir.mkdir(exist_ok=True)
    final = model.free_name(name, lambda n: os.path.lexists(dest_dir / n))
    if reason is not None:
        tmp = dest_dir / f".{final}{model.REASON_SUFFIX}.tmp"
        tmp.write_text(reason, encoding="utf-8")
        os.replace(tmp, dest_dir / (final + model.REASON_SUFFIX))
    os.replace(src, dest_dir / final)
    return final


def _reason_file(c: _Candidate, kind: str | None, status: str, reason: tuple[str, str], received: datetime,
                 tz: str) -> str:
    at = received.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
    return model.reason_text(c.name, model.label_of(labels.INBOX_KIND, kind),
                             labels.INBOX_STATUS.get(status, (status, status)), reason[0], reason[1],
                             f"{at} ({tz})")


def _clean(reason: tuple[str, str]) -> tuple[str, str]:
    return bounded(reason[0], model.MAX_REASON), bounded(reason[1], model.MAX_REASON)


class _Scan:
    def __init__(self, engine: Engine, now: datetime, importers: Importers, summary: IngestSummary) -> None:
        self.engine, self.now, self.imp, self.summary = engine, now, importers, summary
        self.tz = importers.tz

    def _fetch(self, row_id: int) -> Arrival:
        with self.engine.connect() as conn:
            return repo.arrival(conn, row_id)

    def _finish_move(self, c: _Candidate, row_id: int, status: str, kind: str | None,
                     reason: tuple[str, str] | None) -> None:
        dest = c.directory / (REJECTED if status == "rejected" else DONE)
        text = None if reason is None else _reason_file(c, kind, status, reason, self.now, self.tz)
        try:
            final = _move(c.path, dest, c.safe, text)
        except FileNotFoundError:  # another scan moved it meanwhile
            return
        with self.engine.begin() as conn:
            repo.moved(conn, row_id, f"{dest.name}/{final}")

    def refuse(self, c: _Candidate, reason: tuple[str, str], kind: str | None = None) -> None:
        if c.sha256 and self._finished_before(c):
            return
        reason = _clean(reason)
        with self.engine.begin() as conn:
            row_id = repo.record(conn, directory=str(c.directory), name=c.name, stored_name=c.safe,
                                 sha256=c.sha256, size=c.size, kind=kind, status="rejected", reason=reason,
                                 received_at=self.now, processed_at=self.now)
        self._finish_move(c, row_id, "rejected", kind, reason)
        self.summary.rejected += 1
        self.summary.arrivals.append(self._fetch(row_id))

    def _finished_before(self, c: _Candidate) -> bool:
        """The file's outcome was recorded, its move was not (a crash between them): finish the move only."""
        with self.engine.connect() as conn:
            earlier = repo.seen(conn, c.sha256)
        unmoved = [s for s in earlier if s.status in ("done", "duplicate", "rejected") and s.moved_to is None
                   and s.directory == str(c.directory) and s.stored_name == c.safe]
        if not unmoved:
            return False
        s = unmoved[-1]
        a = self._fetch(s.id)
        self._finish_move(c, s.id, s.status, s.kind, None if a.reason_zh is None else (a.reason_zh, a.reason_en or ""))
        self.summary.finished_moves += 1
        return True

    def take(self, c: _Candidate) -> None:
        rec = c.rec
        assert rec is not None
        if self._finished_before(c):
            return
        with self.engine.connect() as conn:
            earlier = repo.seen(conn, c.sha256)
        pending = [s for s in earlier if s.status == model.PROCESSING]
        finished = [s for s in earlier if s.status in ("done", "duplicate")]
        if finished and not pending:
            first = finished[0]
            at = first.received_at.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M")
            reason = _clean((f"与 {first.name}（{at} 收到）内容相同，已导入过，未做任何更改",
                             f"the same content as {first.name} (received {at}) was imported before; nothing changed"))
            with self.engine.begin() as conn:
                row_id = repo.record(conn, directory=str(c.directory), name=c.name, stored_name=c.safe,
                                     sha256=c.sha256, size=c.size, kind=rec.kind, status="duplicate", reason=reason,
                                     received_at=self.now, processed_at=self.now,
                                     summary={"first_id": first.id})
            self._finish_move(c, row_id, "duplicate", rec.kind, reason)
            self.summary.duplicate += 1
            self.summary.arrivals.append(self._fetch(row_id))
            return
        if pending:  # a crash during the import: run it again (the importer knows the file if it committed)
            row_id = pending[-1].id
        else:
            with self.engine.begin() as conn:
                row_id = repo.start(conn, directory=str(c.directory), name=c.name, stored_name=c.safe,
                                    sha256=c.sha256, size=c.size, kind=rec.kind, received_at=self.now)
        status, why, days, info = self._run(c, rec)
        if status == "duplicate" and pending:
            status, why = "done", None  # our own earlier attempt imported it before the crash
        with self.engine.begin() as conn:
            repo.finish(conn, row_id, status=status, kind=rec.kind, reason=why, processed_at=self.now, days=days,
                        summary=info)
        self._finish_move(c, row_id, status, rec.kind, why)
        setattr(self.summary, status, getattr(self.summary, status) + 1)
        self.summary.arrivals.append(self._fetch(row_id))

    def _run(self, c: _Candidate, rec: Recognition) -> tuple[str, tuple[str, str] | None, tuple[date, ...],
                                                              dict[str, Any]]:
        try:
            res = _import(self.engine, c.path, self.now, rec, self.imp)
        except Refused as exc:
            return "rejected", _clean((exc.zh, exc.en)), (), {}
        except DBAPIError:
            raise  # the database: the row stays processing, the file stays; the next scan runs it again
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # taken away by someone while it was read: nothing to move
                return "rejected", ("读取时文件被移走或删除", "the file was moved or deleted while it was read"), (), {}
            return "rejected", _clean((f"无法读取文件：{exc.strerror}", f"cannot read the file: {exc.strerror}")), (), {}
        except Exception as exc:  # an importer's unexpected error: the file is not tried forever
            LOG.exception("收件目录导入出错 inbox import failed: %s", c.name)
            detail = f"{type(exc).__name__}: {exc}"
            return "rejected", _clean((f"导入时出错：{detail}", f"the import failed: {detail}")), (), {}
        if res.already_imported:
            return "duplicate", ("该文件已导入过（手工导入或此前的文件），未做任何更改",
                                 "the file was imported before (by hand or an earlier file); nothing changed"), \
                res.days, {**res.summary, "already_imported": True}
        return "done", None, model.summary_days(res.days), res.summary


def ingest(engine: Engine, dirs: Sequence[Path], *, now: datetime, importers: Importers, tz: str | None = None,
           quiet_seconds: float = DEFAULT_QUIET_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES,
           wall: Callable[[], float] = time.time) -> IngestSummary:
    """One scan of the inbox directories ``dirs`` (see the module docstring). ``quiet_seconds`` is measured
    against ``wall`` (the file system's clock, not the business clock ``now``)."""
    if tz is not None and tz != importers.tz:
        importers = replace(importers, tz=tz)
    summary = IngestSummary()
    if not dirs:
        return summary
    layout_set = layouts(importers.bank_profile)
    with ExitStack() as stack:
        taken: list[_Candidate] = []
        for d in dirs:
            d = Path(d)
            try:
                d.mkdir(parents=True, exist_ok=True)
                (d / DONE).mkdir(exist_ok=True)
                (d / REJECTED).mkdir(exist_ok=True)
            except OSError as exc:
                LOG.warning("无法创建收件目录 cannot create the inbox %s: %s", d, exc.strerror)
                continue
            if not stack.enter_context(_locked(d)):
                summary.busy.append(str(d))
                continue
            taken += _candidates(d, wall=wall(), quiet=quiet_seconds, max_bytes=max_bytes, summary=summary)
        scan = _Scan(engine, now, importers, summary)
        ready: list[_Candidate] = []
        for c in taken:
            if c.problem is not None:
                scan.refuse(c, c.problem)
                continue
            try:
                head, more = _head(c.path)
                c.sha256 = _hash(c.path)
                st = os.stat(c.path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                scan.refuse(c, (f"无法读取文件：{exc.strerror}", f"cannot read the file: {exc.strerror}"))
                continue
            if st.st_size != c.size or st.st_mtime != c.mtime:
                summary.waiting += 1  # it changed while we read it: still being written
                continue
            c.rec = recognise_file(c.path, head, more, c.size, layout_set)
            if c.rec.kind is None:
                scan.refuse(c, (c.rec.reason_zh, c.rec.reason_en))
                continue
            ready.append(c)
        ready.sort(key=lambda c: (ORDER.index(c.rec.kind) if c.rec and c.rec.kind in ORDER else 99, c.mtime,
                                  c.name))
        for c in ready:
            scan.take(c)
    return summary


def scan(engine: Engine, config: InboxConfig, *, now: datetime, tz: str | None = None,
         wall: Callable[[], float] = time.time) -> IngestSummary:
    """:func:`ingest` with the configured directories (the worker's ``inbox`` step, ``settleguard inbox scan``)."""
    return ingest(engine, config.dirs, now=now, importers=config.importers, tz=tz,
                  quiet_seconds=config.quiet_seconds, max_bytes=config.max_bytes, wall=wall)


def arrivals_json(items: Sequence[Arrival], tz: str) -> str:
    return json.dumps([arrival_dict(a, tz) for a in items], ensure_ascii=False)
