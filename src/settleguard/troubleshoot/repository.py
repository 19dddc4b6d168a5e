"""The troubleshooter's reads that no other repository has: one merchant's recent payouts (newest first, with
the masked card each went to), its recent failed attempts, its open reconciliation breaks, and its open
troubleshooter case. Read-only; every other fact comes through the owning domain's repository."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from settleguard.db import tables as t

ACTIVE_CASE = ("open", "waiting_bank", "waiting_merchant")


def recent_payouts(conn: Connection, merchant_id: int, *, since: date, statuses: tuple[str, ...] | None,
                   limit: int) -> list[dict[str, Any]]:
    """The merchant's payouts of cycle days since ``since`` (``statuses``: only those), newest first, each with
    the masked number of the card it went to or was held on (``card_masked``) and when it was paid
    (``paid_at``: its latest event into succeeded)."""
    p, a, e = t.payouts, t.settlement_accounts, t.payout_events
    paid = (select(e.c.created_at).where(e.c.payout_id == p.c.id, e.c.to_status == "succeeded")
            .order_by(e.c.id.desc()).limit(1).correlate(p).scalar_subquery())
    q = (select(p.c.id, p.c.status, p.c.amount_fen, p.c.cycle_date, p.c.value_date, p.c.account_id,
                a.c.pan_masked.label("card_masked"), paid.label("paid_at"))
         .select_from(p.outerjoin(a, a.c.id == p.c.account_id))
         .where(p.c.merchant_id == merchant_id, p.c.cycle_date >= since))
    if statuses is not None:
        q = q.where(p.c.status.in_(statuses))
    return [dict(r._mapping) for r in conn.execute(q.order_by(p.c.id.desc()).limit(limit))]


def failed_attempts(conn: Connection, merchant_id: int, *, since: datetime, limit: int) -> list[dict[str, Any]]:
    """The merchant's failed payout attempts answered since ``since``, newest first."""
    a, p = t.payout_attempts, t.payouts
    q = (select(a.c.id, a.c.payout_id, a.c.responded_at, a.c.requested_at, a.c.code, a.c.message, a.c.rule_id,
                a.c.category)
         .select_from(a.join(p, p.c.id == a.c.payout_id))
         .where(p.c.merchant_id == merchant_id, a.c.outcome == "failed",
                or_(a.c.responded_at >= since, and_(a.c.responded_at.is_(None), a.c.requested_at >= since)))
         .order_by(a.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in conn.execute(q)]


def open_breaks(conn: Connection, merchant_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """Open reconciliation breaks (recon_breaks) on the merchant's payouts, newest first."""
    b, p = t.recon_breaks, t.payouts
    q = (select(b.c.id, b.c.type, b.c.amount_fen, b.c.booking_date, b.c.payout_id)
         .select_from(b.join(p, p.c.id == b.c.payout_id))
         .where(p.c.merchant_id == merchant_id, b.c.status == "open").order_by(b.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in conn.execute(q)]


def active_case(conn: Connection, merchant_id: int, title: str) -> int | None:
    """The merchant's case still being worked with exactly this title (one troubleshooter case per symptom)."""
    c = t.cases
    return conn.execute(select(c.c.id).where(c.c.merchant_id == merchant_id, c.c.title == title,
                                             c.c.status.in_(ACTIVE_CASE)).order_by(c.c.id.desc()).limit(1)
                        ).scalar_one_or_none()
