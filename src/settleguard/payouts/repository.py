"""SQL for payouts, attempts and payout events. Every status change is checked against
the transition table in the UPDATE itself (``WHERE status IN sources(target)``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from settleguard.db import tables as t
from settleguard.payouts.model import PayoutStatus, sources


class ConcurrentChange(RuntimeError):
    """A payout was not in a status from which the requested change is allowed."""


@dataclass(frozen=True)
class DuePayout:
    """A payout ready to send, with the merchant's current bound card.

    Attributes:
        account_id: the active settlement account now (never an older card).
        pan_cipher, pan_nonce, key_version: the encrypted card number.
    """

    id: int
    merchant_id: int
    amount_fen: int
    currency: str
    status: PayoutStatus
    idempotency_key: str
    attempt_count: int
    value_date: date
    account_id: int | None
    holder_name: str | None
    bank_code: str | None
    account_kind: str | None
    pan_cipher: bytes | None
    pan_nonce: bytes | None
    key_version: int | None


def _due_query(statuses: Sequence[PayoutStatus]):  # type: ignore[no-untyped-def]
    p, a = t.payouts, t.settlement_accounts
    return (
        select(p.c.id, p.c.merchant_id, p.c.amount_fen, p.c.currency, p.c.status, p.c.idempotency_key,
               p.c.attempt_count, p.c.value_date, a.c.id.label("account_id"), a.c.holder_name, a.c.bank_code,
               a.c.account_kind, a.c.pan_cipher, a.c.pan_nonce, a.c.key_version)
        .select_from(p.outerjoin(a, and_(a.c.merchant_id == p.c.merchant_id, a.c.status == "active")))
        .where(p.c.status.in_([str(s) for s in statuses]))
        .order_by(p.c.id)
    )


def due(conn: Connection, as_of: date, now: datetime, limit: int) -> list[DuePayout]:
    """Created or retry-scheduled payouts whose value date has come and whose retry time has passed."""
    p = t.payouts
    q = _due_query([PayoutStatus.CREATED, PayoutStatus.RETRY_SCHEDULED, PayoutStatus.RELEASED]).where(
        p.c.value_date <= as_of, or_(p.c.next_attempt_at.is_(None), p.c.next_attempt_at <= now)
    ).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=p, skip_locked=True)
    return [_due(r) for r in conn.execute(q)]


def unresolved(conn: Connection, limit: int, after_id: int = 0) -> list[DuePayout]:
    """Payouts whose outcome is unknown: result_unknown, or submitted by a run that died.

    Single-process use (SQLite) only: with several workers a ``submitted`` payout may be
    one another worker is sending right now; the worker issue adds a staleness bound.
    """
    q = _due_query([PayoutStatus.RESULT_UNKNOWN, PayoutStatus.SUBMITTED, PayoutStatus.INQUIRY]).where(
        t.payouts.c.id > after_id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=t.payouts, skip_locked=True)
    return [_due(r) for r in conn.execute(q)]


def _due(r: object) -> DuePayout:
    m = r._mapping  # type: ignore[attr-defined]
    return DuePayout(
        id=m["id"], merchant_id=m["merchant_id"], amount_fen=m["amount_fen"], currency=m["currency"],
        status=PayoutStatus(m["status"]), idempotency_key=m["idempotency_key"], attempt_count=m["attempt_count"],
        value_date=m["value_date"], account_id=m["account_id"], holder_name=m["holder_name"],
        bank_code=m["bank_code"], account_kind=m["account_kind"], pan_cipher=m["pan_cipher"],
        pan_nonce=m["pan_nonce"], key_version=m["key_version"],
    )


@dataclass(frozen=True)
class StatusChange:
    payout_id: int
    to: PayoutStatus
    reason: str
    values: dict[str, object] | None = None


def change_status(conn: Connection, changes: Sequence[StatusChange], now: datetime) -> None:
    """Apply status changes (each checked against the transition table) and record events."""
    p = t.payouts
    by_target: dict[tuple[PayoutStatus, tuple[str, ...]], list[StatusChange]] = {}
    for c in changes:
        by_target.setdefault((c.to, tuple(sorted((c.values or {}).keys()))), []).append(c)
    for (target, keys), group in by_target.items():
        allowed = [str(s) for s in sources(target)]
        if not allowed:
            raise ConcurrentChange(f"no status may move to {target}")
        current = dict(conn.execute(
            select(p.c.id, p.c.status).where(p.c.id.in_([c.payout_id for c in group]))
        ).all())
        stmt = (
            update(p)
            # OR of equalities, not IN: an expanding IN cannot be used with executemany.
            .where(p.c.id == bindparam("pid"), or_(*(p.c.status == s for s in allowed)))
            .values(status=str(target), updated_at=now, **{k: bindparam(f"v_{k}") for k in keys})
        )
        params = [{"pid": c.payout_id, **{f"v_{k}": v for k, v in (c.values or {}).items()}} for c in group]
        res = conn.execute(stmt, params)
        if res.rowcount != len(group):
            bad = [c.payout_id for c in group if current.get(c.payout_id) not in allowed]
            raise ConcurrentChange(f"payouts {bad[:10]} cannot move to {target} from {[current.get(b) for b in bad[:10]]}")
        conn.execute(insert(t.payout_events), [
            {"payout_id": c.payout_id, "from_status": current[c.payout_id], "to_status": str(target),
             "reason": c.reason[:256], "created_at": now}
            for c in group
        ])


def start_attempts(conn: Connection, rows: Sequence[dict[str, object]]) -> list[int]:
    """Record attempts before anything is sent, so a crash leaves a trace to inquire about."""
    if not rows:
        return []
    return [int(r[0]) for r in conn.execute(
        insert(t.payout_attempts).returning(t.payout_attempts.c.id, sort_by_parameter_order=True), list(rows))]


def finish_attempts(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    a = t.payout_attempts
    conn.execute(
        update(a).where(a.c.id == bindparam("aid")).values(
            responded_at=bindparam("v_responded_at"), outcome=bindparam("v_outcome"), code=bindparam("v_code"),
            message=bindparam("v_message"), raw_response=bindparam("v_raw")),
        list(rows),
    )


def next_attempt_no(conn: Connection, payout_ids: Sequence[int]) -> dict[int, int]:
    a = t.payout_attempts
    got = dict(conn.execute(
        select(a.c.payout_id, func.max(a.c.attempt_no)).where(a.c.payout_id.in_(payout_ids)).group_by(a.c.payout_id)
    ).all())
    return {pid: int(got.get(pid) or 0) + 1 for pid in payout_ids}


def counts_by_status(conn: Connection) -> dict[str, tuple[int, int]]:
    p = t.payouts
    return {s: (int(n), int(a)) for s, n, a in conn.execute(
        select(p.c.status, func.count(), func.coalesce(func.sum(p.c.amount_fen), 0)).group_by(p.c.status))}


def failures_by_reason(conn: Connection) -> list[tuple[str, str, int]]:
    """(code, message, count) of failed or unknown attempts, most frequent first."""
    a = t.payout_attempts
    n = func.count().label("n")
    return [(c or "", m or "", int(k)) for c, m, k in conn.execute(
        select(a.c.code, a.c.message, n).where(a.c.outcome.in_(["failed", "unknown"]))
        .group_by(a.c.code, a.c.message).order_by(n.desc(), a.c.code))]


def merchants_paid(conn: Connection) -> int:
    """How many merchants have at least one succeeded payout."""
    p = t.payouts
    return int(conn.execute(
        select(func.count(func.distinct(p.c.merchant_id))).where(p.c.status == str(PayoutStatus.SUCCEEDED))
    ).scalar_one())
