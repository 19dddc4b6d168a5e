"""SQL reads for merchant statements: the merchant, the period's transaction sums per business day, its
settlements and payouts, the balance carried into the period, and the period's transaction lines as a
stream (a server-side cursor on PostgreSQL, SQLite's own cursor: a few hundred rows in memory at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, cast, func, select

from settleguard.db import tables as t
from settleguard.settlement.model import TxnKind

STREAM_ROWS = 2000  # rows fetched from the cursor at a time


def merchant(conn: Connection, merchant_no: str) -> dict[str, Any] | None:
    m = t.merchants
    r = conn.execute(select(m.c.id, m.c.merchant_no, m.c.registered_name, m.c.cycle, m.c.status)
                     .where(m.c.merchant_no == merchant_no)).first()
    return None if r is None else dict(r._mapping)


def _sum_kind(kind: TxnKind) -> Any:
    tx = t.transactions
    return cast(func.coalesce(func.sum(tx.c.amount_fen).filter(tx.c.kind == int(kind)), 0), BigInteger)


def _in_period(merchant_id: int, start: date, end: date) -> Any:
    tx = t.transactions
    return and_(tx.c.cycle_date >= start, tx.c.cycle_date <= end, tx.c.merchant_id == merchant_id)


def kind_sums(conn: Connection, merchant_id: int, start: date, end: date) -> list[dict[str, Any]]:
    """Per kind: count, amount and fee of the period's transactions (one GROUP BY over the key range)."""
    tx = t.transactions
    q = (select(tx.c.kind, func.count().label("n"), cast(func.sum(tx.c.amount_fen), BigInteger).label("amount_fen"),
                cast(func.sum(tx.c.fee_fen), BigInteger).label("fee_fen"))
         .where(_in_period(merchant_id, start, end)).group_by(tx.c.kind).order_by(tx.c.kind))
    return [dict(r._mapping) for r in conn.execute(q)]


def day_sums(conn: Connection, merchant_id: int, start: date, end: date) -> dict[date, dict[str, Any]]:
    """Per business day: the transactions' count, sums by kind and fee (to compare with the settlements)."""
    tx = t.transactions
    q = (select(tx.c.cycle_date, func.count().label("txn_count"), _sum_kind(TxnKind.SALE).label("sale_fen"),
                _sum_kind(TxnKind.VOID).label("void_fen"), _sum_kind(TxnKind.REFUND).label("refund_fen"),
                _sum_kind(TxnKind.REVERSAL).label("reversal_fen"),
                cast(func.coalesce(func.sum(tx.c.fee_fen), 0), BigInteger).label("fee_fen"))
         .where(_in_period(merchant_id, start, end)).group_by(tx.c.cycle_date))
    return {r.cycle_date: dict(r._mapping) for r in conn.execute(q)}


def settlements(conn: Connection, merchant_id: int, start: date, end: date) -> list[dict[str, Any]]:
    """The merchant's settlements of the period with the amount of the payout each created (0: none)."""
    s, p = t.settlements, t.payouts
    q = (select(s.c.id, s.c.cycle_date, s.c.cycle, s.c.value_date, s.c.txn_count, s.c.sale_fen, s.c.void_fen,
                s.c.refund_fen, s.c.reversal_fen, s.c.fee_fen, s.c.net_fen, s.c.created_at,
                func.coalesce(p.c.amount_fen, 0).label("payout_fen"), p.c.idempotency_key)
         .select_from(s.outerjoin(p, and_(p.c.settlement_id == s.c.id, p.c.parent_id.is_(None))))
         .where(s.c.merchant_id == merchant_id, s.c.cycle_date >= start, s.c.cycle_date <= end)
         .order_by(s.c.cycle_date))
    return [dict(r._mapping) for r in conn.execute(q)]


def carried_in(conn: Connection, merchant_id: int, start: date) -> int:
    """The balance carried into ``start``: the nets settled before it less the payouts the settlement runs
    created for them (a split's parts are not counted twice: only payouts without a parent)."""
    s, p = t.settlements, t.payouts
    settled = conn.execute(select(func.coalesce(func.sum(s.c.net_fen), 0))
                           .where(s.c.merchant_id == merchant_id, s.c.cycle_date < start)).scalar_one()
    paid = conn.execute(select(func.coalesce(func.sum(p.c.amount_fen), 0))
                        .select_from(p.join(s, s.c.id == p.c.settlement_id))
                        .where(p.c.merchant_id == merchant_id, p.c.parent_id.is_(None), s.c.cycle_date < start)
                        ).scalar_one()
    return int(settled) - int(paid)


def payouts(conn: Connection, merchant_id: int, start: date, end: date) -> list[dict[str, Any]]:
    """The merchant's payouts of the period's business days (split parts included, after their parent)."""
    p = t.payouts
    parent = p.alias("parent")
    q = (select(p.c.id, p.c.settlement_id, p.c.parent_id, parent.c.idempotency_key.label("parent_key"), p.c.cycle_date,
                p.c.value_date, p.c.amount_fen, p.c.currency, p.c.status, p.c.idempotency_key, p.c.instruction_no,
                p.c.attempt_count, p.c.category, p.c.created_at, p.c.updated_at)
         .select_from(p.outerjoin(parent, parent.c.id == p.c.parent_id))
         .where(p.c.merchant_id == merchant_id, p.c.cycle_date >= start, p.c.cycle_date <= end)
         .order_by(p.c.cycle_date, func.coalesce(p.c.parent_id, p.c.id), p.c.id))
    return [dict(r._mapping) for r in conn.execute(q)]


def terminal_numbers(conn: Connection, merchant_id: int) -> dict[int, str]:
    tm = t.terminals
    return {int(i): str(n) for i, n in conn.execute(
        select(tm.c.id, tm.c.terminal_no).where(tm.c.merchant_id == merchant_id))}


def transaction_lines(conn: Connection, merchant_id: int, start: date, end: date) -> Iterator[Any]:
    """The period's transactions in time order, streamed: (cycle_date, occurred_at, terminal_id, external_ref,
    kind, card_type, amount_fen, fee_fen) rows."""
    tx = t.transactions
    q = (select(tx.c.cycle_date, tx.c.occurred_at, tx.c.terminal_id, tx.c.external_ref, tx.c.kind, tx.c.card_type,
                tx.c.amount_fen, tx.c.fee_fen)
         .where(_in_period(merchant_id, start, end))
         .order_by(tx.c.cycle_date, tx.c.occurred_at, tx.c.external_ref))
    result = conn.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(q)
    try:
        yield from result
    finally:
        result.close()
