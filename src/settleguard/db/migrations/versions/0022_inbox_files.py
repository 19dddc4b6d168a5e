"""inbox files (issue 23 item 7): every file the worker picked up from an inbox directory

- inbox_files: one row per file taken (or per attempt: a file refused and dropped again gets a new row): the
  directory, the name as received (masked, bounded) and as moved, its SHA-256 and size, the kind recognised, the
  status (processing while its import runs; then done, rejected or duplicate), the reason (zh, en), the business
  days it covered (JSON list of ISO dates), what the import did (JSON), when it was received and processed, and
  where it was moved (NULL until the move is done: a crash between the commit and the move is finished next scan).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory", sa.String(512), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("stored_name", sa.String(256), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason_zh", sa.Text(), nullable=True),
        sa.Column("reason_en", sa.Text(), nullable=True),
        sa.Column("business_days", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("summary", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("moved_to", sa.String(600), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_files"),
    )
    op.create_index("ix_inbox_files_sha256", "inbox_files", ["sha256"])
    op.create_index("ix_inbox_files_received_at", "inbox_files", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_files_received_at", table_name="inbox_files")
    op.drop_index("ix_inbox_files_sha256", table_name="inbox_files")
    op.drop_table("inbox_files")
