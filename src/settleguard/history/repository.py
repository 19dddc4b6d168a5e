"""All SQL of the history review: one GROUP BY over a merchant's transactions (the cycle days of the range, on
the clustered key), the finished send attempts and holds of a window, the risk scores, and the sends of all
merchants for the trends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, inspect, select

from settleguard.db import tables as t


def merchant(conn: Connection, merchant_no: str | None = None, merchant_id: int | None = None) -> dict[str, Any] | None:
    m = t.merchants
    q = select(m.c.id, m.c.merchant_no, m.c.registered_name)
    q = q.where(m.c.merchant_no == merchant_no) if merchant_no is not None else q.where(m.c.id == merchant_id)
    row = conn.execute(q).first()
    return None if row is None else {"id": int(row.id), "merchant_no": str(row.merchant_no),
                                     "name": str(row.registered_name)}


def daily_transactions(conn: Connection, merchant_id: int, start: date,
                       end: date) -> list[tuple[date, int, int, int, int]]:
    """(cycle day, kind, count, amount fen, fee fen) per day and kind."""
    x = t.transactions
    q = (select(x.c.cycle_date, x.c.kind, func.count(), func.coalesce(func.sum(x.c.amount_fen), 0),
                func.coalesce(func.sum(x.c.fee_fen), 0))
         .where(x.c.cycle_date >= start, x.c.cycle_date <= end, x.c.merchant_id == merchant_id)
         .group_by(x.c.cycle_date, x.c.kind).order_by(x.c.cycle_date, x.c.kind))
    return [(_day(d), int(k), int(n), int(fen), int(fee)) for d, k, n, fen, fee in conn.execute(q)]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _finished(since: datetime, until: datetime) -> Any:
    a = t.payout_attempts
    return and_(a.c.kind == "send", a.c.requested_at >= since, a.c.requested_at < until,
                a.c.outcome.in_(["succeeded", "failed"]))


def merchant_attempts(conn: Connection, merchant_id: int, since: datetime,
                      until: datetime) -> list[tuple[datetime, str, str | None]]:
    """(requested at, outcome, category) of the merchant's finished sends (split parts included)."""
    a, p = t.payout_attempts, t.payouts
    q = (select(a.c.requested_at, a.c.outcome, a.c.category).select_from(a.join(p, p.c.id == a.c.payout_id))
         .where(p.c.merchant_id == merchant_id, _finished(since, until)))
    return [(r.requested_at, str(r.outcome), r.category) for r in conn.execute(q)]


def merchant_holds(conn: Connection, merchant_id: int, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """(when, amount fen) of each time one of the merchant's payouts was put on hold (挂账)."""
    e, p = t.payout_events, t.payouts
    q = (select(e.c.created_at, p.c.amount_fen).select_from(e.join(p, p.c.id == e.c.payout_id))
         .where(p.c.merchant_id == merchant_id, e.c.to_status == "held", e.c.created_at >= since,
                e.c.created_at < until))
    return [(r.created_at, int(r.amount_fen)) for r in conn.execute(q)]


def has_risk_tables(conn: Connection) -> bool:
    return bool(inspect(conn).has_table("risk_scores"))


def merchant_risk(conn: Connection, merchant_id: int, start: date, end: date) -> list[tuple[date, int, str]]:
    r = t.risk_scores
    q = (select(r.c.cycle_date, r.c.score, r.c.rules)
         .where(r.c.merchant_id == merchant_id, r.c.cycle_date >= start, r.c.cycle_date <= end))
    return [(_day(d), int(s), str(rules)) for d, s, rules in conn.execute(q)]


def all_attempts(conn: Connection, since: datetime, until: datetime,
                 bank_code: str | None = None) -> Iterator[tuple[datetime, str, str | None, str | None, str | None]]:
    """(requested at, outcome, category, bank code, bank name) of every finished send of the window, streamed."""
    a, s = t.payout_attempts, t.settlement_accounts
    q = (select(a.c.requested_at, a.c.outcome, a.c.category, s.c.bank_code, s.c.bank_name)
         .select_from(a.outerjoin(s, s.c.id == a.c.account_id)).where(_finished(since, until)))
    if bank_code:
        q = q.where(s.c.bank_code == bank_code)
    for r in conn.execution_options(yield_per=10_000).execute(q):
        yield r.requested_at, str(r.outcome), r.category, r.bank_code, r.bank_name
