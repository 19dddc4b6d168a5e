"""reconciliation break resolution with maker-checker (helper B)

- recon_resolutions: one row per proposed resolution of a break (差错处理): the action, the note, who proposed
  it and when, who approved or rejected it and when; what the approval did (ledger entry, adjustment
  transaction, payout) and, for a receivable from the bank, whether the bank's refund line was booked
  (receivable_status open | settled, the refund line and its entry). ``live_break_id`` equals ``break_id``
  while the resolution is proposed or approved and is NULL once rejected; it is unique, so a break has at most
  one live resolution and its money moves at most once. ``settled_line_id`` is unique: one refund line
  settles one receivable.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_resolutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("break_id", sa.Integer(), nullable=False),
        sa.Column("break_type", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=2000), nullable=True),
        sa.Column("live_break_id", sa.Integer(), nullable=True),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.Column("txn_cycle_date", sa.Date(), nullable=True),
        sa.Column("txn_merchant_id", sa.Integer(), nullable=True),
        sa.Column("txn_external_ref", sa.String(length=32), nullable=True),
        sa.Column("receivable_status", sa.String(length=10), nullable=True),
        sa.Column("settled_line_id", sa.Integer(), nullable=True),
        sa.Column("settled_entry_id", sa.Integer(), nullable=True),
        sa.Column("settled_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_resolutions")),
        sa.UniqueConstraint("live_break_id", name="uq_recon_resolutions_live_break_id"),
        sa.UniqueConstraint("settled_line_id", name="uq_recon_resolutions_settled_line_id"),
        sa.CheckConstraint("status IN ('proposed', 'approved', 'rejected')",
                           name=op.f("ck_recon_resolutions_status")),
    )
    op.create_index("ix_recon_resolutions_break_id", "recon_resolutions", ["break_id"])
    op.create_index("ix_recon_resolutions_receivable_status", "recon_resolutions", ["receivable_status"])


def downgrade() -> None:
    op.drop_table("recon_resolutions")
