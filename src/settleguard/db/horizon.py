"""Reading an append-only event table in id order without skipping a late commit.

The worker follows ``card_events`` (releases after a re-binding or a restored card) and
``payout_events`` (automatic cases) with a cursor: the last id it acted on. On PostgreSQL ids come
from a sequence when a row is inserted, not when its transaction commits, so a transaction that
inserted id 7 may commit after one that inserted id 8. A reader that saw 8 and moved its cursor
there would never see 7: a card restored, and the merchant's money left held.

``committed_horizon`` is the highest id below which no insert is still in flight, so that a reader
which takes only ids up to it never sees a smaller id appear later:

- SQLite has one writer at a time; ids are handed out in commit order: the horizon is max(id).
- PostgreSQL: every transaction that inserts into a followed table holds that table's event lock
  (an advisory lock) *shared* from before its first id is drawn until it ends — a statement
  trigger takes it (migration 0006). The reader takes the lock *exclusively* in a transaction of
  its own, which can only happen when no such writer is open, reads max(id) and lets go at once;
  every id up to that max has then committed or rolled back. The reader holds no other lock, and
  gives up after ``wait_ms`` (returns None: read nothing this round) so it can never be part of
  a deadlock or hold writers up for long.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from settleguard.db import tables as t

LOCK_CLASS = 0x5347  # "SG": the first key of the two-key advisory locks below
FOLLOWED = {"card_events": 1, "payout_events": 2}  # table -> second key (also in migration 0006)


def committed_horizon(engine: Engine, table: str, *, wait_ms: int = 500) -> int | None:
    """The highest id of ``table`` (one of FOLLOWED) up to which every insert has finished, or None
    when PostgreSQL writers kept the lock for longer than ``wait_ms``; 0 for an empty table."""
    key = FOLLOWED[table]
    tbl = t.metadata.tables[table]
    top = select(func.coalesce(func.max(tbl.c.id), 0))
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn:
            return int(conn.execute(top).scalar_one())
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait_ms)}ms'")
            conn.execute(text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key})
            return int(conn.execute(top).scalar_one())
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: writers busy
            return None
        raise
