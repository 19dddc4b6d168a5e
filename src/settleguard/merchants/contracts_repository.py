"""SQL of fee contracts with history (fee_contracts, merchants/contracts.py): rows are inserted, never updated.

A merchant's first contract is its ``merchants.fee_schedule_id`` (also written as a contract row at
onboarding); later rows change the rates from their effective date. The transaction import prices each
row with the contract in force on its business day (:func:`contract_changes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from settleguard.db import tables as t
from settleguard.settlement.model import CardType


@dataclass(frozen=True)
class ContractRow:
    id: int | None  # None: the merchant's registration contract, read from merchants (no row was written)
    schedule_id: int
    effective_from: date | None
    actor: str
    reason: str
    created_at: datetime | None


def merchant_id(conn: Connection, merchant_no: str) -> int | None:
    got = conn.execute(select(t.merchants.c.id).where(t.merchants.c.merchant_no == merchant_no)).scalar_one_or_none()
    return None if got is None else int(got)


def history(conn: Connection, merchant_id: int) -> list[ContractRow]:
    """The merchant's contracts by effective date; when it has no row, its registration contract."""
    fc, m = t.fee_contracts, t.merchants
    rows = [ContractRow(r.id, r.schedule_id, r.effective_from, r.actor, r.reason, r.created_at) for r in conn.execute(
        select(fc).where(fc.c.merchant_id == merchant_id).order_by(fc.c.effective_from, fc.c.id))]
    if rows:
        return rows
    r = conn.execute(select(m.c.fee_schedule_id, m.c.fee_effective_from, m.c.created_at)
                     .where(m.c.id == merchant_id)).one()
    return [ContractRow(None, r.fee_schedule_id, r.fee_effective_from, "", "入网 onboarding", r.created_at)]


def schedule_rates(conn: Connection, schedule_ids: Iterable[int]) -> dict[int, dict[str, int | None]]:
    """The rates of fee schedules now, as a contract keeps them: {debit_ppm, debit_cap_fen, credit_ppm, qr_ppm}."""
    ids = sorted(set(schedule_ids))
    out: dict[int, dict[str, int | None]] = {
        sid: {"debit_ppm": 0, "debit_cap_fen": None, "credit_ppm": 0, "qr_ppm": 0} for sid in ids}
    fr = t.fee_rates
    for sid, ct, ppm, cap in conn.execute(select(fr.c.schedule_id, fr.c.card_type, fr.c.rate_ppm, fr.c.cap_fen)
                                          .where(fr.c.schedule_id.in_(ids))):
        r = out[int(sid)]
        if ct == CardType.DEBIT:
            r["debit_ppm"], r["debit_cap_fen"] = int(ppm), None if cap is None else int(cap)
        elif ct == CardType.CREDIT:
            r["credit_ppm"] = int(ppm)
        elif ct == CardType.QR:
            r["qr_ppm"] = int(ppm)
    return out


def insert_contract(conn: Connection, merchant_id: int, schedule_id: int, effective_from: date, actor: str,
                    reason: str, now: datetime) -> int:
    """A contract row, keeping the rates of its schedule at signing (0019: the fee audit prices with them)."""
    new = conn.execute(insert(t.fee_contracts).values(
        merchant_id=merchant_id, schedule_id=schedule_id, effective_from=effective_from, actor=actor[:64],
        reason=reason[:256], created_at=now, rates=schedule_rates(conn, [schedule_id])[schedule_id])
    ).inserted_primary_key
    assert new is not None
    return int(new[0])


def insert_initial(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Registration contracts: dicts with merchant_id, schedule_id, effective_from, actor, reason, created_at;
    each keeps its schedule's rates at signing."""
    if rows:
        rates = schedule_rates(conn, (r["schedule_id"] for r in rows))
        conn.execute(insert(t.fee_contracts), [{**r, "rates": rates[r["schedule_id"]]} for r in rows])


def contract_changes(conn: Connection) -> list[tuple[int, date, int]]:
    """(merchant id, effective from, schedule id) of every merchant with more than one contract, ordered.

    Merchants with one contract (nearly all) are priced by merchants.fee_schedule_id alone."""
    fc = t.fee_contracts
    changed = select(fc.c.merchant_id).group_by(fc.c.merchant_id).having(func.count() > 1)
    return [(int(a), b, int(c)) for a, b, c in conn.execute(
        select(fc.c.merchant_id, fc.c.effective_from, fc.c.schedule_id)
        .where(fc.c.merchant_id.in_(changed)).order_by(fc.c.merchant_id, fc.c.effective_from))]


def last_business_day(conn: Connection, merchant_id: int, from_day: date) -> date | None:
    """The latest business day on or after ``from_day`` with an imported transaction or a settlement of
    the merchant (fees already computed: a contract from ``from_day`` would not apply to them)."""
    tx, st = t.transactions, t.settlements
    a = conn.execute(select(func.max(tx.c.cycle_date))
                     .where(tx.c.cycle_date >= from_day, tx.c.merchant_id == merchant_id)).scalar_one()
    b = conn.execute(select(func.max(st.c.cycle_date))
                     .where(st.c.cycle_date >= from_day, st.c.merchant_id == merchant_id)).scalar_one()
    days = [d for d in (a, b) if d is not None]
    return max(days) if days else None
