"""SQL of break resolutions (差错处理): recon_resolutions, the break's status change to ``resolved``, the
refund lines that settle a receivable, and the adjustment transactions of clearing breaks.

Money is not written here: ledger entries go through ``ledger.repository.post`` and payout statuses through the
payouts gate (reconciliation/resolve.py calls them in the same transaction).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from settleguard.db import tables as t


def lock_break(conn: Connection, break_id: int) -> dict[str, Any] | None:
    """The break, locked on PostgreSQL until the transaction ends (SQLite: the unit of work is IMMEDIATE)."""
    b = t.recon_breaks
    q = select(b).where(b.c.id == break_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return None if row is None else dict(row._mapping)


def lock_resolution(conn: Connection, resolution_id: int) -> dict[str, Any] | None:
    r = t.recon_resolutions
    q = select(r).where(r.c.id == resolution_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return None if row is None else dict(row._mapping)


def live_of_break(conn: Connection, break_id: int) -> dict[str, Any] | None:
    """The break's proposed or approved resolution, if any."""
    r = t.recon_resolutions
    row = conn.execute(select(r).where(r.c.live_break_id == break_id)).first()
    return None if row is None else dict(row._mapping)


def insert_resolution(conn: Connection, values: dict[str, Any]) -> int:
    new = conn.execute(insert(t.recon_resolutions).values(**values)).inserted_primary_key
    assert new is not None
    return int(new[0])


def decide(conn: Connection, resolution_id: int, status: str, values: dict[str, Any]) -> bool:
    """proposed -> ``status`` (approved / rejected); False when it was no longer proposed."""
    r = t.recon_resolutions
    res = conn.execute(update(r).where(r.c.id == resolution_id, r.c.status == "proposed")
                       .values(status=status, **values))
    return res.rowcount == 1


def resolve_break(conn: Connection, break_id: int) -> bool:
    """open -> resolved; False when the break was no longer open."""
    b = t.recon_breaks
    res = conn.execute(update(b).where(b.c.id == break_id, b.c.status == "open").values(status="resolved"))
    return res.rowcount == 1


def of_break(conn: Connection, break_id: int) -> list[dict[str, Any]]:
    r = t.recon_resolutions
    return [dict(x._mapping) for x in conn.execute(select(r).where(r.c.break_id == break_id).order_by(r.c.id))]


def by_id(conn: Connection, resolution_id: int) -> dict[str, Any] | None:
    r = t.recon_resolutions
    row = conn.execute(select(r).where(r.c.id == resolution_id)).first()
    return None if row is None else dict(row._mapping)


def listing(conn: Connection, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    r = t.recon_resolutions
    q = select(r).order_by(r.c.id.desc()).limit(limit)
    if status is not None:
        q = q.where(r.c.status == status)
    return [dict(x._mapping) for x in conn.execute(q)]


# --- receivables from the bank ------------------------------------------------------------------------------

def open_receivables(conn: Connection) -> list[dict[str, Any]]:
    """Approved resolutions whose receivable awaits the bank's refund, with their break's key and date."""
    r, b = t.recon_resolutions, t.recon_breaks
    q = (select(r.c.id, r.c.break_id, r.c.amount_fen, b.c.end_to_end_id, b.c.booking_date, b.c.bank_line_id)
         .select_from(r.join(b, b.c.id == r.c.break_id))
         .where(r.c.receivable_status == "open").order_by(r.c.id))
    return [dict(x._mapping) for x in conn.execute(q)]


def refund_line(conn: Connection, end_to_end_id: str, amount_fen: int, not_before: date | None,
                debit_line_id: int | None) -> dict[str, Any] | None:
    """A booked credit of ``amount_fen`` under ``end_to_end_id`` (on or after ``not_before``) that settles no
    receivable yet: the bank's refund of a debit it owes back."""
    bl, r, b = t.bank_lines, t.recon_resolutions, t.recon_breaks
    used = select(r.c.settled_line_id).where(r.c.settled_line_id.is_not(None))
    # a credit already resolved otherwise (held as a return) moved its money once: never a refund too
    resolved = select(b.c.bank_line_id).where(b.c.type == "reversal", b.c.status == "resolved",
                                              b.c.bank_line_id.is_not(None))
    q = select(bl.c.id, bl.c.booking_date).where(
        bl.c.end_to_end_id == end_to_end_id, bl.c.amount_fen == amount_fen, bl.c.direction == "CRDT",
        bl.c.status == "BOOK", bl.c.id.not_in(used), bl.c.id.not_in(resolved)
    ).order_by(bl.c.booking_date, bl.c.id).limit(1)
    if not_before is not None:
        q = q.where(bl.c.booking_date >= not_before)
    if debit_line_id is not None:
        q = q.where(bl.c.id != debit_line_id)
    row = conn.execute(q).first()
    return None if row is None else dict(row._mapping)


def claim_receivable(conn: Connection, resolution_id: int, line_id: int, now: datetime) -> bool:
    """open -> settled by ``line_id``; False when another transaction settled it first, or the line settles
    another receivable already (a savepoint keeps the caller's transaction usable)."""
    r = t.recon_resolutions
    try:
        with conn.begin_nested():
            res = conn.execute(update(r).where(r.c.id == resolution_id, r.c.receivable_status == "open").values(
                receivable_status="settled", settled_line_id=line_id, settled_at=now))
    except IntegrityError:
        return False
    return res.rowcount == 1


def set_settled_entry(conn: Connection, resolution_id: int, entry_id: int) -> None:
    r = t.recon_resolutions
    conn.execute(update(r).where(r.c.id == resolution_id).values(settled_entry_id=entry_id))


def open_break_of_line(conn: Connection, line_id: int, type_: str) -> dict[str, Any] | None:
    b = t.recon_breaks
    row = conn.execute(select(b).where(b.c.bank_line_id == line_id, b.c.type == type_, b.c.status == "open")
                       .order_by(b.c.id).limit(1)).first()
    return None if row is None else dict(row._mapping)


# --- adjustment transactions (clearing breaks) -------------------------------------------------------------

def merchant_id_of(conn: Connection, merchant_no: str) -> int | None:
    m = t.merchants
    got = conn.execute(select(m.c.id).where(m.c.merchant_no == merchant_no)).scalar()
    return None if got is None else int(got)


def terminal_id_of(conn: Connection, merchant_id: int, terminal_no: str) -> int | None:
    tm = t.terminals
    got = conn.execute(select(tm.c.id).where(tm.c.merchant_id == merchant_id,
                                             tm.c.terminal_no == terminal_no)).scalar()
    return None if got is None else int(got)


def merchant_cycle(conn: Connection, merchant_id: int) -> str | None:
    m = t.merchants
    got = conn.execute(select(m.c.cycle).where(m.c.id == merchant_id)).scalar()
    return None if got is None else str(got)


def settled_days(conn: Connection, merchant_id: int, since: date) -> set[date]:
    s = t.settlements
    return set(conn.execute(select(s.c.cycle_date).where(s.c.merchant_id == merchant_id,
                                                          s.c.cycle_date >= since)).scalars())


def transaction(conn: Connection, cycle_date: date, merchant_id: int, external_ref: str) -> dict[str, Any] | None:
    tx = t.transactions
    row = conn.execute(select(tx).where(tx.c.cycle_date == cycle_date, tx.c.merchant_id == merchant_id,
                                        tx.c.external_ref == external_ref)).first()
    return None if row is None else dict(row._mapping)


def find_transaction(conn: Connection, merchant_id: int, external_ref: str) -> dict[str, Any] | None:
    tx = t.transactions
    row = conn.execute(select(tx).where(tx.c.merchant_id == merchant_id, tx.c.external_ref == external_ref)
                       .order_by(tx.c.cycle_date).limit(1)).first()
    return None if row is None else dict(row._mapping)


def insert_adjustment_transaction(conn: Connection, *, resolution_id: int, cycle_date: date, merchant_id: int,
                                  external_ref: str, terminal_id: int | None, kind: int, card_type: int,
                                  amount_fen: int, fee_fen: int, occurred_at: datetime, now: datetime) -> None:
    """One transaction row (with an ``imports`` row of kind ``recon_adjustment`` naming the resolution), settled
    by the next settlement run of ``cycle_date`` like any imported transaction."""
    sha = hashlib.sha256(f"recon_resolution:{resolution_id}".encode()).hexdigest()
    import_id = conn.execute(insert(t.imports).values(
        kind="recon_adjustment", sha256=sha, filename=f"recon resolution #{resolution_id}", encoding="-",
        row_count=1, imported_at=now).returning(t.imports.c.id)).scalar_one()
    conn.execute(insert(t.transactions).values(
        cycle_date=cycle_date, merchant_id=merchant_id, external_ref=external_ref, terminal_id=terminal_id,
        kind=kind, card_type=card_type, amount_fen=amount_fen, fee_fen=fee_fen, occurred_at=occurred_at,
        import_id=int(import_id)))


def last_entry_id(conn: Connection, kind: str, payout_id: int) -> int | None:
    e = t.ledger_entries
    got = conn.execute(select(func.max(e.c.id)).where(e.c.kind == kind, e.c.payout_id == payout_id)).scalar()
    return None if got is None else int(got)
