"""risk features, scores, evidence and holds (helper I, issue 22 items 1-3)

- risk_features: per business day and merchant, the counts the risk rules read (sales, amounts, round / night /
  credit / just-under-a-limit / above-the-MCC's-ticket sales, most sales on one card token, voids, refunds and
  those without a matching sale); clustered on (cycle_date, merchant_id), with an index by merchant for history.
- risk_days: one row per computed day (merchants, rows, the digest of the parameters the counts depend on).
- risk_scores: the flagged merchants of a day: score, fired rules, details (JSON), explanation zh / en, the case.
- risk_evidence: the transactions (external_ref) behind each fired rule of a flagged merchant.
- risk_holds: an operator's risk hold on a merchant's payouts, released only by an operator.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_COUNTS = ("sale_count", "round_count", "night_count", "credit_count")
_COUNTS_AFTER = ("under_limit_count", "over_mcc_count", "void_count", "refund_count", "unmatched_count")


def upgrade() -> None:
    op.create_table(
        "risk_features",
        sa.Column("cycle_date", sa.Date(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("sale_count", sa.Integer(), nullable=False),
        sa.Column("sale_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_sale_fen", sa.BigInteger(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in _COUNTS[1:]),
        sa.Column("card_max", sa.Integer(), nullable=True),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in _COUNTS_AFTER),
        sa.PrimaryKeyConstraint("cycle_date", "merchant_id", name=op.f("pk_risk_features")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_risk_features_merchant", "risk_features", ["merchant_id", "cycle_date"])
    op.create_table(
        "risk_days",
        sa.Column("cycle_date", sa.Date(), nullable=False),
        sa.Column("merchants", sa.Integer(), nullable=False),
        sa.Column("txn_rows", sa.BigInteger(), nullable=False),
        sa.Column("params_digest", sa.String(length=64), nullable=False),
        sa.Column("computed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("scanned_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("flagged", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("cycle_date", name=op.f("pk_risk_days")),
    )
    op.create_table(
        "risk_scores",
        sa.Column("cycle_date", sa.Date(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rules", sa.String(length=512), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("scanned_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cycle_date", "merchant_id", name=op.f("pk_risk_scores")),
    )
    op.create_index("ix_risk_scores_merchant", "risk_scores", ["merchant_id"])
    op.create_table(
        "risk_evidence",
        sa.Column("cycle_date", sa.Date(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("external_ref", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("cycle_date", "merchant_id", "rule_id", "external_ref", name=op.f("pk_risk_evidence")),
    )
    op.create_table(
        "risk_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("placed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("released_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_holds")),
    )
    op.create_index("ix_risk_holds_merchant", "risk_holds", ["merchant_id", "released_at"])


def downgrade() -> None:
    op.drop_index("ix_risk_holds_merchant", table_name="risk_holds")
    op.drop_table("risk_holds")
    op.drop_table("risk_evidence")
    op.drop_index("ix_risk_scores_merchant", table_name="risk_scores")
    op.drop_table("risk_scores")
    op.drop_table("risk_days")
    op.drop_index("ix_risk_features_merchant", table_name="risk_features")
    op.drop_table("risk_features")
