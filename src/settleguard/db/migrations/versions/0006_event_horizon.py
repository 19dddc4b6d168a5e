"""event horizon: writers of followed event tables hold a shared advisory lock (PostgreSQL)

A statement trigger on card_events and payout_events takes the table's event lock shared before
any row (and its id) is made, held until the transaction ends; db.horizon.committed_horizon takes it
exclusively to learn the id below which nothing is in flight (see that module). SQLite needs
nothing: it has one writer at a time. The lock keys are db.horizon.LOCK_CLASS and FOLLOWED.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 21:20:00
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LOCK_CLASS = 0x5347  # keep equal to settleguard.db.horizon (a migration does not import app code)
FOLLOWED = {"card_events": 1, "payout_events": 2}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION sg_event_write_lock() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(TG_ARGV[0]::int, TG_ARGV[1]::int);
            RETURN NULL;
        END $$""")
    for table, key in FOLLOWED.items():
        op.execute(f"CREATE TRIGGER sg_{table}_write_lock BEFORE INSERT ON {table} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION sg_event_write_lock('{LOCK_CLASS}', '{key}')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in FOLLOWED:
        op.execute(f"DROP TRIGGER IF EXISTS sg_{table}_write_lock ON {table}")
    op.execute("DROP FUNCTION IF EXISTS sg_event_write_lock()")
