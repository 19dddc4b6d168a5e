"""card keys and database marks: the card key belongs to the database; the demo knows its own databases

- ``card_keys``: one row per card-encryption key version with a keyed fingerprint of the key (never the
  key); every command that reads or writes cards checks its key against it (cards/custody.py).
- ``database_marks``: facts about the database itself (``demo``: made by ``settleguard demo``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_keys",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_card_keys")),
    )
    op.create_table(
        "database_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_database_marks")),
    )


def downgrade() -> None:
    op.drop_table("database_marks")
    op.drop_table("card_keys")
