"""resumable card key rotation (issue 23 item 1): one row per ``settleguard keys rotate``, its phase and
counts, so that a rotation a crash interrupted is finished by the next run (cards/key_rotation.py).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_key_rotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("new_version", sa.Integer(), nullable=False),
        sa.Column("old_versions", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("keep_old", sa.Boolean(), nullable=False),
        sa.Column("store", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_card_key_rotations"),
    )
    op.create_index("ix_card_key_rotations_phase", "card_key_rotations", ["phase"])


def downgrade() -> None:
    op.drop_index("ix_card_key_rotations_phase", table_name="card_key_rotations")
    op.drop_table("card_key_rotations")
