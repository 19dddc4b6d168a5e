"""transactions partitioned by cycle_date on PostgreSQL (issue 23 item 6)

PostgreSQL only (SQLite: nothing). In the migration's one transaction: the table is renamed, a table
PARTITION BY RANGE (cycle_date) with the same columns and primary key takes its name, one partition per
business day present (``transactions_pYYYYMMDD``) and the DEFAULT partition (kept empty; db/partitions.py)
are created, the rows are copied, the old table dropped. Downgrade reverses it into one plain table (a
detached archive table is left as it is). See docs/operations.md 分区与归档.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

_DAYS = """
WITH RECURSIVE d(day) AS (
    (SELECT cycle_date FROM {t} ORDER BY cycle_date LIMIT 1)
    UNION ALL
    SELECT (SELECT cycle_date FROM {t} WHERE cycle_date > d.day ORDER BY cycle_date LIMIT 1) FROM d
    WHERE d.day IS NOT NULL
) SELECT day FROM d WHERE day IS NOT NULL
"""  # the distinct days through the primary key (a loose index scan), not a scan of every row


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE transactions RENAME TO transactions_unpartitioned")
    op.execute("ALTER TABLE transactions_unpartitioned RENAME CONSTRAINT pk_transactions "
               "TO pk_transactions_unpartitioned")
    op.execute("CREATE TABLE transactions (LIKE transactions_unpartitioned INCLUDING DEFAULTS) "
               "PARTITION BY RANGE (cycle_date)")
    op.execute("ALTER TABLE transactions ADD CONSTRAINT pk_transactions "
               "PRIMARY KEY (cycle_date, merchant_id, external_ref)")
    days = [r[0] for r in bind.execute(sa.text(_DAYS.format(t="transactions_unpartitioned")))]
    for d in days:
        _day_partition(d)
    op.execute("CREATE TABLE transactions_default PARTITION OF transactions DEFAULT")
    for d in days:  # straight into each partition, in key order
        op.execute(f"INSERT INTO transactions_p{d:%Y%m%d} SELECT * FROM transactions_unpartitioned "
                   f"WHERE cycle_date = DATE '{d.isoformat()}' ORDER BY merchant_id, external_ref")
    op.execute("DROP TABLE transactions_unpartitioned")
    op.execute("ANALYZE transactions")


def _day_partition(d: date) -> None:
    op.execute(f"CREATE TABLE transactions_p{d:%Y%m%d} PARTITION OF transactions "
               f"FOR VALUES FROM ('{d.isoformat()}') TO ('{(d + timedelta(days=1)).isoformat()}')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE transactions RENAME TO transactions_partitioned")
    op.execute("ALTER TABLE transactions_partitioned RENAME CONSTRAINT pk_transactions "
               "TO pk_transactions_partitioned")
    op.execute("CREATE TABLE transactions (LIKE transactions_partitioned INCLUDING DEFAULTS)")
    op.execute("ALTER TABLE transactions ADD CONSTRAINT pk_transactions "
               "PRIMARY KEY (cycle_date, merchant_id, external_ref)")
    op.execute("INSERT INTO transactions SELECT * FROM transactions_partitioned "
               "ORDER BY cycle_date, merchant_id, external_ref")
    op.execute("DROP TABLE transactions_partitioned")  # its partitions with it
    op.execute("ANALYZE transactions")
