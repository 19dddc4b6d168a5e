"""payout lifecycle: split parts, new instructions after release, diagnoses, circuit breakers

Adds to payouts: parent_id (a split part names its parent), instruction_no (0 for the first
instruction; a release starts a new one with a new key) and category (the latest diagnosis);
to payout_attempts: category, rule_id, decision and batch_ref (the pain.001 file an
instruction went out in). New tables: bank_circuits (one circuit
breaker per bank), ops_alerts (treasury and operations alerts), worker_cursors (how far the
worker has read card_events) and report_imports (bank status reports applied once).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import settleguard.db.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('instruction_no', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('category', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_payouts_parent', ['parent_id'], unique=False)
    with op.batch_alter_table('payout_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('rule_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('decision', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('batch_ref', sa.String(length=80), nullable=True))
        batch_op.create_index('ix_payout_attempts_batch_ref', ['batch_ref'], unique=False)
    op.create_table('bank_circuits',
    sa.Column('bank_code', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opened_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('probe_payout_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bank_code', name=op.f('pk_bank_circuits'))
    )
    op.create_table('ops_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('dedupe_key', sa.String(length=128), nullable=False),
    sa.Column('bank_code', sa.String(length=16), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_alerts')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_ops_alerts_dedupe_key'))
    )
    op.create_table('worker_cursors',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_cursors'))
    )
    op.create_table('report_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=256), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('statuses', sa.Integer(), nullable=False),
    sa.Column('applied', sa.Integer(), nullable=False),
    sa.Column('imported_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_imports')),
    sa.UniqueConstraint('sha256', name=op.f('uq_report_imports_sha256'))
    )


def downgrade() -> None:
    op.drop_table('report_imports')
    op.drop_table('worker_cursors')
    op.drop_table('ops_alerts')
    op.drop_table('bank_circuits')
    with op.batch_alter_table('payout_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_attempts_batch_ref')
        batch_op.drop_column('batch_ref')
        batch_op.drop_column('decision')
        batch_op.drop_column('rule_id')
        batch_op.drop_column('category')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index('ix_payouts_parent')
        batch_op.drop_column('category')
        batch_op.drop_column('instruction_no')
        batch_op.drop_column('parent_id')
