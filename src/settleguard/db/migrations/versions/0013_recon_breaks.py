"""reconciliation runs, matches and breaks (issue 20 item 2)

- recon_runs: one row per ``recon run --date D`` (window, started/finished, counts, balance drift).
- recon_matches: a booked bank line matched to a payout (and the attempt whose instruction it was), with the
  rule that matched it; unique per (bank_line_id, payout_id) so a re-run does not duplicate a match.
- recon_breaks: what did not reconcile, one row per natural key ``break_key`` (type + subject), so a re-run
  updates the open break instead of adding another; status open | cleared | resolved; ``detail`` is bounded,
  masked JSON.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("lines_considered", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("matched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("breaks_open", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("breaks_cleared", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("drift_fen", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_runs")),
    )
    op.create_index("ix_recon_runs_run_date", "recon_runs", ["run_date"])
    op.create_table(
        "recon_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("bank_line_id", sa.Integer(), nullable=False),
        sa.Column("payout_id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=24), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("matched_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_matches")),
        sa.UniqueConstraint("bank_line_id", "payout_id", name="uq_recon_matches_line_payout"),
    )
    op.create_index("ix_recon_matches_payout_id", "recon_matches", ["payout_id"])
    op.create_table(
        "recon_breaks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("break_key", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=80), nullable=True),
        sa.Column("bank_ref", sa.String(length=80), nullable=True),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.Column("bank_line_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_breaks")),
        sa.UniqueConstraint("break_key", name="uq_recon_breaks_key"),
        sa.CheckConstraint("status IN ('open', 'cleared', 'resolved')", name=op.f("ck_recon_breaks_status")),
    )
    op.create_index("ix_recon_breaks_status_type", "recon_breaks", ["status", "type"])
    op.create_index("ix_recon_breaks_payout_id", "recon_breaks", ["payout_id"])


def downgrade() -> None:
    op.drop_table("recon_breaks")
    op.drop_table("recon_matches")
    op.drop_table("recon_runs")
