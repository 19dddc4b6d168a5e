"""Sending payouts safely: record first, send, then apply the diagnosed outcome.

For each batch: (1) in one transaction, claim the payouts (submitted), post
Dr merchant_payable / Cr payout_in_transit for first submissions, and record an attempt
row per payout under the current instruction's key; (2) send to the bank channel; (3) in one
transaction, store each answer (code, message, raw response, diagnosis) and move the payout on
as payouts.policy plans it: succeeded (confirm entry), result_unknown (inquire, never resend
first), retry_scheduled (backoff with jitter, same key), held (挂账, hold entry), needs_review,
or split into parts within the channel's single-payment limit. A process that dies between (1)
and (3) leaves payouts in ``submitted``; a later run inquires about them before sending anything.

Per bank, a circuit breaker (payouts.circuit) stops sending to a bank whose system keeps
failing and probes it with one payout after a cool-down.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine

from settleguard.cards import repository as card_repo
from settleguard.cards.service import (
    CARD_FAILURES,
    CardFailure,
    mark_failed_card,
    status_text,
    unusable_reasons,
)
from settleguard.cards.vault import Vault, VaultError
from settleguard.channels.base import (
    BankChannel,
    BankOutcome,
    OutcomeStatus,
    PaymentLimits,
    PayoutInstruction,
)
from settleguard.diagnosis import UnknownScheme, classify
from settleguard.ledger import model as ledger
from settleguard.ledger import repository as ledger_repo
from settleguard.masking import bounded, mask_card_numbers
from settleguard.notify.outbox import PayoutLike, PayoutNotice, answer_notice, diagnosis_of, notify_payouts
from settleguard.payouts import repository as repo
from settleguard.payouts.circuit import BreakerPolicy, Circuit, CircuitState
from settleguard.payouts.merchant_holds import hold_frozen
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.policy import DEFAULT_POLICY, Action, Plan, RetryPolicy, plan

LOG = logging.getLogger(__name__)
Progress = Callable[[int], None]
BATCH = 500
S = PayoutStatus
LATE = "late"  # attempts.decision of an answer that came after the payout had moved on
NOT_SENT = "未发送"  # how the reason of a hold without a send begins (payouts.details reads it)
NO_CARD = f"{NOT_SENT}：无可用结算卡 not sent: no usable settlement card"


@dataclass
class SendSummary:
    sent: int = 0
    inquired: int = 0
    succeeded: int = 0
    succeeded_fen: int = 0
    held: int = 0
    held_fen: int = 0
    retry_scheduled: int = 0
    unknown: int = 0
    needs_review: int = 0
    split: int = 0
    skipped_banks: set[str] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Options:
    """How a run behaves.

    Attributes:
        retry: backoff and attempt limits.
        breaker: circuit-breaker thresholds.
        stale_after: with several workers (PostgreSQL), a payout left ``submitted`` or in
            ``inquiry`` is taken for a dead worker's only after this long; ``None`` = at once
            (a single process, e.g. on SQLite).
        file_answer_due_business_days: a payout sent in a file without a final answer this many business
            days later is flagged (cases.overdue).
    """

    retry: RetryPolicy = DEFAULT_POLICY
    breaker: BreakerPolicy = BreakerPolicy()
    stale_after: timedelta | None = None
    file_answer_due_business_days: int = 2


DEFAULT_OPTIONS = Options()


class Answered(PayoutLike, Protocol):
    """An answered payout, as a notice needs it (repo.DuePayout, report_repository.Target)."""

    @property
    def amount_fen(self) -> int: ...


@dataclass(frozen=True)
class Answer:
    payout: repo.DuePayout
    attempt_id: int
    attempt_no: int  # sends of the current instruction, this one included (inquiries: unchanged)
    outcome: BankOutcome
    inquiry: bool
    bank_code: str | None


def diagnose(outcome: BankOutcome) -> tuple[str, str | None]:
    """(category, rule id) of a bank's answer; a success is not diagnosed."""
    if outcome.status is OutcomeStatus.SUCCEEDED:
        return "succeeded", None
    try:
        d = classify(outcome.scheme, outcome.code or None, outcome.message or None)
    except UnknownScheme:
        d = classify(None, outcome.code or None, outcome.message or None)
    if outcome.status is OutcomeStatus.UNKNOWN and d.category.value not in ("result_unknown", "duplicate"):
        return "result_unknown", d.rule
    return d.category.value, d.rule


def _plan(a: Answer, category: str, single_limit: int | None, now: datetime, opts: Options) -> Plan:
    return plan(succeeded=a.outcome.status is OutcomeStatus.SUCCEEDED,
                unknown=a.outcome.status is OutcomeStatus.UNKNOWN, category=category, attempt=a.attempt_no,
                amount_fen=a.payout.amount_fen, single_limit_fen=single_limit, key=a.payout.key, now=now,
                inquiry=a.inquiry, resend_safe=a.outcome.status is OutcomeStatus.FAILED and a.outcome.retryable,
                policy=opts.retry)


def _single_limit(channel: BankChannel, p: repo.DuePayout) -> int | None:
    """The channel's single-payment limit for this payout's card, if the channel knows it."""
    if not isinstance(channel, PaymentLimits):
        return None
    limit = channel.payment_limit_fen(p.account_kind or "personal")
    return int(limit) if limit is not None else None


@dataclass
class _Batch:
    changes: list[repo.StatusChange] = field(default_factory=list)
    follow: list[repo.StatusChange] = field(default_factory=list)
    entries: list[ledger.Entry] = field(default_factory=list)
    attempts: list[repo.AttemptAnswer] = field(default_factory=list)
    splits: list[tuple[repo.DuePayout, tuple[int, ...]]] = field(default_factory=list)
    alerts: list[repo.Alert] = field(default_factory=list)
    faults: list[tuple[str, int, bool]] = field(default_factory=list)
    notices: list[tuple[Answer, Plan]] = field(default_factory=list)  # merchant notices (notify.outbox)


def _apply(a: Answer, pl: Plan, b: _Batch, s: SendSummary, now: datetime) -> None:
    p, o = a.payout, a.outcome
    reason = f"{o.code} {o.message}".strip() or str(o.status)
    last: dict[str, object] = {"last_code": o.code[:32], "last_message": o.message[:512], "category": pl.category[:32]}
    if pl.action is Action.CONFIRM:
        b.changes.append(repo.StatusChange(p.id, S.SUCCEEDED, reason, {"last_code": o.code[:32],
                                                                        "last_message": o.message[:512]}))
        b.entries.append(ledger.confirm(p.merchant_id, p.id, p.amount_fen))
        s.succeeded += 1
        s.succeeded_fen += p.amount_fen
        return
    s.reasons[reason] += 1
    s.categories[pl.category] += 1
    if pl.action is Action.INQUIRE:
        if p.status is not S.RESULT_UNKNOWN:
            b.changes.append(repo.StatusChange(p.id, S.RESULT_UNKNOWN, f"{reason} · 先查询 inquire first", last))
        s.unknown += 1
        return
    b.changes.append(repo.StatusChange(p.id, S.FAILED, reason, last))
    if pl.action is Action.RETRY:
        b.follow.append(repo.StatusChange(p.id, S.RETRY_SCHEDULED, f"重试 retry #{a.attempt_no + 1} ({pl.category})",
                                          {"next_attempt_at": pl.next_attempt_at}))
        s.retry_scheduled += 1
        if pl.alert == "treasury":
            day = (pl.alert_day or now.date()).isoformat()  # the banks' local day
            b.alerts.append(repo.Alert("insufficient_funds", f"insufficient_funds:{day}",
                             f"备付金/出款账户余额不足，请财务补足资金后系统将自动重试。Payout account short of funds "
                             f"({reason}); fund it and payouts are retried automatically.", a.bank_code))
        elif pl.alert == "ops":
            b.alerts.append(repo.Alert("verification_failed", f"verification_failed:{a.bank_code}:{(pl.alert_day or now.date()).isoformat()}",
                             f"通道签到或验证失败：{reason}，请检查密钥与证书后重新签到。Channel sign-in or verification "
                             f"failed: {reason}; check keys and certificates and sign in again.", a.bank_code))
    elif pl.action is Action.HOLD:
        b.follow.append(repo.StatusChange(p.id, S.HELD, f"挂账 held ({pl.category}): {reason}"))
        b.entries.append(ledger.hold(p.merchant_id, p.id, p.amount_fen))
        s.held += 1
        s.held_fen += p.amount_fen
    elif pl.action is Action.SPLIT:
        b.follow.append(repo.StatusChange(p.id, S.SPLIT, f"拆分为 {len(pl.parts)} 笔 split into {len(pl.parts)} parts"))
        b.splits.append((p, pl.parts))
        s.split += 1
    else:
        why = "重试次数用尽 attempts exhausted" if pl.exhausted else "需人工复核 needs review"
        b.follow.append(repo.StatusChange(p.id, S.NEEDS_REVIEW, f"{why} ({pl.category}): {reason}"))
        s.needs_review += 1


def _finish(engine: Engine, channel: BankChannel, answers: Sequence[Answer], s: SendSummary, now: datetime,
            opts: Options) -> set[str]:
    """Store the answers and apply their plans in one transaction; returns banks whose circuit opened."""
    with engine.begin() as conn:
        return apply_answers(conn, answers, s, now, opts, lambda p: _single_limit(channel, p))


def apply_answers(conn: Connection, answers: Sequence[Answer], s: SendSummary, now: datetime, opts: Options,
                  single_limit: Callable[[repo.DuePayout], int | None]) -> set[str]:
    """Diagnose each answer, store it on its attempt (``attempt_id`` 0: a new attempt row of kind
    "report", for answers that came in a bank's file), and move each payout on as planned."""
    b = _Batch()
    reports: list[dict[str, object]] = []
    report_payouts = [a.payout.id for a in answers if a.attempt_id == 0]
    numbers = repo.next_attempt_no(conn, report_payouts) if report_payouts else {}
    current = repo.statuses(conn, [a.payout.id for a in answers]) if answers else {}
    for a in answers:
        category, rule = diagnose(a.outcome)
        pl = _plan(a, category, single_limit(a.payout), now, opts)
        late = current.get(a.payout.id) is not a.payout.status
        result = repo.AttemptAnswer(
            attempt_id=a.attempt_id, responded_at=now, outcome=str(a.outcome.status), code=a.outcome.code[:32],
            message=a.outcome.message[:512], raw=a.outcome.raw,
            category=None if category == "succeeded" else category, rule=rule,
            decision=LATE if late else str(pl.action))
        if late:
            # The payout moved on while we waited for the bank (a status report came in, or another
            # worker took it for abandoned): record the answer, change nothing, and tell operations
            # if it says the money moved.
            if a.attempt_id:
                b.attempts.append(result)
            if a.outcome.status is OutcomeStatus.SUCCEEDED and current.get(a.payout.id) not in (S.SUCCEEDED,
                                                                                                   S.RETURNED):
                b.alerts.append(repo.Alert("late_answer", f"late_answer:{a.payout.id}:{a.attempt_id}:{a.payout.key}",
                                 f"出款 {a.payout.id}（{a.payout.key}）的银行应答迟到：银行称已付款，但出款已变为 "
                                 f"{current.get(a.payout.id)}，请人工核对。Payout {a.payout.id} ({a.payout.key}): a late "
                                 f"answer says paid while the payout is now {current.get(a.payout.id)}; check by hand.",
                                 a.bank_code))
            continue
        if a.attempt_id:
            b.attempts.append(result)
        else:
            reports.append({"payout_id": a.payout.id, "attempt_no": numbers[a.payout.id], "kind": "report",
                            "idempotency_key": a.payout.key, "channel": "report", "account_id": a.payout.account_id,
                            "amount_fen": a.payout.amount_fen, "requested_at": now, "responded_at": now,
                            "outcome": result.outcome, "code": result.code, "message": result.message,
                            "raw_response": result.raw, "category": result.category,
                            "rule_id": rule, "decision": result.decision})
            numbers[a.payout.id] += 1
        _apply(a, pl, b, s, now)
        b.notices.append((a, pl))
        if a.bank_code and not a.inquiry:
            fault = a.outcome.status is OutcomeStatus.UNKNOWN or category == "system_or_network_fault"
            b.faults.append((a.bank_code, a.payout.id, fault))
    repo.finish_attempts(conn, b.attempts)
    repo.add_finished_attempts(conn, reports)
    repo.change_status(conn, b.changes, now)
    repo.change_status(conn, b.follow, now)
    for parent, parts in b.splits:
        repo.create_parts(conn, parent, parts, now)
    ledger_repo.post(conn, b.entries, now)
    for alert in dict.fromkeys(b.alerts):  # once per alert, not once per payout
        repo.add_alert(conn, alert.kind, alert.key, alert.message, now, alert.bank_code)
    # held / paid after a hold: the merchants' notices, and the cards of permanent card answers, in this
    # same transaction
    answer_notices(conn, [(a.payout, a.outcome, pl) for a, pl in b.notices], now, tz=opts.retry.timezone)
    return _record_circuits(conn, b.faults, now, opts)


def answer_notices(conn: Connection, answered: Sequence[tuple[Answered, BankOutcome, Plan]],
                   now: datetime, *, tz: str) -> None:
    """The merchants' notices of answered payouts (notify.outbox.answer_notice), in the caller's transaction.

    A permanent card answer (a hold for card_info_error or card_status_abnormal: closed, lost, stolen,
    frozen, name mismatch, invalid account) marks the card the payout went to unusable (cards.service.
    mark_failed_card), so that no later payout is sent to it; the merchant is told once, by the hold notice
    of the payout that found it: a card hold on a card already unusable is not told again."""
    card_holds = [p.id for p, o, pl in answered if pl.action is Action.HOLD and pl.category in CARD_FAILURES
                  and o.status is OutcomeStatus.FAILED]
    went_to = repo.held_on(conn, card_holds)
    notices: list[PayoutNotice] = []
    for p, o, pl in answered:
        account_id = went_to.get(p.id)
        if account_id is not None:
            account = card_repo.account_by_id(conn, account_id)
            if account is not None and account.status == "unusable":
                continue  # told when the card was marked
            d = diagnosis_of(o.scheme, o.code, o.message)
            mark_failed_card(conn, CardFailure(account_id, p.id, pl.category, o.scheme, o.code, o.message, d.rule,
                                               d.meaning_zh, d.meaning_en), now=now)
        told = answer_notice(p, str(pl.action), pl.category, o.scheme, o.code, o.message, p.amount_fen)
        if told is not None:
            notices.append(told)
    notify_payouts(conn, notices, now, tz=tz)


def _record_circuits(conn: Connection, faults: Sequence[tuple[str, int, bool]], now: datetime,
                     opts: Options) -> set[str]:
    if not faults:
        return set()
    banks = sorted({bank for bank, _, _ in faults})
    current = repo.circuits(conn, banks, lock=True)
    changed: dict[str, Circuit] = {}
    for bank, payout_id, fault in faults:
        before = changed.get(bank) or current.get(bank) or Circuit(bank)
        after = before.record(payout_id, fault, now, opts.breaker)
        if after != before:
            changed[bank] = after
    repo.save_circuits(conn, list(changed.values()), now)
    opened = {b for b, c in changed.items() if c.state is CircuitState.OPEN}
    for bank in opened:
        repo.add_alert(conn, "circuit_open", f"circuit_open:{bank}:{now.isoformat(timespec='minutes')}",
                       f"银行 {bank} 系统故障频发，已暂停向其出款，冷却后将试探恢复。Bank {bank} keeps failing; payouts "
                       f"to it are paused and will be probed after the cool-down.", now, bank)
    return opened


def inquire_unresolved(engine: Engine, channel: BankChannel, now: datetime, summary: SendSummary,
                       opts: Options = DEFAULT_OPTIONS) -> None:
    """Ask the bank once about every payout whose outcome is not known, before any resend.

    Each payout is asked about at most once per run (pages move forward by id): a bank that
    keeps answering "unknown" leaves the payout in result_unknown for the next run.
    """
    after_id = 0
    stale_before = None if opts.stale_after is None else now - opts.stale_after
    while True:
        with engine.begin() as conn:
            rows = repo.unresolved(conn, BATCH, after_id=after_id, stale_before=stale_before)
            if not rows:
                return
            after_id = rows[-1].id
            to_inquiry = [p for p in rows if p.status is not S.INQUIRY]
            # submitted (a run died mid-flight) -> result_unknown -> inquiry
            repo.change_status(conn, [repo.StatusChange(p.id, S.RESULT_UNKNOWN, "outcome not recorded; "
                                                        "inquire before resending") for p in to_inquiry
                                      if p.status is S.SUBMITTED], now)
            repo.change_status(conn, [repo.StatusChange(p.id, S.INQUIRY, "status inquiry 状态查询")
                                      for p in to_inquiry], now)
            numbers = repo.next_attempt_no(conn, [p.id for p in rows])
            attempt_ids = repo.start_attempts(conn, [
                {"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "inquiry", "idempotency_key": p.key,
                 "channel": channel.name, "account_id": p.account_id, "amount_fen": p.amount_fen, "requested_at": now}
                for p in rows
            ])
        rows = [_as_status(p, S.INQUIRY) for p in rows]
        answers = []
        for p, aid in zip(rows, attempt_ids, strict=True):
            answers.append(Answer(p, aid, p.attempt_count, channel.inquire(p.key), True, p.bank_code))
            summary.inquired += 1
        _finish(engine, channel, answers, summary, now, opts)


def _as_status(p: repo.DuePayout, status: PayoutStatus) -> repo.DuePayout:
    from dataclasses import replace
    return replace(p, status=status)


def _blocked_banks(engine: Engine, now: datetime, opts: Options) -> tuple[set[str], list[str]]:
    """(banks not to send to now, banks whose cool-down is over and may take one probe)."""
    with engine.connect() as conn:
        cs = repo.circuits(conn)
    blocked = {b for b, c in cs.items() if c.state is not CircuitState.CLOSED}
    probes = [b for b, c in cs.items() if c.allows(now, opts.breaker) == 1]
    return blocked, probes


def send_due(
    engine: Engine,
    channel: BankChannel,
    vault: Vault,
    *,
    as_of: date,
    now: datetime,
    progress: Progress | None = None,
    opts: Options = DEFAULT_OPTIONS,
) -> SendSummary:
    """Inquire about unresolved payouts, then send every payout due on ``as_of``."""
    summary = SendSummary()
    inquire_unresolved(engine, channel, now, summary, opts)
    blocked, probes = _blocked_banks(engine, now, opts)
    for bank in probes:  # one payout alone to a bank whose cool-down is over
        _send_batch(engine, channel, vault, as_of, now, summary, opts, only_bank=bank, blocked=blocked)
    while True:
        n = _send_batch(engine, channel, vault, as_of, now, summary, opts, blocked=blocked)
        if n == 0:
            break
        if progress:
            progress(n)
    summary.skipped_banks |= blocked
    return summary


def _send_batch(engine: Engine, channel: BankChannel, vault: Vault, as_of: date, now: datetime,
                summary: SendSummary, opts: Options, *, blocked: set[str], only_bank: str | None = None) -> int:
    with engine.begin() as conn:
        if only_bank is not None:
            circuit = repo.circuits(conn, [only_bank], lock=True).get(only_bank)
            if circuit is None or circuit.allows(now, opts.breaker) != 1:
                return 0  # another worker took the probe
            rows = repo.due(conn, as_of, now, 1, only_bank=only_bank)
            if rows:
                repo.save_circuits(conn, [circuit.probe(rows[0].id, now)], now)
        else:
            rows = repo.due(conn, as_of, now, BATCH, exclude_banks=sorted(blocked))
        if not rows:
            return 0
        to_send = hold_frozen(conn, rows, now, summary)  # a frozen merchant's: held, not sent (payouts.merchant_holds)
        sendable = [p for p in to_send if p.account_id is not None]
        no_card = [p for p in to_send if p.account_id is None]
        # Open the card numbers before claiming: a card this key cannot open is not sent (needs review).
        sendable, pans = open_cards(conn, vault, sendable, now, summary)
        numbers = repo.next_attempt_no(conn, [p.id for p in sendable])
        repo.change_status(conn, [
            repo.StatusChange(p.id, S.SUBMITTED, f"attempt {p.attempt_count + 1} via {channel.name}",
                              {"attempt_count": p.attempt_count + 1, "account_id": p.account_id,
                               "next_attempt_at": None})
            for p in sendable
        ], now)
        ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                                for p in sendable if p.status is S.CREATED and p.parent_id is None], now)
        attempt_ids = repo.start_attempts(conn, [
            {"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "send", "idempotency_key": p.key,
             "channel": channel.name, "account_id": p.account_id, "amount_fen": p.amount_fen, "requested_at": now}
            for p in sendable
        ])
        if no_card:
            hold_without_card(conn, no_card, now, summary, tz=opts.retry.timezone)
    answers = []
    for p, aid in zip(sendable, attempt_ids, strict=True):
        instruction = PayoutInstruction(
            idempotency_key=p.key, amount_fen=p.amount_fen, currency=p.currency,
            creditor_name=p.holder_name or "", account_number=pans.pop(p.id),
            bank_code=p.bank_code or "", account_kind=p.account_kind or "personal", value_date=p.value_date,
        )
        answers.append(Answer(_as_status(p, S.SUBMITTED), aid, p.attempt_count + 1, _send_one(channel, instruction),
                              False, p.bank_code))
        summary.sent += 1
    blocked |= _finish(engine, channel, answers, summary, now, opts)
    return len(rows)


SEND_ERROR = "SEND_ERROR"  # BankOutcome.code of a send that raised: result unknown, inquire first


def _send_one(channel: BankChannel, instruction: PayoutInstruction) -> BankOutcome:
    """``channel.send``; an unexpected exception is a result unknown (the request may have left), like a
    timeout: recorded on this payout and inquired about, never resent blindly, and the batch goes on."""
    try:
        return channel.send(instruction)
    except Exception as exc:  # a channel must not raise; one that does must not stop the other payouts
        detail = bounded(mask_card_numbers(f"{type(exc).__name__}: {exc}"))
        LOG.exception("出款发送异常，结果未明，将先查询 unexpected error sending payout %s; result unknown, inquiring "
                      "first", instruction.idempotency_key)
        return BankOutcome(OutcomeStatus.UNKNOWN, SEND_ERROR,
                           f"发送时出现意外错误，结果未明，先查询 unexpected error while sending, result unknown, "
                           f"inquire first: {detail}", detail)


UNREADABLE = "未发送：卡号无法用当前密钥解密，需人工复核 not sent: the card number does not decrypt with this key; review"


def open_cards(conn: Connection, vault: Vault, rows: list[repo.DuePayout], now: datetime,
                summary: SendSummary) -> tuple[list[repo.DuePayout], dict[int, str]]:
    """Decrypt each payout's card number before the claim: (the payouts that can be sent, their numbers).

    A payout whose card does not decrypt is moved to needs_review with the reason, in ``conn``'s
    transaction, without an attempt and without counting a send (it never reached the bank); an
    alert tells operations once a day."""
    pans: dict[int, str] = {}
    bad: list[tuple[repo.DuePayout, str]] = []
    for p in rows:
        try:
            if p.pan_cipher is None or p.pan_nonce is None or p.key_version is None:
                raise VaultError("no sealed card number")
            pans[p.id] = vault.open(p.pan_cipher, p.pan_nonce, p.key_version)
        except VaultError as exc:
            bad.append((p, f"{UNREADABLE} (账户 account #{p.account_id}, 密钥版本 key version {p.key_version}: {exc})"))
    if not bad:
        return rows, pans
    for target in (S.SUBMITTED, S.FAILED, S.NEEDS_REVIEW):  # the transition table's only way; attempt_count unchanged
        repo.change_status(conn, [repo.StatusChange(p.id, target, why) for p, why in bad], now)
    ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                            for p, _ in bad if p.status is S.CREATED and p.parent_id is None], now)
    repo.add_alert(conn, "card_key", f"card_key:{now.date().isoformat()}",
                   f"{len(bad)} 笔出款的卡号无法用当前密钥解密，已转人工复核（出款 {', '.join(str(p.id) for p, _ in bad[:10])}"
                   f"{' …' if len(bad) > 10 else ''}）：请核对卡号密钥（settleguard keys）。{len(bad)} payout(s) whose card "
                   f"number does not decrypt with this key were moved to needs review; check the card key.", now)
    summary.needs_review += len(bad)
    summary.reasons[UNREADABLE] += len(bad)
    failed = {p.id for p, _ in bad}
    return [p for p in rows if p.id not in failed], pans


def hold_without_card(conn: Connection, rows: list[repo.DuePayout], now: datetime, summary: SendSummary, *,
                      tz: str) -> None:
    """A payout whose merchant has no usable card cannot be sent: hold its funds (挂账) without calling the bank.

    When the merchant's newest card was marked unusable with a reason (a bank said it is closed, lost,
    frozen, not in the holder's name, ...: a payout's answer or a status inquiry), the payout is held for
    that reason (its category, the bank's code and message) on that card, and the merchant, told when the
    card was marked, is not told again. Otherwise (no card bound) it is held as card_info_error "no usable
    card" and the merchant is told. Either way it is a card hold, released when a card is bound
    (payouts.release); it keeps no next-attempt time.
    """
    cards = unusable_reasons(conn, sorted({p.merchant_id for p in rows}))
    changes: dict[PayoutStatus, list[repo.StatusChange]] = {S.SUBMITTED: [], S.FAILED: [], S.HELD: []}
    untold: list[repo.DuePayout] = []
    for p in rows:
        account, payload = cards.get(p.merchant_id, (None, None))
        values: dict[str, object]
        if account is not None and payload is not None:
            zh, en = status_text(account.card_status)
            category = str(payload.get("category") or "card_status_abnormal")
            code, message = str(payload.get("answer_code") or ""), str(payload.get("answer_message") or "")
            reason = (f"{NOT_SENT}：结算卡 {account.pan_masked} 不可用（{zh}） not sent: card {account.pan_masked} is "
                      f"unusable ({en})")
            told = f"{NOT_SENT}：结算卡不可用（{zh}） not sent: the card is unusable ({en})"
            values = {"category": category[:32], "account_id": account.id, "last_code": code[:32] or None,
                      "last_message": message[:512] or None, "next_attempt_at": None}
        else:
            category, reason = "card_info_error", NO_CARD
            told = reason
            values = {"category": category, "last_code": None, "last_message": reason, "next_attempt_at": None}
            untold.append(p)
        for target, group in changes.items():
            group.append(repo.StatusChange(p.id, target, reason, values if target is S.HELD else None))
        summary.reasons[told] += 1
        summary.categories[category] += 1
    for group in changes.values():
        repo.change_status(conn, group, now)
    ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                            for p in rows if p.status is S.CREATED and p.parent_id is None]
                     + [ledger.hold(p.merchant_id, p.id, p.amount_fen) for p in rows], now)
    summary.held += len(rows)
    summary.held_fen += sum(p.amount_fen for p in rows)
    # the merchants' notices (notify.outbox), in the caller's transaction: only those not told about their card
    notify_payouts(conn, [PayoutNotice(p, "no_card", None, p.amount_fen) for p in untold], now, tz=tz)
