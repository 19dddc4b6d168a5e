"""card network clearing files and the transaction fields clearing reconciliation needs (issue 20 item 3)

- transactions: nullable ``stan`` (系统跟踪号, 6 digits), ``rrn`` (检索参考号, 12), ``auth_code`` (授权码, 6) and
  ``card_token`` (32 hex: HMAC-SHA256 of the card number under a key derived by HKDF from the card key; the
  card number itself is never stored). Old rows and files without these columns keep NULL.
- clearing_files: one row per imported UnionPay 全渠道 clearing file (INN detail or RD summary), unique by SHA-256.
- clearing_lines: one INN detail line (fields in fen, signed fee / net, masked account), unique per
  (clearing date, merchant code, terminal, STAN, transmission time, transaction code) so a re-sent file adds
  only lines not seen before.
- clearing_summaries: the RD summary's totals per clearing date and merchant code.
- clearing_runs: one row per ``recon clearing --date D`` (counts); the run ids of clearing_* breaks.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_TXN_COLUMNS = (("stan", 6), ("rrn", 12), ("auth_code", 6), ("card_token", 32))


def upgrade() -> None:
    for name, width in _TXN_COLUMNS:
        op.add_column("transactions", sa.Column(name, sa.String(length=width), nullable=True))
    op.create_table(
        "clearing_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("clearing_date", sa.Date(), nullable=False),
        sa.Column("owner_code", sa.String(length=15), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("new_lines", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=16), nullable=False),
        sa.Column("imported_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_files")),
        sa.UniqueConstraint("file_sha256", name="uq_clearing_files_sha256"),
    )
    op.create_table(
        "clearing_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("clearing_date", sa.Date(), nullable=False),
        sa.Column("txn_code", sa.String(length=3), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("sent_at_text", sa.String(length=10), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("txn_date", sa.Date(), nullable=False),
        sa.Column("account_masked", sa.String(length=19), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("mcc", sa.String(length=4), nullable=False),
        sa.Column("query_id", sa.String(length=21), nullable=False),
        sa.Column("orig_stan", sa.String(length=6), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("settle_fen", sa.BigInteger(), nullable=False),
        sa.Column("net_fen", sa.BigInteger(), nullable=False),
        sa.Column("merchant_code", sa.String(length=15), nullable=False),
        sa.Column("terminal_no", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_lines")),
        sa.UniqueConstraint("clearing_date", "merchant_code", "terminal_no", "stan", "sent_at_text", "txn_code",
                            name="uq_clearing_lines_key"),
    )
    op.create_index("ix_clearing_lines_date_merchant", "clearing_lines", ["clearing_date", "merchant_code"])
    op.create_table(
        "clearing_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("clearing_date", sa.Date(), nullable=False),
        sa.Column("merchant_code", sa.String(length=15), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("txn_count", sa.Integer(), nullable=False),
        sa.Column("debit_fen", sa.BigInteger(), nullable=False),
        sa.Column("credit_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("net_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_summaries")),
        sa.UniqueConstraint("clearing_date", "merchant_code", name="uq_clearing_summaries_key"),
    )
    op.create_table(
        "clearing_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clearing_date", sa.Date(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("network_lines", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("our_transactions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("matched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("breaks_open", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("breaks_cleared", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_runs")),
    )
    op.create_index("ix_clearing_runs_clearing_date", "clearing_runs", ["clearing_date"])


def downgrade() -> None:
    op.drop_index("ix_clearing_runs_clearing_date", table_name="clearing_runs")
    op.drop_table("clearing_runs")
    op.drop_table("clearing_summaries")
    op.drop_index("ix_clearing_lines_date_merchant", table_name="clearing_lines")
    op.drop_table("clearing_lines")
    op.drop_table("clearing_files")
    for name, _ in reversed(_TXN_COLUMNS):  # SQLite >= 3.35 drops a column in place (keeps WITHOUT ROWID)
        op.execute(f"ALTER TABLE transactions DROP COLUMN {name}")
