"""bank statements and normalised bank lines (reconciliation, issue 20 item 1)

- bank_statements: one row per imported statement (camt.053 Stmt, camt.054 Ntfctn, bank file) with its
  file's SHA-256, account and OPBD/CLBD/PRCD balances.
- bank_lines: one row per bank booking (or transaction of a batch booking), unique per
  (account, statement_id, entry_ref); indexed for matching by EndToEndId, PmtInfId and booking date.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("statement_id", sa.String(length=80), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("opening_fen", sa.BigInteger(), nullable=True),
        sa.Column("opening_date", sa.Date(), nullable=True),
        sa.Column("closing_fen", sa.BigInteger(), nullable=True),
        sa.Column("closing_date", sa.Date(), nullable=True),
        sa.Column("previous_closing_fen", sa.BigInteger(), nullable=True),
        sa.Column("previous_closing_date", sa.Date(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statements")),
        sa.UniqueConstraint("file_sha256", "statement_id", name="uq_bank_statements_file_statement"),
        sa.UniqueConstraint("account", "statement_id", name="uq_bank_statements_account_statement"),
    )
    op.create_table(
        "bank_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_row_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("statement_id", sa.String(length=80), nullable=False),
        sa.Column("entry_ref", sa.String(length=80), nullable=False),
        sa.Column("acct_svcr_ref", sa.String(length=80), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=80), nullable=True),
        sa.Column("pmt_inf_id", sa.String(length=80), nullable=True),
        sa.Column("batch_count", sa.Integer(), nullable=True),
        sa.Column("batch_total_fen", sa.BigInteger(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("reversal", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=4), nullable=False),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_lines")),
        sa.UniqueConstraint("account", "statement_id", "entry_ref", name="uq_bank_lines_entry"),
    )
    op.create_index("ix_bank_lines_end_to_end_id", "bank_lines", ["end_to_end_id"])
    op.create_index("ix_bank_lines_booking_date", "bank_lines", ["booking_date"])
    op.create_index("ix_bank_lines_pmt_inf_id", "bank_lines", ["pmt_inf_id"])
    op.create_index("ix_bank_lines_statement_row_id", "bank_lines", ["statement_row_id"])


def downgrade() -> None:
    op.drop_table("bank_lines")
    op.drop_table("bank_statements")
