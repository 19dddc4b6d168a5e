"""Payouts over bank files: a pain.001 batch out, pain.002 and camt.054 reports back.

Export follows the same record-then-send rule as the API channels: in one transaction the due
payouts are claimed (submitted, ledger submit entry, an attempt per payout under its
instruction key with the file's ``MsgId|PmtInfId``); the file is written to a temporary name
first and appears at its final name only after that transaction committed. A payout in a file
is ``submitted`` until a report says what became of it.

Import applies a report as a whole, in one transaction, once per file (SHA-256), reading it in one
streaming pass (a bad element anywhere rolls back everything). Each status is an answer about one
instruction key (EndToEndId) and goes through the same diagnosis and plan as an inquiry's answer
(payouts.service.apply_answers); a million-status pain.002 is applied in chunks, each distinct answer
planned once and applied with set-based SQL where its plan does not depend on the payout
(payouts.report_repository, docs/benchmarks.md):

- pain.002 ``ACSC``/``ACCC`` succeeded; ``RJCT``/``CANC`` failed, with StsRsnInf/Rsn/Cd (scheme
  iso20022) and AddtlInf as the message; everything else (ACTC, ACCP, ACSP, PDNG, ...) is not
  final: the payout stays (or becomes) result_unknown. Transactions the report does not list
  take their payment information's or the group's status (reports.implied_statuses).
- camt.054: a booked debit of our account for the instruction confirms it was paid; a return
  (RtrInf, 退票) moves a paid payout to returned and then held, with the return reason's
  diagnosis (scheme iso20022_return) and a return ledger entry.

A pain.002 answer is recorded on the send attempt it answers (the payout's latest attempt, the
unanswered ``send`` of that EndToEndId in the report's OrgnlMsgId); any other answer (a second
report about an answered send, another file, camt.054) gets a "report" attempt row of its own.

Reports are duplicated and reordered in real life: an answer about an instruction that is no
longer the payout's current one, or for a payout already past that point, changes nothing; an
answer that contradicts what is recorded (paid vs rejected) raises an alert for operations.

References we do not know are alarms, not silence: a pain.002 whose OrgnlMsgId is no pain.001 we
exported is refused whole; a file none of whose lines names an instruction we sent is refused and not
recorded (it can be imported again after a fix); otherwise what matched is applied, and the lines naming
instructions we never sent (EndToEndIds; camt.054 debits and returns) raise an ``unknown_reference``
alert and open a case whose note lists the file, its SHA-256 and those lines (:func:`_alarm`).

Cases are opened through the :class:`CaseOpener` the caller hands in (cases.service.system_case_opener, in the
configured time zone), in the import's transaction: payouts does not import cases.
"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select

from settleguard.cards import repository as card_repo
from settleguard.cards.service import CARD_FAILURES, CardFailure, mark_failed_card
from settleguard.cards.vault import Vault
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.channels.iso20022.pain001 import BatchConfig, write_pain001
from settleguard.channels.iso20022.reports import (
    NotificationEntry,
    ReportRejected,
    ReportStream,
    TransactionStatus,
    file_sha256,
    implied_statuses,
)
from settleguard.db import tables as t
from settleguard.db.engine import is_transient_conflict
from settleguard.ledger import model as ledger
from settleguard.ledger import repository as ledger_repo
from settleguard.masking import bounded, mask_card_numbers
from settleguard.money import format_yuan
from settleguard.notify.outbox import diagnosis_of, notify_payout
from settleguard.payouts import report_repository as report_repo
from settleguard.payouts import repository as repo
from settleguard.payouts import service
from settleguard.payouts.model import STATUS_ZH, PayoutStatus
from settleguard.payouts.policy import Action, Plan
from settleguard.payouts.service import (
    DEFAULT_OPTIONS,
    Answer,
    Options,
    SendSummary,
    apply_answers,
    diagnose,
    hold_without_card,
    open_cards,
)

S = PayoutStatus
_Item = TypeVar("_Item")
CHANNEL = "pain.001"
CHUNK = 5_000
STATUS_CHUNK = 50_000  # pain.002 statuses applied with set-based SQL per chunk (report_repository)
FIRST_CHUNK = 5_000  # the first chunk is small, so the database starts while the rest is parsed
SUCCEEDED = frozenset({"ACSC", "ACCC"})
FAILED = frozenset({"RJCT", "CANC"})
OPEN = frozenset({S.SUBMITTED, S.RESULT_UNKNOWN, S.INQUIRY})
NOT_PROVIDED = "NOTPROVIDED"  # the ISO 20022 placeholder for "no EndToEndId"
UNKNOWN_REFERENCE = "unknown_reference"  # the case category of a file naming references we never sent


class CaseOpener(Protocol):
    """Opens an automatic case in the caller's transaction, with ``note`` as its first note; None when a case
    with ``dedupe_key`` exists already (cases.service.system_case_opener builds one for a time zone)."""

    def __call__(self, conn: Connection, *, merchant_id: int, category: str, title: str, note: str, now: datetime,
                 dedupe_key: str, payout_ids: Sequence[int] = ()) -> int | None: ...


@dataclass
class ExportResult:
    path: Path | None
    message_id: str
    count: int = 0
    total_fen: int = 0
    held_no_card: int = 0
    unreadable: int = 0  # cards that did not decrypt: moved to needs_review, not exported


def export_pain001(engine: Engine, vault: Vault, config: BatchConfig, out: Path, *, as_of: date, now: datetime,
                   exclude_banks: Sequence[str] = (), opts: Options = DEFAULT_OPTIONS) -> ExportResult:
    """Claim every due payout and write them as one pain.001.001.09 file at ``out``.

    ``out`` must not exist (a file already written may not have reached the bank yet: overwriting it
    would lose the payouts it carries); nothing is claimed otherwise. The requested execution date is
    at least today's business day in the banks' time zone (``opts.retry.timezone``, the configured one;
    settlement.calendar), also for payouts whose value date has passed.
    """
    import errno

    from settleguard.settlement.calendar import business_day_on_or_after

    message_id = f"SGB{now:%Y%m%d%H%M%S%f}"[:35]
    result = ExportResult(None, message_id)
    out = Path(out)
    if out.exists():
        raise FileExistsError(errno.EEXIST, "文件已存在，不覆盖 file exists; not overwritten", str(out))
    earliest = business_day_on_or_after(now.astimezone(ZoneInfo(opts.retry.timezone)).date())
    staged = out.with_name(f".{out.name}.staged")
    summary = SendSummary()
    with engine.begin() as conn:
        rows = repo.due(conn, as_of, now, 10**9, exclude_banks=exclude_banks)
        sendable = [p for p in rows if p.account_id is not None]
        no_card = [p for p in rows if p.account_id is None]
        if no_card:
            hold_without_card(conn, no_card, now, summary, tz=opts.retry.timezone)
            result.held_no_card = len(no_card)
        # card numbers opened before anything is claimed: one that does not decrypt goes to needs_review
        # (payouts.service.open_cards), the others are exported
        sendable, pans = open_cards(conn, vault, sendable, now, summary)
        result.unreadable = summary.needs_review
        if not sendable:
            return result
        instructions = [_instruction(p, pans[p.id]) for p in sendable]
        batch = write_pain001(staged, instructions, config, message_id=message_id, created_at=now,
                              earliest_execution=earliest)
        os.chmod(staged, 0o600)  # the file carries full account numbers
        group_of = {key: g.payment_information_id for g in batch.groups for key in g.end_to_end_ids}
        numbers = repo.next_attempt_no(conn, [p.id for p in sendable])
        repo.change_status(conn, [
            repo.StatusChange(p.id, S.SUBMITTED, f"文件出款 in pain.001 {message_id}",
                              {"attempt_count": p.attempt_count + 1, "account_id": p.account_id,
                               "next_attempt_at": None})
            for p in sendable], now)
        ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                                for p in sendable if p.status is S.CREATED and p.parent_id is None], now)
        conn.execute(insert(t.payout_attempts), [
            {"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "send", "idempotency_key": p.key,
             "channel": CHANNEL, "account_id": p.account_id, "amount_fen": p.amount_fen, "requested_at": now,
             "batch_ref": f"{message_id}|{group_of[p.key]}"} for p in sendable])
    os.replace(staged, out)
    result.path, result.count, result.total_fen = out, batch.count, batch.total_fen
    return result


def _instruction(p: repo.DuePayout, pan: str) -> PayoutInstruction:
    return PayoutInstruction(
        idempotency_key=p.key, amount_fen=p.amount_fen, currency=p.currency, creditor_name=p.holder_name or "",
        account_number=pan, bank_code=p.bank_code or "",
        account_kind=p.account_kind or "personal", value_date=p.value_date)


# --------------------------------------------------------------------------------------- import


@dataclass
class ImportSummary:
    path: Path
    kind: str
    sha256: str
    statuses: int = 0
    applied: int = 0
    ignored: int = 0
    conflicts: int = 0
    returned: int = 0
    returned_fen: int = 0
    already_imported: bool = False
    send: SendSummary = field(default_factory=SendSummary)
    known: int = 0  # lines (statuses, entries) naming an instruction we sent
    unknown: int = 0  # lines naming one we never sent (also counted in ``ignored``)
    unknown_lines: list[UnknownLine] = field(default_factory=list)  # the first UNKNOWN_SHOWN of them
    case_id: int | None = None  # the case opened for the unknown lines
    first_known: str | None = None  # the first EndToEndId of ours the file names


UNKNOWN_SHOWN = 200  # unknown lines listed in the case note, the CLI and the refusal (all are counted)
SUSPECTS_SHOWN = 50  # payouts of the answered pain.001 still without an answer, listed in the note


@dataclass(frozen=True)
class UnknownLine:
    """A line of a bank file naming an instruction we never sent, as people see it (card numbers masked,
    texts bounded: the reference itself may be an account number a hostile file put there)."""

    line: int | None
    reference: str
    amount_fen: int | None
    status: str
    reason: str

    def describe(self) -> str:
        where = "-" if self.line is None else str(self.line)
        amount = "-" if self.amount_fen is None else format_yuan(self.amount_fen)
        return (f"第 {where} 行 line {where} · 参考号 id {self.reference} · 金额 amount {amount} · "
                f"状态 status {self.status} · 原因 reason {self.reason or '-'}")

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "reference": self.reference, "amount_fen": self.amount_fen,
                "status": self.status, "reason": self.reason}


class NothingMatched(ReportRejected):
    """A report none of whose lines names an instruction we sent: refused, and not recorded as imported
    (it can be imported again once the bank or the operator fixed it)."""

    def __init__(self, path: Path, summary: ImportSummary) -> None:
        super().__init__(path, None, None, (
            f"文件中没有任何一条涉及我们发出的出款（未知参考号 {summary.unknown} 条），未导入，修正后可重新导入 / "
            f"the file names no payout instruction we sent ({summary.unknown} unknown reference(s)): nothing "
            "applied, not recorded as imported; it can be imported again after a fix"))
        self.unknown = summary.unknown
        self.lines = list(summary.unknown_lines)


def _unknown_status(summary: ImportSummary, st: TransactionStatus) -> None:
    summary.unknown += 1
    if len(summary.unknown_lines) < UNKNOWN_SHOWN:
        reason = " ".join(x for x in (st.reason_code or st.reason_proprietary, st.additional_info) if x)
        summary.unknown_lines.append(UnknownLine(st.line, bounded(st.end_to_end_id, 40), st.amount_fen,
                                                 bounded(st.status, 8), bounded(reason, 120)))


def _unknown_entry(summary: ImportSummary, e: NotificationEntry) -> None:
    summary.unknown += 1
    if len(summary.unknown_lines) < UNKNOWN_SHOWN:
        r = e.return_reason
        reason = " ".join(x for x in (r.code or r.proprietary, r.additional_info) if x) if r is not None else ""
        what = f"{e.entry_status} {e.credit_debit}" + (" 退票 return" if e.is_return else "")
        summary.unknown_lines.append(UnknownLine(e.line, bounded(e.end_to_end_id or "", 40), e.amount_fen,
                                                 bounded(what, 40), bounded(reason, 120)))


def _outcome(st: TransactionStatus) -> BankOutcome:
    code = st.reason_code or st.reason_proprietary or ""
    status = (OutcomeStatus.SUCCEEDED if st.status in SUCCEEDED
              else OutcomeStatus.FAILED if st.status in FAILED else OutcomeStatus.UNKNOWN)
    raw = f'{{"TxSts":"{st.status}","Rsn":"{code}","source":"{st.status_source}"}}'
    return BankOutcome(status, code or st.status, st.additional_info, raw, retryable=False, scheme="iso20022")


def _original(conn: Connection, message_id: str, pmt_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """PmtInfId -> EndToEndIds of our pain.001 ``message_id`` (only of ``pmt_ids`` if given), from the
    attempts recorded at export."""
    a = t.payout_attempts
    out: dict[str, list[str]] = {}
    which = (a.c.batch_ref.in_([f"{message_id}|{p}" for p in pmt_ids]) if pmt_ids is not None
             else a.c.batch_ref.like(f"{message_id}|%"))
    for ref, key in conn.execute(select(a.c.batch_ref, a.c.idempotency_key).where(which)):
        out.setdefault(ref.split("|", 1)[1], []).append(key)
    return out


def import_report(engine: Engine, path: Path, *, now: datetime, cases: CaseOpener, opts: Options = DEFAULT_OPTIONS,
                  progress: Callable[[int], None] | None = None, attempts: int = 5) -> ImportSummary:
    """Apply a pain.002 or camt.054 file (see :func:`_import_report_once`). A deadlock with a worker
    (PostgreSQL) or a busy SQLite database rolls the whole import back; it is run again, up to
    ``attempts`` times: the import is atomic and idempotent, so running it again is safe."""
    for attempt in range(1, attempts + 1):
        try:
            return _import_report_once(engine, path, now=now, cases=cases, opts=opts, progress=progress)
        except Exception as exc:
            if attempt == attempts or not is_transient_conflict(exc):
                raise
            time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _import_report_once(engine: Engine, path: Path, *, now: datetime, cases: CaseOpener,
                        opts: Options = DEFAULT_OPTIONS,
                        progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Apply a pain.002 or camt.054 file: all of it in one transaction, or nothing (ReportRejected).

    One streaming pass: the file is parsed, checked and applied chunk by chunk inside a single
    database transaction, so a ReportRejected at any point (the last element included) rolls back
    everything applied before it. The SHA-256 is taken first (a file imported before changes
    nothing) and again while the file is parsed (a file changed in between is rejected).
    """
    path = Path(path)
    sha256 = file_sha256(path)
    stream = ReportStream(path)
    summary = ImportSummary(path, stream.kind, sha256)
    with engine.begin() as conn:
        done = conn.execute(select(t.report_imports.c.id).where(t.report_imports.c.sha256 == sha256)).first()
        if done is not None:
            summary.already_imported = True
            return summary
        if stream.kind == "pain.002":
            bulk = _BulkStatuses(conn, summary, now, opts, stream)
            listed: set[str] = set()
            # The file is parsed and checked on a second thread, up to two chunks ahead, while this one
            # applies each chunk as it comes (SQLite and libpq release the GIL while they work).
            with closing(_read_ahead(_final_chunks(_listing(stream, listed), STATUS_CHUNK, FIRST_CHUNK))) as chunks:
                for n, (chunk, final) in enumerate(chunks):
                    if n == 0:  # OrgnlGrpInfAndSts comes before any transaction: known by now
                        _check_original_message(conn, stream, path)
                    if final:
                        # The final chunk (read once the whole file was) goes together with the implied
                        # statuses: a report that fits in one chunk locks its payouts (PostgreSQL) in
                        # one ordered statement, as concurrent workers do.
                        for part in _chunks([*chunk, *_implied(conn, stream, listed)], STATUS_CHUNK):
                            bulk.apply(part)
                    else:
                        bulk.apply(chunk)
                    if progress and chunk:
                        progress(len(chunk))
            bulk.close()
        else:
            for entries in _chunks(stream.items(), CHUNK):
                _apply_entries(conn, [i for i in entries if isinstance(i, NotificationEntry)], summary, now, opts,
                               cases)
                if progress:
                    progress(len(entries))
        if stream.sha256 != sha256:
            raise ReportRejected(path, None, None, "file changed while it was read 文件在读取过程中被修改")
        summary.statuses = stream.count
        if not summary.known:
            raise NothingMatched(path, summary)  # rolls back; not recorded as imported
        if summary.unknown:
            _alarm(conn, summary, stream.group.original_message_id if stream.group is not None else None, now,
                   opts.retry.timezone, cases)
        conn.execute(insert(t.report_imports).values(
            sha256=sha256, filename=mask_card_numbers(path.name)[:256], kind=stream.kind,
            statuses=summary.statuses, applied=summary.applied, imported_at=now))
    return summary


def _check_original_message(conn: Connection, stream: ReportStream, path: Path) -> None:
    """A pain.002 answers one of our pain.001 files: an OrgnlMsgId we never exported refuses the whole
    file (its statuses would otherwise be applied as if they were about ours)."""
    group = stream.group
    if group is not None and not report_repo.message_exported(conn, group.original_message_id):
        shown = bounded(group.original_message_id, 40)
        raise ReportRejected(path, None, "OrgnlMsgId",
                             f"原批次号 {shown} 不是我们发出的 pain.001 文件，整个文件被拒绝 / OrgnlMsgId {shown} "
                             "names no pain.001 we exported: the whole file is refused")


def _alarm(conn: Connection, summary: ImportSummary, message_id: str | None, now: datetime, tz: str,
           cases: CaseOpener) -> None:
    """Lines naming instructions we never sent: an ops alert and a case (工单) whose note lists the file,
    its SHA-256, the unknown lines and the payouts of the answered pain.001 still without an answer (the
    unknown lines may be about them). A case belongs to a merchant: it is filed under the first such
    payout's merchant (and linked to that merchant's ones), else under the merchant of the file's first
    line we know."""
    n_suspects, suspects = (report_repo.unanswered_in_message(conn, message_id, SUSPECTS_SHOWN)
                            if message_id is not None else (0, []))
    first = report_repo.payout_of_key(conn, summary.first_known) if summary.first_known else None
    owner = suspects[0].merchant_id if suspects else (first.merchant_id if first is not None else None)
    name = bounded(summary.path.name, 80)
    lines = [
        "银行文件含我们从未发出的参考号 A bank file names references we never sent",
        f"文件 file: {name}",
        f"SHA-256: {summary.sha256}",
        f"类型 kind: {summary.kind}" + (f" · 原批次 OrgnlMsgId {message_id[:35]}" if message_id else ""),  # ours
        f"导入于 imported at: {now.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M:%S} 北京时间 Beijing time",
        f"已处理 applied {summary.applied} · 未知参考号 unknown references {summary.unknown}"
        + (f"（列出前 {len(summary.unknown_lines)} 条 first {len(summary.unknown_lines)} listed）"
           if len(summary.unknown_lines) < summary.unknown else ""),
        *(u.describe() for u in summary.unknown_lines),
    ]
    if n_suspects:
        lines.append(f"原批次中仍未获回执的出款 {n_suspects} 笔（未知参考号可能即指它们）payouts of that pain.001 still "
                     f"without an answer: {n_suspects} (the unknown lines may be about them)")
        lines += [f"出款 payout {x.payout_id} · {x.key} · {format_yuan(x.amount_fen)}" for x in suspects]
    lines.append("请与银行核对这些参考号，并处理上列出款。Check these references with the bank and settle the payouts "
                 "listed.")
    case_id = None
    if owner is not None:
        case_id = cases(
            conn, merchant_id=owner, category=UNKNOWN_REFERENCE,
            title=f"银行文件 {name} 含 {summary.unknown} 条未知参考号 bank file {name}: {summary.unknown} unknown "
                  "reference(s)",
            note="\n".join(lines), now=now, dedupe_key=f"{UNKNOWN_REFERENCE}:{summary.sha256}"[:128],
            payout_ids=[x.payout_id for x in suspects if x.merchant_id == owner])
    summary.case_id = case_id
    opened = f"已开工单 {case_id}" if case_id is not None else "工单已存在"
    opened_en = f"case {case_id} opened" if case_id is not None else "a case exists already"
    repo.add_alert(conn, "unknown_reference", f"unknown_reference:{summary.sha256}",
                   f"银行文件 {name}（SHA-256 {summary.sha256[:16]}…）含 {summary.unknown} 条我们从未发出的参考号，其余已处理；"
                   f"{opened}，请与银行核对。Bank file {name} (SHA-256 {summary.sha256[:16]}…) names {summary.unknown} "
                   f"reference(s) we never sent; the rest was applied; {opened_en}: check with the bank.", now)


def _undecided(status: str | None) -> bool:
    return status is None or status == "PART"


def _listing(stream: ReportStream, listed: set[str]) -> Iterator[TransactionStatus]:
    """The report's statuses; remembers in ``listed`` the keys under a decided group or
    payment-information status (only those matter for the implied statuses, see :func:`_implied`)."""
    for item in stream.items():
        if isinstance(item, TransactionStatus):
            group, pmt = stream.group, stream.current_payment_information
            if (group is not None and not _undecided(group.status)) or (pmt is not None
                                                                       and not _undecided(pmt.status)):
                listed.add(item.end_to_end_id)
            yield item


def _implied(conn: Connection, stream: ReportStream, listed: set[str]) -> list[TransactionStatus]:
    """After the whole report was read: the statuses implied for the transactions of our pain.001
    it does not list (their payment information's or the group's status)."""
    group = stream.group
    if group is None:
        return []
    decided = [p.original_payment_information_id for p in stream.payment_informations if not _undecided(p.status)]
    if _undecided(group.status) and not decided:
        return []
    original = _original(conn, group.original_message_id, decided if _undecided(group.status) else None)
    return implied_statuses(stream.header, stream.payment_informations, original, listed)


def _read_ahead(chunks: Generator[_Item, None, None], depth: int = 2) -> Generator[_Item, None, None]:
    """``chunks`` as a background thread produces them, up to ``depth`` ahead; an exception raised
    while producing (ReportRejected) is raised here. Closing this generator stops the thread."""
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                q.put(("chunk", chunk))
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            q.put(("error", exc))
        finally:
            chunks.close()

    thread = threading.Thread(target=work, name="report-reader", daemon=True)
    thread.start()
    try:
        while True:
            what, value = q.get()
            if what == "error":
                assert isinstance(value, BaseException)
                raise value
            if what == "end":
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # let a blocked put() return so the thread can see ``stop``
            with suppress(queue.Empty):
                q.get_nowait()
            thread.join(0.05)


class _BulkStatuses:
    """Applies pain.002 statuses chunk by chunk: answers whose plan does not depend on the payout
    (confirm, inquire, hold, review) with set-based SQL (payouts.report_repository), the rest, and answers about
    payouts no longer open, one by one through :func:`_apply_statuses` (apply_answers).

    Each distinct answer (status, reason, AddtlInf, source) is diagnosed and planned once, on a
    prototype payout, through the same functions as every other answer (service.diagnose, _plan,
    _apply); the status change, event reason, ledger entry and counters it yields are then applied
    to every open payout that received that answer.
    """

    def __init__(self, conn: Connection, summary: ImportSummary, now: datetime, opts: Options,
                 stream: ReportStream) -> None:
        self.conn, self.summary, self.now, self.opts, self.stream = conn, summary, now, opts, stream
        self.ids: dict[tuple[str, str | None, str | None, str, str], int] = {}
        self.fast: dict[int, tuple[report_repo.Kind, SendSummary, BankOutcome, Plan]] = {}
        report_repo.begin(conn)

    def close(self) -> None:
        report_repo.end(self.conn)

    def _kind(self, st: TransactionStatus, sig: tuple[str, str | None, str | None, str, str]) -> int:
        kid = self.ids[sig] = len(self.ids) + 1
        outcome = _outcome(st)
        category, rule = diagnose(outcome)
        # The plan for two very different payouts (first vs. last attempt, small vs. huge amount,
        # other key): if it is the same and needs nothing per payout, it is the plan for all.
        plans = []
        for attempt, amount, key in ((1, 1, "PROTOTYPE1"), (10**6, 10**15, "PROTOTYPE2")):
            proto = repo.DuePayout(0, 0, amount, "CNY", S.SUBMITTED, key, attempt, self.now.date(), 0, None, None,
                                   None, None, None, None, None, None)
            answer = Answer(proto, 0, proto.attempt_count, outcome, True, None)
            plans.append(service._plan(answer, category, None, self.now, self.opts))
        pl = plans[0]
        if (plans[1] != pl or pl.next_attempt_at is not None or pl.alert or pl.parts or pl.exhausted
                or pl.action not in (Action.CONFIRM, Action.INQUIRE, Action.HOLD, Action.REVIEW)):
            return kid
        proto = repo.DuePayout(0, 0, 1, "CNY", S.SUBMITTED, "PROTOTYPE", 1, self.now.date(), 0, None, None, None,
                               None, None, None, None, None)
        batch, counts = service._Batch(), SendSummary()
        service._apply(Answer(proto, 0, 1, outcome, True, None), pl, batch, counts, self.now)
        if len(batch.changes) != 1 or len(batch.follow) > 1 or batch.splits or batch.alerts or len(batch.entries) > 1:
            return kid
        self.fast[kid] = (report_repo.Kind(
            kid, str(outcome.status), outcome.code[:32], outcome.message[:512], outcome.raw,
            None if category == "succeeded" else category, rule, str(pl.action),
            tuple((c.to, c.reason, dict(c.values or {})) for c in (*batch.changes, *batch.follow)),
            batch.entries[0] if batch.entries else None), counts, outcome, pl)
        return kid

    def apply(self, statuses: Sequence[TransactionStatus]) -> None:
        if not statuses:
            return
        rows: list[tuple[int, str, int]] = []
        ids = self.ids
        for i, st in enumerate(statuses):
            sig = (st.status, st.reason_code, st.reason_proprietary, st.additional_info, st.status_source)
            kid = ids.get(sig) or self._kind(st, sig)
            rows.append((i, st.end_to_end_id, kid))
        conn, s = self.conn, self.summary
        kinds = [k for k, *_ in self.fast.values()]
        report_repo.stage(conn, rows, kinds)
        unknown = report_repo.unknown_items(conn)  # EndToEndIds we never sent: an alarm (_alarm), not silence
        for i in unknown:
            _unknown_status(s, statuses[i])
        s.known += len(statuses) - len(unknown)
        if s.first_known is None and len(unknown) < len(statuses):
            skip = set(unknown)
            s.first_known = next(st.end_to_end_id for i, st in enumerate(statuses) if i not in skip)
        # the pain.001 the report answers (its group comes before any transaction in the file)
        group = self.stream.group
        matched, _dropped = report_repo.resolve(conn, list(self.fast), sorted(OPEN),
                                                group.original_message_id if group is not None else None)
        s.ignored += len(statuses) - matched
        rest = report_repo.others(conn)
        for done in report_repo.apply_fast(conn, kinds, self.now, "银行状态报告 status report"):
            _kind, counts, outcome, pl = self.fast[done.kind]
            if pl.action is Action.HOLD:  # the merchant's notices (and failed cards), as apply_answers writes them
                service.answer_notices(conn, [(target, outcome, pl) for target in report_repo.fast_targets(
                    conn, done.kind)], self.now, tz=self.opts.retry.timezone)
            s.applied += done.count
            s.send.succeeded += counts.succeeded * done.count
            s.send.succeeded_fen += done.amount_fen if counts.succeeded else 0
            s.send.unknown += counts.unknown * done.count
            s.send.held += counts.held * done.count
            s.send.held_fen += done.amount_fen if counts.held else 0
            s.send.needs_review += counts.needs_review * done.count
            for reason, n in counts.reasons.items():
                s.send.reasons[reason] += n * done.count
            for category, n in counts.categories.items():
                s.send.categories[category] += n * done.count
        for start in range(0, len(rest), CHUNK):
            part = rest[start:start + CHUNK]
            _apply_statuses(conn, [statuses[i] for i, _on in part], s, self.now, self.opts,
                            {statuses[i].end_to_end_id: on for i, on in part if on is not None})


def _chunks(items: Iterable[_Item], n: int) -> Generator[list[_Item], None, None]:
    chunk: list[_Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _final_chunks(items: Iterable[_Item], n: int, first: int) -> Generator[tuple[list[_Item], bool], None, None]:
    """``items`` in lists of ``n`` (the first of ``first``), each with whether it is the final one: the
    list made once ``items`` ended, shorter than its size (empty when they ended on a full list)."""
    chunk: list[_Item] = []
    size = first
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk, False
            chunk, size = [], n
    yield chunk, True


def _conflict(conn: Connection, p: repo.DuePayout, what: str, now: datetime, summary: ImportSummary) -> None:
    summary.conflicts += 1
    digest = hashlib.sha256(f"{p.key}:{what}".encode()).hexdigest()[:16]
    repo.add_alert(conn, "conflicting_report", f"conflicting_report:{p.id}:{digest}",
                   f"出款 {p.id}（{p.key}）的银行报告与记录矛盾：{what}，请人工核对。Payout {p.id} ({p.key}): the bank's "
                   f"report contradicts what is recorded ({what}); check by hand.", now, p.bank_code)


def _apply_statuses(conn: Connection, statuses: Sequence[TransactionStatus], summary: ImportSummary,
                    now: datetime, opts: Options, answer_on: Mapping[str, int]) -> None:
    """Apply statuses one by one through apply_answers; ``answer_on``: EndToEndId -> the unanswered send
    attempt the answer belongs on (report_repository.resolve); without one, a "report" attempt row."""
    found = repo.by_instruction_keys(conn, [s.end_to_end_id for s in statuses])
    answers: list[Answer] = []
    seen: set[int] = set()
    to_inquiry: list[repo.StatusChange] = []
    for st in statuses:
        p = found.get(st.end_to_end_id)
        if p is None or p.key != st.end_to_end_id or p.id in seen:
            summary.ignored += 1
            continue
        outcome = _outcome(st)
        if p.status not in OPEN:
            paid = p.status in (S.SUCCEEDED, S.RETURNED)
            if (outcome.status is OutcomeStatus.SUCCEEDED and not paid and p.status is not S.CANCELLED) or (
                    outcome.status is OutcomeStatus.FAILED and paid):
                _conflict(conn, p, f"{st.status} vs {p.status}", now, summary)
            else:
                summary.ignored += 1
            continue
        seen.add(p.id)
        if p.status is S.RESULT_UNKNOWN:
            to_inquiry.append(repo.StatusChange(p.id, S.INQUIRY, "银行状态报告 status report"))
            p = _with_status(p, S.INQUIRY)
        answers.append(Answer(p, answer_on.get(st.end_to_end_id, 0), p.attempt_count, outcome, True, p.bank_code))
    repo.change_status(conn, to_inquiry, now)
    apply_answers(conn, answers, summary.send, now, opts, lambda _p: None)
    summary.applied += len(answers)


def _with_status(p: repo.DuePayout, status: PayoutStatus) -> repo.DuePayout:
    from dataclasses import replace
    return replace(p, status=status)


def _apply_entries(conn: Connection, entries: Sequence[NotificationEntry], summary: ImportSummary,
                   now: datetime, opts: Options, cases: CaseOpener) -> None:
    keyed = [e for e in entries if e.end_to_end_id and e.end_to_end_id != NOT_PROVIDED]
    summary.ignored += len(entries) - len(keyed)
    found = repo.by_instruction_keys(conn, [e.end_to_end_id for e in keyed if e.end_to_end_id])
    confirms: list[Answer] = []
    returns: list[tuple[repo.DuePayout, NotificationEntry]] = []
    for e in keyed:
        p = found.get(e.end_to_end_id or "")
        if p is None and (e.credit_debit == "DBIT" or e.is_return):  # money out, or back, under a reference
            _unknown_entry(summary, e)  # we never sent: an alarm (_alarm); other credits are not ours to judge
        elif p is not None:
            summary.known += 1
            summary.first_known = summary.first_known or e.end_to_end_id
        if p is None or p.key != e.end_to_end_id or e.entry_status != "BOOK":
            summary.ignored += 1
            continue
        if e.is_return:
            if p.status in OPEN or p.status in (S.SUCCEEDED, S.HELD, S.RETRY_SCHEDULED):  # _apply_returns
                returns.append((p, e))
            else:
                summary.ignored += 1  # returned already, or never paid (then the return is a conflict)
                if p.status not in (S.HELD, S.RETURNED, S.RELEASED):
                    _conflict(conn, p, f"return for a payout in {p.status}", now, summary)
            continue
        if e.credit_debit == "DBIT" and not e.reversal and p.status in OPEN:
            if p.status is S.RESULT_UNKNOWN:
                conn_change = repo.StatusChange(p.id, S.INQUIRY, "银行借记通知 debit notification")
                repo.change_status(conn, [conn_change], now)
                p = _with_status(p, S.INQUIRY)
            outcome = BankOutcome(OutcomeStatus.SUCCEEDED, "BOOK", "银行已记账 booked by the bank",
                                  f'{{"NtfctnId":"{e.notification_id}"}}', scheme="iso20022")
            confirms.append(Answer(p, 0, p.attempt_count, outcome, True, p.bank_code))
        else:
            summary.ignored += 1
    apply_answers(conn, confirms, summary.send, now, opts, lambda _p: None)
    summary.applied += len(confirms)
    _apply_returns(conn, returns, summary, now, opts.retry.timezone, cases)


def _apply_returns(conn: Connection, returns: Sequence[tuple[repo.DuePayout, NotificationEntry]],
                   summary: ImportSummary, now: datetime, tz: str, cases: CaseOpener) -> None:
    """Paid, then returned (退票): succeeded -> returned -> held, with a return entry. A return for a permanent
    card reason (closed, frozen, ...) marks the card the payout went to unusable (cards.service.mark_failed_card);
    the merchant is told once (no return notice for a card that was unusable already).

    A return for a payout that is held or retry-scheduled (our records say it was not paid) changes nothing and
    is handled one way: an alert and a case with the bank's line, for a person to reconcile; a return already
    recorded for that instruction (the same return in another file) is ignored."""
    if not returns:
        return
    unpaid = [(p, e) for p, e in returns if p.status in (S.HELD, S.RETRY_SCHEDULED)]
    if unpaid:
        _unpaid_returns(conn, unpaid, summary, now, cases)
        returns = [(p, e) for p, e in returns if p.status not in (S.HELD, S.RETRY_SCHEDULED)]
        if not returns:
            return
    first: list[repo.StatusChange] = []
    confirm: list[repo.StatusChange] = []
    back: list[repo.StatusChange] = []
    held: list[repo.StatusChange] = []
    entries: list[ledger.Entry] = []
    reports: list[dict[str, object]] = []
    numbers = repo.next_attempt_no(conn, [p.id for p, _ in returns])
    went_to = repo.held_on(conn, [p.id for p, _ in returns])
    for p, e in returns:
        reason = e.return_reason
        code = (reason.code or reason.proprietary or "") if reason else ""
        info = reason.additional_info if reason else ""
        outcome = BankOutcome(OutcomeStatus.FAILED, code or "RTRN", info, f'{{"NtfctnId":"{e.notification_id}",'
                              f'"Rtr":"{code}"}}', scheme="iso20022_return")
        category, rule = diagnose(outcome)
        if p.status is S.RESULT_UNKNOWN:
            first.append(repo.StatusChange(p.id, S.INQUIRY, "银行退票通知 return notification"))
        if p.status is not S.SUCCEEDED:  # the return proves it had been paid
            confirm.append(repo.StatusChange(p.id, S.SUCCEEDED, "退票证明已付款 the return shows it was paid"))
            entries.append(ledger.confirm(p.merchant_id, p.id, p.amount_fen))
        text = f"退票 returned {code} {info}".strip()
        back.append(repo.StatusChange(p.id, S.RETURNED, text, {"last_code": (code or "RTRN")[:32],
                                                               "last_message": info[:512], "category": category}))
        held.append(repo.StatusChange(p.id, S.HELD, f"退票挂账 held after return ({category})"))
        entries.append(ledger.returned(p.merchant_id, p.id, p.amount_fen))
        account_id = went_to.get(p.id)
        reports.append({"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "report", "idempotency_key": p.key,
                        "channel": "report", "account_id": account_id, "amount_fen": p.amount_fen,
                        "requested_at": now, "responded_at": now, "outcome": "returned", "code": (code or "RTRN")[:32],
                        "message": info[:512], "raw_response": outcome.raw, "category": category, "rule_id": rule,
                        "decision": "hold"})
        summary.returned += 1
        summary.returned_fen += p.amount_fen
        d = diagnosis_of("iso20022_return", code, info)
        if category in CARD_FAILURES and account_id is not None:
            card = card_repo.account_by_id(conn, account_id)
            if card is not None and card.status == "unusable":
                continue  # the merchant was told when the card was marked
            mark_failed_card(conn, CardFailure(account_id, p.id, category, "iso20022_return", code or "RTRN", info,
                                               rule, d.meaning_zh, d.meaning_en), now=now)
        notify_payout(conn, p, "returned", d, p.amount_fen, now, tz=tz, code=code or "RTRN",
                      message=info)  # the merchant's notice, in this transaction
    for changes in (first, confirm, back, held):
        repo.change_status(conn, changes, now)
    ledger_repo.post(conn, entries, now)
    repo.add_finished_attempts(conn, reports)
    summary.applied += len(returns)


def _unpaid_returns(conn: Connection, returns: Sequence[tuple[repo.DuePayout, NotificationEntry]],
                    summary: ImportSummary, now: datetime, cases: CaseOpener) -> None:
    """Returns for payouts held or retry-scheduled: an alert and a case each (see :func:`_apply_returns`)."""
    seen = repo.returned_keys(conn, [p.id for p, _ in returns])
    for p, e in returns:
        if (p.id, p.key) in seen:
            summary.ignored += 1  # the same return, recorded already
            continue
        reason = e.return_reason
        code = (reason.code or reason.proprietary or "") if reason else ""
        info = reason.additional_info if reason else ""
        what = f"return {code or 'RTRN'} ({e.notification_id}) for a payout in {p.status}"
        _conflict(conn, p, what, now, summary)
        status_zh = STATUS_ZH[p.status]
        cases(
            conn, merchant_id=p.merchant_id, category="returned", dedupe_key=f"unpaid_return:P{p.id}:I{p.key}",
            title=f"退票与记录不符：出款 {p.id} 为{status_zh} Return for payout {p.id} while it is {p.status}"[:256],
            note=(f"银行 camt.054 退票通知（{e.notification_id}，EndToEndId {e.end_to_end_id}，退票原因 {code or 'RTRN'} "
                  f"{info}）说出款 {p.id} 已付款又被退回，但记录中该出款为“{status_zh}”（未付款）。未做任何更改：请与银行核对"
                  f"该笔是否曾入账、资金现在何处，再决定放行、撤销或重试。\nThe bank's camt.054 return ({e.notification_id}, "
                  f"EndToEndId {e.end_to_end_id}, reason {code or 'RTRN'} {info}) says payout {p.id} was paid and "
                  f"returned, but it is {p.status} (not paid) in our records. Nothing was changed: check with the bank "
                  f"whether it was ever credited and where the money is, then release, cancel or retry it."),
            now=now, payout_ids=[p.id])
