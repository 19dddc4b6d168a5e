"""SQL reads for an evidence bundle: attempts, events, settlements, transactions, ledger and card history
of a case's payouts and merchant, or of one payout (its parts, the cards it was paid to, the notices about
it). Card numbers are read masked only (never the cipher); notices without any secret."""

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


def _masked_accounts() -> Any:
    """Settlement accounts without their cipher and nonce: the card number masked only."""
    a = t.settlement_accounts
    return select(a.c.id, a.c.merchant_id, a.c.account_kind, a.c.holder_name, a.c.bank_code, a.c.bank_name,
                  a.c.card_type, a.c.pan_masked, a.c.key_version, a.c.status, a.c.bound_at, a.c.replaced_at,
                  a.c.card_status, a.c.last_status_check_at, a.c.verified_at)


def card_history(conn: Connection, merchant_id: int) -> dict[str, list[dict[str, Any]]]:
    """Settlement accounts (masked, no cipher), card events and verification attempts of the merchant."""
    a, ev, v = t.settlement_accounts, t.card_events, t.card_verifications
    accounts = _rows(conn, _masked_accounts().where(a.c.merchant_id == merchant_id).order_by(a.c.id))
    return {
        "settlement_accounts": accounts,
        "card_events": _rows(conn, select(ev).where(ev.c.merchant_id == merchant_id).order_by(ev.c.id)),
        "card_verifications": _rows(conn, select(v).where(v.c.merchant_id == merchant_id).order_by(v.c.id)),
    }


def terminal_numbers(conn: Connection, merchant_id: int) -> dict[int, str]:
    """The merchant's terminals: internal id -> terminal number (终端编号), for the CSVs people read."""
    tm = t.terminals
    return {int(r.id): str(r.terminal_no)
            for r in conn.execute(select(tm.c.id, tm.c.terminal_no).where(tm.c.merchant_id == merchant_id))}


def merchant(conn: Connection, merchant_id: int) -> dict[str, Any]:
    m = t.merchants
    return dict(conn.execute(select(m.c.id, m.c.merchant_no, m.c.registered_name, m.c.kind, m.c.cycle, m.c.city)
                             .where(m.c.id == merchant_id)).one()._mapping)


# --- one payout ---------------------------------------------------------------------------------


def parts(conn: Connection, payout_id: int) -> list[dict[str, Any]]:
    """The parts of a split payout (its children), whole rows, by id."""
    p = t.payouts
    return _rows(conn, select(p).where(p.c.parent_id == payout_id).order_by(p.c.id))


def accounts(conn: Connection, merchant_id: int, account_ids: Sequence[int]) -> list[dict[str, Any]]:
    """These settlement accounts of the merchant (masked, no cipher)."""
    a = t.settlement_accounts
    return _rows(conn, _masked_accounts().where(a.c.merchant_id == merchant_id, a.c.id.in_(list(account_ids)))
                 .order_by(a.c.id))


def notices(conn: Connection, merchant_id: int, payout_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The merchant's notices about these payouts (dedupe key ``payout:<id>:<cause>``, notify/model.py), by id."""
    n = t.notifications
    if not payout_ids:
        return []
    about = or_(*[n.c.dedupe_key.startswith(f"payout:{pid}:", autoescape=True) for pid in payout_ids])
    return _rows(conn, select(n.c.id, n.c.kind, n.c.dedupe_key, n.c.payload, n.c.created_at, n.c.delivered_at)
                 .where(n.c.merchant_id == merchant_id, about).order_by(n.c.id))


def notice_log(conn: Connection, notification_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every delivery of these notices and every try of each (a delivery not tried yet: one row without a
    try), in order; the columns of ``settleguard notify log`` (notify.repository.delivery_log)."""
    d, a, n = t.notification_deliveries, t.notification_attempts, t.notifications
    q = (select(d.c.notification_id, n.c.kind, d.c.id.label("delivery_id"), d.c.channel, d.c.target,
                d.c.status.label("delivery_status"), d.c.attempts, d.c.next_attempt_at, d.c.delivered_at,
                a.c.id.label("attempt_id"), a.c.attempt_no, a.c.started_at, a.c.finished_at, a.c.ok,
                a.c.http_status, a.c.detail)
         .select_from(d).join(n, n.c.id == d.c.notification_id).outerjoin(a, a.c.delivery_id == d.c.id)
         .where(d.c.notification_id.in_(list(notification_ids))).order_by(d.c.id, a.c.attempt_no))
    return _rows(conn, q)
