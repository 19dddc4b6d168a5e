"""merchant onboarding: identity, contact and contract facts of merchants; terminal serial numbers

- merchants: entity_kind (individual / enterprise / micro), uscc, legal_person_id_masked and
  legal_person_id_hash (+ id_key_version: the resident ID number is kept only masked and as a keyed
  hash, for duplicate checks), contact_mobile, fee_effective_from, status_reason, status_changed_at,
  import_id; indexes on uscc and the ID hash (duplicates).
- settlement_accounts: an index on pan_masked (duplicate cards: only accounts with the same mask are
  decrypted and compared).
- terminals: serial_no (SN) with an index.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_MERCHANT_COLUMNS = (
    ("entity_kind", sa.String(length=16)),
    ("uscc", sa.String(length=18)),
    ("legal_person_id_masked", sa.String(length=18)),
    ("legal_person_id_hash", sa.String(length=64)),
    ("id_key_version", sa.Integer()),
    ("contact_mobile", sa.String(length=16)),
    ("fee_effective_from", sa.Date()),
    ("status_reason", sa.String(length=256)),
    ("status_changed_at", UTCDateTime(timezone=True)),
    ("import_id", sa.Integer()),
)


def upgrade() -> None:
    for name, type_ in _MERCHANT_COLUMNS:
        op.add_column("merchants", sa.Column(name, type_, nullable=True))
    op.create_index("ix_merchants_uscc", "merchants", ["uscc"])
    op.create_index("ix_merchants_legal_person_id_hash", "merchants", ["legal_person_id_hash"])
    op.create_index("ix_settlement_accounts_pan_masked", "settlement_accounts", ["pan_masked"])
    op.add_column("terminals", sa.Column("serial_no", sa.String(length=32), nullable=True))
    op.create_index("ix_terminals_serial_no", "terminals", ["serial_no"])


def downgrade() -> None:
    op.drop_index("ix_terminals_serial_no", table_name="terminals")
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("serial_no")
    op.drop_index("ix_settlement_accounts_pan_masked", table_name="settlement_accounts")
    op.drop_index("ix_merchants_legal_person_id_hash", table_name="merchants")
    op.drop_index("ix_merchants_uscc", table_name="merchants")
    with op.batch_alter_table("merchants") as batch:
        for name, _ in reversed(_MERCHANT_COLUMNS):
            batch.drop_column(name)
