"""Sending payouts safely: record first, send, then apply the outcome.

For each batch: (1) in one transaction, mark the payouts submitted, post
Dr merchant_payable / Cr payout_in_transit for first submissions, and record an attempt
row per payout under its idempotency key; (2) send to the bank channel; (3) in one
transaction, store each answer (code, message, raw response, time) and move the payout
on: succeeded (confirm entry), definite retryable failure (retry later with the same
key), other definite failure (funds held, 挂账), unknown (result_unknown: no resend until
an inquiry says it failed). A process that dies between (1) and (3) leaves payouts in
``submitted``; the next run inquires about them before sending anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, Engine

from settleguard.cards.vault import Vault
from settleguard.channels.base import BankChannel, BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.ledger import model as ledger
from settleguard.ledger import repository as ledger_repo
from settleguard.payouts import repository as repo
from settleguard.payouts.model import MAX_SEND_ATTEMPTS, PayoutStatus, retry_at

Progress = Callable[[int], None]
BATCH = 500


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
    reasons: Counter[str] = field(default_factory=Counter)


def _apply(
    p: repo.DuePayout, outcome: BankOutcome, attempt_no: int, summary: SendSummary,
    changes: list[repo.StatusChange], entries: list[ledger.Entry], now: datetime,
) -> None:
    reason = f"{outcome.code} {outcome.message}".strip()
    if outcome.status is OutcomeStatus.SUCCEEDED:
        changes.append(repo.StatusChange(p.id, PayoutStatus.SUCCEEDED, reason, {"last_code": outcome.code,
                                                                               "last_message": outcome.message}))
        entries.append(ledger.confirm(p.merchant_id, p.id, p.amount_fen))
        summary.succeeded += 1
        summary.succeeded_fen += p.amount_fen
        return
    if outcome.status is OutcomeStatus.UNKNOWN:
        changes.append(repo.StatusChange(p.id, PayoutStatus.RESULT_UNKNOWN, reason,
                                         {"last_code": outcome.code, "last_message": outcome.message}))
        summary.unknown += 1
        summary.reasons[reason] += 1
        return
    summary.reasons[reason] += 1
    changes.append(repo.StatusChange(p.id, PayoutStatus.FAILED, reason,
                                     {"last_code": outcome.code, "last_message": outcome.message}))
    if outcome.retryable and attempt_no < MAX_SEND_ATTEMPTS:
        changes.append(repo.StatusChange(p.id, PayoutStatus.RETRY_SCHEDULED, f"retry #{attempt_no + 1}",
                                         {"next_attempt_at": retry_at(now, attempt_no)}))
        summary.retry_scheduled += 1
    else:
        changes.append(repo.StatusChange(p.id, PayoutStatus.HELD, f"挂账 held: {reason}"))
        entries.append(ledger.hold(p.merchant_id, p.id, p.amount_fen))
        summary.held += 1
        summary.held_fen += p.amount_fen


def _finish(engine: Engine, batch: list[tuple[repo.DuePayout, int, int, BankOutcome]],
            summary: SendSummary, now: datetime) -> None:
    changes: list[repo.StatusChange] = []
    entries: list[ledger.Entry] = []
    attempts: list[dict[str, object]] = []
    for p, attempt_id, attempt_no, outcome in batch:
        attempts.append({"aid": attempt_id, "v_responded_at": now, "v_outcome": str(outcome.status),
                         "v_code": outcome.code[:32], "v_message": outcome.message[:512], "v_raw": outcome.raw})
        _apply(p, outcome, attempt_no, summary, changes, entries, now)
    with engine.begin() as conn:
        repo.finish_attempts(conn, attempts)
        # A payout may take two steps (failed, then held or retry_scheduled): apply the answers first.
        answers = (PayoutStatus.SUCCEEDED, PayoutStatus.FAILED, PayoutStatus.RESULT_UNKNOWN)
        repo.change_status(conn, [c for c in changes if c.to in answers], now)
        repo.change_status(conn, [c for c in changes if c.to not in answers], now)
        ledger_repo.post(conn, entries, now)


def inquire_unresolved(engine: Engine, channel: BankChannel, now: datetime, summary: SendSummary) -> None:
    """Ask the bank once about every payout whose outcome is not known, before any resend.

    Each payout is asked about at most once per run (pages move forward by id): a bank
    that keeps answering "unknown" leaves the payout in result_unknown for the next run
    instead of being asked again and again.
    """
    after_id = 0
    while True:
        with engine.begin() as conn:
            rows = repo.unresolved(conn, BATCH, after_id=after_id)
            if not rows:
                return
            after_id = rows[-1].id
            to_inquiry = [p for p in rows if p.status is not PayoutStatus.INQUIRY]
            # submitted (a run died mid-flight) -> result_unknown -> inquiry
            repo.change_status(conn, [repo.StatusChange(p.id, PayoutStatus.RESULT_UNKNOWN, "outcome not recorded; "
                                                        "inquire before resending")
                                      for p in to_inquiry if p.status is PayoutStatus.SUBMITTED], now)
            repo.change_status(conn, [repo.StatusChange(p.id, PayoutStatus.INQUIRY, "status inquiry 状态查询")
                                      for p in to_inquiry], now)
            numbers = repo.next_attempt_no(conn, [p.id for p in rows])
            attempt_ids = repo.start_attempts(conn, [
                {"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "inquiry",
                 "idempotency_key": p.idempotency_key, "channel": channel.name, "account_id": p.account_id,
                 "amount_fen": p.amount_fen, "requested_at": now}
                for p in rows
            ])
        batch = []
        for p, aid in zip(rows, attempt_ids, strict=True):
            outcome = channel.inquire(p.idempotency_key)
            batch.append((p, aid, p.attempt_count, outcome))
            summary.inquired += 1
        _finish(engine, batch, summary, now)


def send_due(
    engine: Engine,
    channel: BankChannel,
    vault: Vault,
    *,
    as_of: date,
    now: datetime,
    progress: Progress | None = None,
) -> SendSummary:
    """Inquire about unresolved payouts, then send every payout due on ``as_of``."""
    summary = SendSummary()
    inquire_unresolved(engine, channel, now, summary)
    while True:
        with engine.begin() as conn:
            rows = repo.due(conn, as_of, now, BATCH)
            if not rows:
                break
            sendable = [p for p in rows if p.account_id is not None]
            no_card = [p for p in rows if p.account_id is None]
            numbers = repo.next_attempt_no(conn, [p.id for p in sendable])
            repo.change_status(conn, [
                repo.StatusChange(p.id, PayoutStatus.SUBMITTED, f"attempt {p.attempt_count + 1} via {channel.name}",
                                  {"attempt_count": p.attempt_count + 1, "account_id": p.account_id,
                                   "next_attempt_at": None})
                for p in sendable
            ], now)
            ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                                    for p in sendable if p.status is PayoutStatus.CREATED], now)
            attempt_ids = repo.start_attempts(conn, [
                {"payout_id": p.id, "attempt_no": numbers[p.id], "kind": "send",
                 "idempotency_key": p.idempotency_key, "channel": channel.name, "account_id": p.account_id,
                 "amount_fen": p.amount_fen, "requested_at": now}
                for p in sendable
            ])
            if no_card:
                # No usable card: hold right away (created -> submitted is skipped; nothing is sent).
                _hold_without_card(conn, no_card, now, summary)
        batch = []
        for p, aid in zip(sendable, attempt_ids, strict=True):
            assert p.pan_cipher is not None
            assert p.pan_nonce is not None
            assert p.key_version is not None
            instruction = PayoutInstruction(
                idempotency_key=p.idempotency_key, amount_fen=p.amount_fen, currency=p.currency,
                creditor_name=p.holder_name or "", account_number=vault.open(p.pan_cipher, p.pan_nonce, p.key_version),
                bank_code=p.bank_code or "", account_kind=p.account_kind or "personal", value_date=p.value_date,
            )
            batch.append((p, aid, p.attempt_count + 1, channel.send(instruction)))
            summary.sent += 1
        _finish(engine, batch, summary, now)
        if progress:
            progress(len(rows))
    return summary


def _hold_without_card(conn: Connection, rows: list[repo.DuePayout], now: datetime, summary: SendSummary) -> None:
    """A payout whose merchant has no usable card cannot be sent: hold its funds (挂账)."""
    reason = "未发送：无可用结算卡 not sent: no usable settlement card"
    for target in (PayoutStatus.SUBMITTED, PayoutStatus.FAILED, PayoutStatus.HELD):
        repo.change_status(conn, [repo.StatusChange(p.id, target, reason) for p in rows], now)
    ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                            for p in rows if p.status is PayoutStatus.CREATED]
                     + [ledger.hold(p.merchant_id, p.id, p.amount_fen) for p in rows], now)
    summary.held += len(rows)
    summary.held_fen += sum(p.amount_fen for p in rows)
    summary.reasons[reason] += len(rows)
