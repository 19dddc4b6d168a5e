"""SQL of the fee audit: contracts with the rates they were signed with, the rates their schedules charge now,
and the transactions of a period, one business day at a time (the primary key's order)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Connection, Integer, String, func, select

from settleguard.db import tables as t
from settleguard.merchants.contracts_repository import schedule_rates


@dataclass(frozen=True)
class ContractRow:
    merchant_id: int
    effective_from: date
    schedule_id: int
    rates: dict[str, Any] | None  # None: a merchant registered without a contract row (no signed rates kept)
    charged_schedule_id: int = 0  # the schedule the import prices this contract's days with (below)


def contracts(conn: Connection) -> list[ContractRow]:
    """Every contract, by merchant and effective date; a merchant registered without a contract row (bulk
    registration, merchants.repository.add_merchants) has its registration schedule as its one contract, with
    no signed rates kept (its fees are audited against what the schedule charges)."""
    fc, m = t.fee_contracts, t.merchants
    rows = [ContractRow(int(r.merchant_id), r.effective_from, int(r.schedule_id), r.rates) for r in conn.execute(
        select(fc.c.merchant_id, fc.c.effective_from, fc.c.schedule_id, fc.c.rates)
        .order_by(fc.c.merchant_id, fc.c.effective_from, fc.c.id))]
    bare = conn.execute(select(m.c.id, m.c.fee_schedule_id, m.c.fee_effective_from)
                        .where(m.c.id.not_in(select(fc.c.merchant_id).distinct()))).all()
    rows += [ContractRow(int(i), eff or date(2000, 1, 1), int(sid), None) for i, sid, eff in bare]
    rows.sort(key=lambda r: (r.merchant_id, r.effective_from))
    return _charged(conn, rows)


def _charged(conn: Connection, rows: list[ContractRow]) -> list[ContractRow]:
    """Each contract with the schedule the transaction import really prices its days with: a merchant with one
    contract is priced by its merchants.fee_schedule_id, one with changes by each contract's schedule
    (contracts_repository.contract_changes). They differ when the merchant's schedule was switched with no
    contract behind it."""
    m = t.merchants
    count: dict[int, int] = {}
    for r in rows:
        count[r.merchant_id] = count.get(r.merchant_id, 0) + 1
    single = [mid for mid, n in count.items() if n == 1]
    own: dict[int, int] = {}
    for start in range(0, len(single), 1000):
        part = single[start:start + 1000]
        own.update({int(i): int(s) for i, s in conn.execute(select(m.c.id, m.c.fee_schedule_id)
                                                            .where(m.c.id.in_(part)))})
    return [ContractRow(r.merchant_id, r.effective_from, r.schedule_id, r.rates,
                        own.get(r.merchant_id, r.schedule_id) if count[r.merchant_id] == 1 else r.schedule_id)
            for r in rows]


def contracts_of(conn: Connection, merchant_id: int) -> list[ContractRow]:
    """One merchant's contracts by effective date."""
    fc, m = t.fee_contracts, t.merchants
    rows = [ContractRow(int(r.merchant_id), r.effective_from, int(r.schedule_id), r.rates) for r in conn.execute(
        select(fc.c.merchant_id, fc.c.effective_from, fc.c.schedule_id, fc.c.rates)
        .where(fc.c.merchant_id == merchant_id).order_by(fc.c.effective_from, fc.c.id))]
    if not rows:
        got = conn.execute(select(m.c.fee_schedule_id, m.c.fee_effective_from).where(m.c.id == merchant_id)).first()
        rows = [] if got is None else [ContractRow(merchant_id, got[1] or date(2000, 1, 1), int(got[0]), None)]
    return _charged(conn, rows)


def rates_now(conn: Connection, schedule_ids: list[int]) -> dict[int, dict[str, int | None]]:
    """What each schedule charges today (fee_rates), as a contract keeps rates."""
    return schedule_rates(conn, schedule_ids)


def merchant_names(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str]]:
    m = t.merchants
    out: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), 1000):
        part = ids[start:start + 1000]
        out.update({int(i): (str(no), str(name)) for i, no, name in conn.execute(
            select(m.c.id, m.c.merchant_no, m.c.registered_name).where(m.c.id.in_(part)))})
    return out


def merchant_id(conn: Connection, merchant_no: str) -> int | None:
    got = conn.execute(select(t.merchants.c.id).where(t.merchants.c.merchant_no == merchant_no)).scalar_one_or_none()
    return None if got is None else int(got)


def days_with_transactions(conn: Connection, start: date, end: date, merchant: int | None = None) -> list[date]:
    tx = t.transactions
    q = select(tx.c.cycle_date).where(tx.c.cycle_date >= start, tx.c.cycle_date <= end)
    if merchant is not None:
        q = q.where(tx.c.merchant_id == merchant)
    return [r[0] for r in conn.execute(q.group_by(tx.c.cycle_date).order_by(tx.c.cycle_date))]


def day_columns(conn: Connection, day: date, merchant: int | None = None) -> dict[str, np.ndarray]:
    """One business day's transactions as columns: merchant_id, external_ref, kind, card_type, amount_fen,
    fee_fen (as charged at import)."""
    tx = t.transactions
    q = select(tx.c.merchant_id, tx.c.external_ref, tx.c.kind, tx.c.card_type, tx.c.amount_fen, tx.c.fee_fen
               ).where(tx.c.cycle_date == day)
    if merchant is not None:
        q = q.where(tx.c.merchant_id == merchant)
    rows = conn.execute(q).all()
    names = ("merchant_id", "external_ref", "kind", "card_type", "amount_fen", "fee_fen")
    if not rows:
        return {n: np.zeros(0, dtype=object if n == "external_ref" else np.int64) for n in names}
    cols = list(zip(*rows, strict=True))
    return {n: (np.array(c, dtype=object) if n == "external_ref" else np.fromiter(c, dtype=np.int64, count=len(c)))
            for n, c in zip(names, cols, strict=True)}


def monthly(conn: Connection, merchant: int, start: date, end: date) -> Iterator[tuple[str, int, int, int, int]]:
    """(month YYYY-MM, card type, sale count, sale amount fen, fee fen net of fees given back) of a merchant."""
    tx = t.transactions
    month = func.substr(func.cast(tx.c.cycle_date, String(10)), 1, 7) if conn.dialect.name == "sqlite" else \
        func.to_char(tx.c.cycle_date, "YYYY-MM")
    sale = (tx.c.kind == 1)
    q = (select(month.label("m"), tx.c.card_type, func.sum(func.cast(sale, Integer)),
                func.coalesce(func.sum(tx.c.amount_fen).filter(sale), 0), func.coalesce(func.sum(tx.c.fee_fen), 0))
         .where(tx.c.merchant_id == merchant, tx.c.cycle_date >= start, tx.c.cycle_date <= end)
         .group_by(month, tx.c.card_type).order_by(month, tx.c.card_type))
    for m, ct, n, amount, fee in conn.execute(q):
        yield str(m), int(ct), int(n or 0), int(amount or 0), int(fee or 0)
