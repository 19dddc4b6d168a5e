"""fee contracts with history; terminal addresses, retirement and events

- fee_contracts: one row per fee contract version of a merchant (schedule, effective date, who, why),
  never updated; the contract in force on a transaction's business day prices it. Existing merchants get
  their first contract from merchants.fee_schedule_id (effective from fee_effective_from, else from 2000-01-01:
  in force for every day they have), actor ``migration``.
- terminals: address (where the device stands, 移机 changes it) and retired_at.
- terminal_events: every terminal change (add, move, replace, retire) with old/new serial and address.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("terminals", sa.Column("address", sa.String(length=128), nullable=True))
    op.add_column("terminals", sa.Column("retired_at", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "fee_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_fee_contracts_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["schedule_id"], ["fee_schedules.id"],
                                name=op.f("fk_fee_contracts_schedule_id_fee_schedules")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_contracts")),
        sa.UniqueConstraint("merchant_id", "effective_from", name="uq_fee_contracts_merchant_effective"),
    )
    op.create_table(
        "terminal_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("old_serial_no", sa.String(length=32), nullable=True),
        sa.Column("new_serial_no", sa.String(length=32), nullable=True),
        sa.Column("old_address", sa.String(length=128), nullable=True),
        sa.Column("new_address", sa.String(length=128), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_terminal_events_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["terminal_id"], ["terminals.id"],
                                name=op.f("fk_terminal_events_terminal_id_terminals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_events")),
    )
    op.create_index("ix_terminal_events_terminal", "terminal_events", ["terminal_id"])
    op.execute(
        "INSERT INTO fee_contracts (merchant_id, schedule_id, effective_from, actor, reason, created_at) "
        "SELECT id, fee_schedule_id, COALESCE(fee_effective_from, '2000-01-01'), 'migration', "
        "'迁移时的合同 contract at migration', created_at FROM merchants"
    )


def downgrade() -> None:
    op.drop_index("ix_terminal_events_terminal", table_name="terminal_events")
    op.drop_table("terminal_events")
    op.drop_table("fee_contracts")
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("retired_at")
        batch.drop_column("address")
