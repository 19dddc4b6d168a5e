"""fee contracts keep the rates they were signed with (issue 22 item 4, the fee audit)

- fee_contracts.rates: the contract's rates at signing, as JSON {"debit_ppm", "debit_cap_fen", "credit_ppm",
  "qr_ppm"}. A contract referred to a shared fee schedule whose rate rows (fee_rates) could be edited in place;
  the fee audit (fees/audit.py) prices each transaction with the rates of the contract itself, and a schedule
  whose rates no longer equal them is a rate change without a contract change.
- Backfill: every existing contract row takes its schedule's rates now; a merchant without a row gets its
  registration contract as a row (as onboarding writes since 0011), so every merchant has a contract to audit.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:10:00
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fee_contracts") as batch:
        batch.add_column(sa.Column("rates", sa.JSON(), nullable=True))
    conn = op.get_bind()
    meta = sa.MetaData()
    fc = sa.Table("fee_contracts", meta, autoload_with=conn)
    fr = sa.Table("fee_rates", meta, autoload_with=conn)
    m = sa.Table("merchants", meta, autoload_with=conn)
    rates: dict[int, dict[str, int | None]] = {}
    for sid, ct, ppm, cap in conn.execute(sa.select(fr.c.schedule_id, fr.c.card_type, fr.c.rate_ppm, fr.c.cap_fen)):
        r = rates.setdefault(int(sid), {"debit_ppm": 0, "debit_cap_fen": None, "credit_ppm": 0, "qr_ppm": 0})
        if ct == 1:
            r["debit_ppm"], r["debit_cap_fen"] = int(ppm), None if cap is None else int(cap)
        elif ct == 2:
            r["credit_ppm"] = int(ppm)
        elif ct == 3:
            r["qr_ppm"] = int(ppm)
    with_rows = sa.select(fc.c.merchant_id).distinct()
    missing = conn.execute(sa.select(m.c.id, m.c.fee_schedule_id, m.c.fee_effective_from, m.c.created_at)
                           .where(m.c.id.not_in(with_rows))).all()
    if missing:
        conn.execute(sa.insert(fc), [
            {"merchant_id": r.id, "schedule_id": r.fee_schedule_id,
             "effective_from": r.fee_effective_from or date(2000, 1, 1),
             "actor": "system", "reason": "入网合同 registration contract", "created_at": r.created_at}
            for r in missing])
    for sid, r in rates.items():
        conn.execute(sa.update(fc).where(fc.c.schedule_id == sid, fc.c.rates.is_(None)).values(rates=r))


def downgrade() -> None:
    with op.batch_alter_table("fee_contracts") as batch:
        batch.drop_column("rates")
