"""API read indexes: payouts by failure category; payouts by status with their amounts (PostgreSQL)

- ``ix_payouts_category`` (partial: only payouts with a diagnosis): ``GET /api/v1/payouts?category=…``
  and the console's queue filter read the matching payouts instead of every payout, and count them.
- ``ix_payouts_status_value_date`` carries ``amount_fen`` on PostgreSQL (INCLUDE): ``/metrics`` and the
  dashboard count and sum payouts per status from the index alone. SQLite has no INCLUDE; there the
  index is rebuilt as it was.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

HAS_CATEGORY = sa.text("category IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_payouts_category", "payouts", ["category"], postgresql_where=HAS_CATEGORY,
                    sqlite_where=HAS_CATEGORY)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_payouts_status_value_date", table_name="payouts")
        op.create_index("ix_payouts_status_value_date", "payouts", ["status", "value_date"],
                        postgresql_include=["amount_fen"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_payouts_status_value_date", table_name="payouts")
        op.create_index("ix_payouts_status_value_date", "payouts", ["status", "value_date"])
    op.drop_index("ix_payouts_category", table_name="payouts")
