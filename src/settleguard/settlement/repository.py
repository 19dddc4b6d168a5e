"""SQL reads of settlements (one row per merchant and settled cycle, written by settlement.engine) for
people: a filtered, paginated listing and one settlement with the payouts it created."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, func, select

from settleguard.db import tables as t


def _filtered(q: Select[Any], merchant_id: int | None, cycle_from: date | None, cycle_to: date | None) -> Select[Any]:
    s = t.settlements
    if merchant_id is not None:
        q = q.where(s.c.merchant_id == merchant_id)
    if cycle_from is not None:
        q = q.where(s.c.cycle_date >= cycle_from)
    if cycle_to is not None:
        q = q.where(s.c.cycle_date <= cycle_to)
    return q


def _columns() -> Select[Any]:
    s, m = t.settlements, t.merchants
    return (select(s.c.id, s.c.run_id, s.c.merchant_id, m.c.merchant_no, m.c.registered_name, s.c.cycle_date,
                   s.c.cycle, s.c.value_date, s.c.txn_count, s.c.sale_fen, s.c.void_fen, s.c.refund_fen,
                   s.c.reversal_fen, s.c.fee_fen, s.c.net_fen, s.c.created_at)
            .select_from(s.join(m, m.c.id == s.c.merchant_id)))


def listing(conn: Connection, *, merchant_id: int | None = None, cycle_from: date | None = None,
            cycle_to: date | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Settlements by id, filtered by merchant and cycle dates (inclusive)."""
    q = _filtered(_columns(), merchant_id, cycle_from, cycle_to)
    return [dict(r._mapping) for r in conn.execute(q.order_by(t.settlements.c.id).limit(limit).offset(offset))]


def count_listing(conn: Connection, *, merchant_id: int | None = None, cycle_from: date | None = None,
                  cycle_to: date | None = None) -> int:
    q = _filtered(select(func.count()).select_from(t.settlements), merchant_id, cycle_from, cycle_to)
    return int(conn.execute(q).scalar_one())


def owner(conn: Connection, settlement_id: int) -> int | None:
    """The merchant id of a settlement (None: no such settlement)."""
    s = t.settlements
    got = conn.execute(select(s.c.merchant_id).where(s.c.id == settlement_id)).scalar_one_or_none()
    return None if got is None else int(got)


def by_id(conn: Connection, settlement_id: int) -> dict[str, Any] | None:
    r = conn.execute(_columns().where(t.settlements.c.id == settlement_id)).first()
    return None if r is None else dict(r._mapping)


def payouts_of(conn: Connection, settlement_id: int) -> list[dict[str, Any]]:
    """The payouts carrying this settlement's id, by id."""
    p = t.payouts
    return [dict(r._mapping) for r in conn.execute(
        select(p.c.id, p.c.parent_id, p.c.value_date, p.c.amount_fen, p.c.status, p.c.category, p.c.updated_at)
        .where(p.c.settlement_id == settlement_id).order_by(p.c.id))]
