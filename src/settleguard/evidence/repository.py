"""SQL reads for an evidence bundle: attempts, events, settlements, transactions, ledger and card history
of a case's payouts and merchant. Card numbers are read masked only (never the cipher)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from settleguard.db import tables as t


def _rows(conn: Connection, q: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(q)]


def payouts(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    p = t.payouts
    return _rows(conn, select(p).where(p.c.id.in_(list(ids))).order_by(p.c.id))


def attempts(conn: Connection, payout_ids: Sequence[int]) -> list[dict[str, Any]]:
    a = t.payout_attempts
    return _rows(conn, select(a).where(a.c.payout_id.in_(list(payout_ids))).order_by(a.c.payout_id, a.c.attempt_no))


def events(conn: Connection, payout_ids: Sequence[int]) -> list[dict[str, Any]]:
    e = t.payout_events
    return _rows(conn, select(e).where(e.c.payout_id.in_(list(payout_ids))).order_by(e.c.id))


def settlements(conn: Connection, merchant_id: int, cycle_dates: Sequence[date]) -> list[dict[str, Any]]:
    s = t.settlements
    return _rows(conn, select(s).where(s.c.merchant_id == merchant_id, s.c.cycle_date.in_(list(cycle_dates)))
                 .order_by(s.c.cycle_date))


def transactions(conn: Connection, merchant_id: int, cycle_date: date) -> list[dict[str, Any]]:
    x = t.transactions
    return _rows(conn, select(x).where(x.c.merchant_id == merchant_id, x.c.cycle_date == cycle_date)
                 .order_by(x.c.occurred_at, x.c.external_ref))


def ledger(conn: Connection, merchant_id: int, payout_ids: Sequence[int], run_ids: Sequence[int]
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(entries, postings): the entries of the payouts, and of the settlement runs that touch this merchant;
    of a run's entries only this merchant's postings (a run's entry may carry every merchant's)."""
    e, p = t.ledger_entries, t.ledger_postings
    cond: ColumnElement[bool] = e.c.payout_id.in_(list(payout_ids))
    if run_ids:
        cond = or_(cond, and_(e.c.run_id.in_(list(run_ids)), or_(e.c.merchant_id == merchant_id,
                                                                   e.c.merchant_id.is_(None))))
    entries = _rows(conn, select(e).where(cond).order_by(e.c.id))
    ids = [int(x["id"]) for x in entries]
    if not ids:
        return [], []
    postings = _rows(conn, select(p).where(p.c.entry_id.in_(ids), or_(p.c.merchant_id == merchant_id,
                                                                      p.c.merchant_id.is_(None)))
                     .order_by(p.c.entry_id, p.c.id))
    used = {int(x["entry_id"]) for x in postings}
    return [x for x in entries if int(x["id"]) in used or x["payout_id"] is not None], postings


def card_history(conn: Connection, merchant_id: int) -> dict[str, list[dict[str, Any]]]:
    """Settlement accounts (masked, no cipher), card events and verification attempts of the merchant."""
    a, ev, v = t.settlement_accounts, t.card_events, t.card_verifications
    accounts = _rows(conn, select(a.c.id, a.c.merchant_id, a.c.account_kind, a.c.holder_name, a.c.bank_code,
                                  a.c.bank_name, a.c.card_type, a.c.pan_masked, a.c.key_version, a.c.status,
                                  a.c.bound_at, a.c.replaced_at, a.c.card_status, a.c.last_status_check_at,
                                  a.c.verified_at).where(a.c.merchant_id == merchant_id).order_by(a.c.id))
    return {
        "settlement_accounts": accounts,
        "card_events": _rows(conn, select(ev).where(ev.c.merchant_id == merchant_id).order_by(ev.c.id)),
        "card_verifications": _rows(conn, select(v).where(v.c.merchant_id == merchant_id).order_by(v.c.id)),
    }


def merchant(conn: Connection, merchant_id: int) -> dict[str, Any]:
    m = t.merchants
    return dict(conn.execute(select(m.c.id, m.c.merchant_no, m.c.registered_name, m.c.kind, m.c.cycle, m.c.city)
                             .where(m.c.id == merchant_id)).one()._mapping)
