"""reconciliation follow-up and balance proof (helper A, issue 20)

- recon_actions: what the follow-up did about a break, at most once per (break_id, action): ``inquiry`` (a
  ledger_only payout sent back to result_unknown), ``return`` (a reversal handled as a return: held),
  ``case`` (an aged break opened a case, ``case_id``) or ``alert`` (an aged break without a merchant).
- recon_balance_proofs: one row per ``recon run``: the bank's closing balance against the ledger's
  settlement-account (bank_provisions) balance, the drift, how much open breaks and payouts in transit
  explain and the unexplained remainder (fen); ``detail`` holds the parts and the explaining items (bounded).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("break_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_actions")),
        sa.UniqueConstraint("break_id", "action", name="uq_recon_actions_break_action"),
    )
    op.create_table(
        "recon_balance_proofs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("bank_closing_fen", sa.BigInteger(), nullable=False),
        sa.Column("ledger_fen", sa.BigInteger(), nullable=False),
        sa.Column("drift_fen", sa.BigInteger(), nullable=False),
        sa.Column("explained_fen", sa.BigInteger(), nullable=False),
        sa.Column("unexplained_fen", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_balance_proofs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_recon_balance_proofs_run_id")),
    )


def downgrade() -> None:
    op.drop_table("recon_balance_proofs")
    op.drop_table("recon_actions")
