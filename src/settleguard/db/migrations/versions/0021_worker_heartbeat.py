"""worker heartbeat (issue 23 item 4, health): every worker process writes one row each cycle, so that
``settleguard doctor`` can tell a worker that runs from one that died or never started.

- worker_heartbeats: worker (host:pid), host, pid, when it started, its latest beat, cycles run, the latest
  cycle's run id.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 14:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("host", sa.String(96), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.Column("cycles", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("worker", name="pk_worker_heartbeats"),
    )
    op.create_index("ix_worker_heartbeats_beat_at", "worker_heartbeats", ["beat_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_beat_at", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
