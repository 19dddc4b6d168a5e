"""the business day's own steps (issue 23 item 7): what ran, when, and alerts for late files

- day_cycle_runs: one row per (business day, action, key) the worker's "day" step ran: settle, pay, recon,
  clearing, alert, start; its status (running, done, failed), attempts, times, summary and error.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "day_cycle_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_day_cycle_runs"),
        sa.UniqueConstraint("business_day", "action", "key", name="uq_day_cycle_runs_day_action_key"),
    )
    op.create_index("ix_day_cycle_runs_started_at", "day_cycle_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_day_cycle_runs_started_at", table_name="day_cycle_runs")
    op.drop_table("day_cycle_runs")
