"""people in the loop: notices, cases, audit

Adds notification_preferences (per merchant: webhook URL and sealed secret, email, SMS, channels,
language), notification_deliveries (the delivery queue, leased) and notification_attempts (the
delivery log); cases (工单) with case_payouts, case_contacts and case_notes; and audit_events
(append-only, hash-chained).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 18:32:02.827046
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import settleguard.db.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('subject_type', sa.String(length=24), nullable=True),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_events_hash'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=256), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('assignee', sa.String(length=64), nullable=True),
    sa.Column('sla_due_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_cases_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_cases_dedupe_key'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_merchant', ['merchant_id'], unique=False)
        batch_op.create_index('ix_cases_status_sla', ['status', 'sla_due_at'], unique=False)

    op.create_table('notification_preferences',
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('webhook_url', sa.String(length=512), nullable=True),
    sa.Column('webhook_secret_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('webhook_secret_nonce', sa.LargeBinary(), nullable=True),
    sa.Column('webhook_key_version', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('sms_phone', sa.String(length=20), nullable=True),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('lang', sa.String(length=8), server_default='zh', nullable=False),
    sa.Column('updated_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_notification_preferences_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_notification_preferences'))
    )
    op.create_table('case_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('party', sa.String(length=24), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('contact_name', sa.String(length=128), nullable=True),
    sa.Column('at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_contacts_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_contacts'))
    )
    with op.batch_alter_table('case_contacts', schema=None) as batch_op:
        batch_op.create_index('ix_case_contacts_case', ['case_id'], unique=False)

    op.create_table('case_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_notes_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_notes'))
    )
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.create_index('ix_case_notes_case', ['case_id'], unique=False)

    op.create_table('case_payouts',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_payouts_case_id_cases')),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_case_payouts_payout_id_payouts')),
    sa.PrimaryKeyConstraint('case_id', 'payout_id', name=op.f('pk_case_payouts'))
    )
    with op.batch_alter_table('case_payouts', schema=None) as batch_op:
        batch_op.create_index('ix_case_payouts_payout', ['payout_id'], unique=False)

    op.create_table('notification_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_notification_deliveries_notification_id_notifications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('notification_id', 'channel', name='uq_notification_deliveries_notification_channel')
    )
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_notification_deliveries_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('notification_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempt_no', sa.Integer(), nullable=False),
    sa.Column('started_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', settleguard.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['notification_deliveries.id'], name=op.f('fk_notification_attempts_delivery_id_notification_deliveries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_attempts'))
    )
    with op.batch_alter_table('notification_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_notification_attempts_delivery', ['delivery_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notification_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_attempts_delivery')

    op.drop_table('notification_attempts')
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_deliveries_due')

    op.drop_table('notification_deliveries')
    with op.batch_alter_table('case_payouts', schema=None) as batch_op:
        batch_op.drop_index('ix_case_payouts_payout')

    op.drop_table('case_payouts')
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_case_notes_case')

    op.drop_table('case_notes')
    with op.batch_alter_table('case_contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_case_contacts_case')

    op.drop_table('case_contacts')
    op.drop_table('notification_preferences')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_status_sla')
        batch_op.drop_index('ix_cases_merchant')

    op.drop_table('cases')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_subject')

    op.drop_table('audit_events')
