"""SQL reads behind the archive rules (ops/partitions_model.py): per business day, settled and reconciled?"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, exists, func, select

from settleguard.db import tables as t
from settleguard.ops.partitions_model import DayFacts
from settleguard.payouts.model import IN_TRANSIT
from settleguard.reconciliation.clearing_matching import KEY_PREFIX


def day_facts(conn: Connection, day: date) -> DayFacts:
    tx, s, p, b = t.transactions, t.settlements, t.payouts, t.recon_breaks
    run = conn.execute(select(exists().where(t.settlement_runs.c.cycle_date == day,
                                             t.settlement_runs.c.finished_at.is_not(None)))).scalar()
    unsettled = conn.execute(select(func.count(func.distinct(tx.c.merchant_id))).where(
        tx.c.cycle_date == day,
        ~exists().where(s.c.cycle_date == day, s.c.merchant_id == tx.c.merchant_id))).scalar_one()
    clearing = conn.execute(select(exists().where(t.clearing_runs.c.clearing_date == day,
                                                  t.clearing_runs.c.finished_at.is_not(None)))).scalar()
    payout_ids = select(p.c.id).where(p.c.cycle_date == day)
    breaks = conn.execute(select(func.count()).select_from(b).where(
        b.c.status == "open",
        b.c.break_key.startswith(f"{KEY_PREFIX}{day.isoformat()}:", autoescape=True) | b.c.payout_id.in_(payout_ids),
    )).scalar_one()
    transit = conn.execute(select(func.count()).select_from(p).where(
        p.c.cycle_date == day, p.c.status.in_(sorted(str(x) for x in IN_TRANSIT)))).scalar_one()
    rows = conn.execute(select(exists().where(tx.c.cycle_date == day))).scalar()
    return DayFacts(day, bool(run), int(unsettled), bool(clearing), int(breaks), int(transit), bool(rows))
