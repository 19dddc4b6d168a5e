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
from typing import TypeVar

from sqlalchemy import Connection, Engine, insert, select

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
from settleguard.notify.outbox import answer_notice, diagnosis_of, notify_payout, notify_payouts
from settleguard.payouts import report_repository as report_repo
from settleguard.payouts import repository as repo
from settleguard.payouts import service
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.policy import Action, Plan
from settleguard.payouts.service import (
    DEFAULT_OPTIONS,
    Answer,
    Options,
    SendSummary,
    apply_answers,
    diagnose,
    hold_without_card,
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


@dataclass
class ExportResult:
    path: Path | None
    message_id: str
    count: int = 0
    total_fen: int = 0
    held_no_card: int = 0


def export_pain001(engine: Engine, vault: Vault, config: BatchConfig, out: Path, *, as_of: date, now: datetime,
                   exclude_banks: Sequence[str] = ()) -> ExportResult:
    """Claim every due payout and write them as one pain.001.001.09 file at ``out``."""
    message_id = f"SGB{now:%Y%m%d%H%M%S%f}"[:35]
    result = ExportResult(None, message_id)
    out = Path(out)
    staged = out.with_name(f".{out.name}.staged")
    summary = SendSummary()
    with engine.begin() as conn:
        rows = repo.due(conn, as_of, now, 10**9, exclude_banks=exclude_banks)
        sendable = [p for p in rows if p.account_id is not None]
        no_card = [p for p in rows if p.account_id is None]
        if no_card:
            hold_without_card(conn, no_card, now, summary)
            result.held_no_card = len(no_card)
        if not sendable:
            return result
        instructions = [_instruction(vault, p) for p in sendable]
        batch = write_pain001(staged, instructions, config, message_id=message_id, created_at=now)
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


def _instruction(vault: Vault, p: repo.DuePayout) -> PayoutInstruction:
    assert p.pan_cipher is not None
    assert p.pan_nonce is not None
    assert p.key_version is not None
    return PayoutInstruction(
        idempotency_key=p.key, amount_fen=p.amount_fen, currency=p.currency, creditor_name=p.holder_name or "",
        account_number=vault.open(p.pan_cipher, p.pan_nonce, p.key_version), bank_code=p.bank_code or "",
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


def import_report(engine: Engine, path: Path, *, now: datetime, opts: Options = DEFAULT_OPTIONS,
                  progress: Callable[[int], None] | None = None, attempts: int = 5) -> ImportSummary:
    """Apply a pain.002 or camt.054 file (see :func:`_import_report_once`). A deadlock with a worker
    (PostgreSQL) or a busy SQLite database rolls the whole import back; it is run again, up to
    ``attempts`` times: the import is atomic and idempotent, so running it again is safe."""
    for attempt in range(1, attempts + 1):
        try:
            return _import_report_once(engine, path, now=now, opts=opts, progress=progress)
        except Exception as exc:
            if attempt == attempts or not is_transient_conflict(exc):
                raise
            time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _import_report_once(engine: Engine, path: Path, *, now: datetime, opts: Options = DEFAULT_OPTIONS,
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
                for chunk, final in chunks:
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
                _apply_entries(conn, [i for i in entries if isinstance(i, NotificationEntry)], summary, now, opts)
                if progress:
                    progress(len(entries))
        if stream.sha256 != sha256:
            raise ReportRejected(path, None, None, "file changed while it was read 文件在读取过程中被修改")
        summary.statuses = stream.count
        conn.execute(insert(t.report_imports).values(
            sha256=sha256, filename=path.name[:256], kind=stream.kind,
            statuses=summary.statuses, applied=summary.applied, imported_at=now))
    return summary


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
        # the pain.001 the report answers (its group comes before any transaction in the file)
        group = self.stream.group
        matched, _dropped = report_repo.resolve(conn, list(self.fast), sorted(OPEN),
                                                group.original_message_id if group is not None else None)
        s.ignored += len(statuses) - matched
        rest = report_repo.others(conn)
        for done in report_repo.apply_fast(conn, kinds, self.now, "银行状态报告 status report"):
            _kind, counts, outcome, pl = self.fast[done.kind]
            if pl.action is Action.HOLD:  # the merchant's notices, as apply_answers writes them
                notify_payouts(conn, [told for target in report_repo.fast_targets(conn, done.kind) if (
                    told := answer_notice(target, str(pl.action), pl.category, outcome.scheme, outcome.code,
                                       outcome.message, target.amount_fen)) is not None], self.now)
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
                   now: datetime, opts: Options) -> None:
    keyed = [e for e in entries if e.end_to_end_id]
    summary.ignored += len(entries) - len(keyed)
    found = repo.by_instruction_keys(conn, [e.end_to_end_id for e in keyed if e.end_to_end_id])
    confirms: list[Answer] = []
    returns: list[tuple[repo.DuePayout, NotificationEntry]] = []
    for e in keyed:
        p = found.get(e.end_to_end_id or "")
        if p is None or p.key != e.end_to_end_id or e.entry_status != "BOOK":
            summary.ignored += 1
            continue
        if e.is_return:
            if p.status in OPEN or p.status is S.SUCCEEDED:
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
    _apply_returns(conn, returns, summary, now)


def _apply_returns(conn: Connection, returns: Sequence[tuple[repo.DuePayout, NotificationEntry]],
                   summary: ImportSummary, now: datetime) -> None:
    """Paid, then returned (退票): succeeded -> returned -> held, with a return entry."""
    if not returns:
        return
    first: list[repo.StatusChange] = []
    confirm: list[repo.StatusChange] = []
    back: list[repo.StatusChange] = []
    held: list[repo.StatusChange] = []
    entries: list[ledger.Entry] = []
    reports: list[dict[str, object]] = []
    numbers = repo.next_attempt_no(conn, [p.id for p, _ in returns])
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
        reports.append({"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "report", "idempotency_key": p.key,
                        "channel": "report", "account_id": p.account_id, "amount_fen": p.amount_fen,
                        "requested_at": now, "responded_at": now, "outcome": "returned", "code": (code or "RTRN")[:32],
                        "message": info[:512], "raw_response": outcome.raw, "category": category, "rule_id": rule,
                        "decision": "hold"})
        summary.returned += 1
        summary.returned_fen += p.amount_fen
        notify_payout(conn, p, "returned", diagnosis_of("iso20022_return", code, info), p.amount_fen, now,
                      code=code or "RTRN", message=info)  # the merchant's notice, in this transaction
    for changes in (first, confirm, back, held):
        repo.change_status(conn, changes, now)
    ledger_repo.post(conn, entries, now)
    repo.add_finished_attempts(conn, reports)
    summary.applied += len(returns)
