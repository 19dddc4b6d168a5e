"""guidance feedback (issue 22 item 6, 反馈机制): merchants and support staff mark the guidance of a payout's
failure helpful or not and say why.

- guidance_feedback: payout, merchant, the diagnosis's category and rule (read on the server), helpful, the reason
  (masked card numbers, at most 500 characters), who (merchant | staff, the username) and when.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guidance_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("payout_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_guidance_feedback"),
    )
    op.create_index("ix_guidance_feedback_rule", "guidance_feedback", ["category", "rule_id"])
    op.create_index("ix_guidance_feedback_payout", "guidance_feedback", ["payout_id"])


def downgrade() -> None:
    op.drop_index("ix_guidance_feedback_payout", table_name="guidance_feedback")
    op.drop_index("ix_guidance_feedback_rule", table_name="guidance_feedback")
    op.drop_table("guidance_feedback")
