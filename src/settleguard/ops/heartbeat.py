"""The worker's heartbeat: one row per worker process (``worker_heartbeats``), written each cycle.

``settleguard doctor`` reads the newest beat (:func:`latest`) to tell a worker that runs from one that died
or never started. A beat is small (one UPDATE, or one INSERT the first time) and its own transaction, so it
never holds a step's locks.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from settleguard.db.tables import worker_heartbeats as hb

PRUNE_AFTER = timedelta(days=7)  # beats of workers gone this long are deleted


@dataclass(frozen=True)
class Beat:
    worker: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    cycles: int
    run_id: str | None


def this_worker() -> tuple[str, str, int]:
    """(worker name ``host:pid``, host, pid) of this process."""
    host = socket.gethostname()[:96] or "localhost"
    pid = os.getpid()
    return f"{host}:{pid}"[:128], host, pid


def beat(engine: Engine, now: datetime, *, run_id: str | None = None, started_at: datetime | None = None,
         worker: tuple[str, str, int] | None = None) -> None:
    """Record that this worker finished a cycle at ``now``."""
    name, host, pid = worker or this_worker()
    with engine.begin() as conn:
        done = conn.execute(update(hb).where(hb.c.worker == name)
                            .values(beat_at=now, cycles=hb.c.cycles + 1, run_id=run_id)).rowcount
        if not done:
            conn.execute(insert(hb).values(worker=name, host=host, pid=pid, started_at=started_at or now,
                                           beat_at=now, cycles=1, run_id=run_id))
            conn.execute(delete(hb).where(hb.c.beat_at < now - PRUNE_AFTER))


def latest(conn: Connection) -> Beat | None:
    """The newest beat of any worker, or None when no worker ever beat (or the table is missing)."""
    row = conn.execute(select(hb).order_by(hb.c.beat_at.desc()).limit(1)).first()
    if row is None:
        return None
    return Beat(row.worker, row.host, row.pid, row.started_at, row.beat_at, row.cycles, row.run_id)


def count_since(conn: Connection, since: datetime) -> int:
    """Workers that beat at or after ``since``."""
    return int(conn.execute(select(func.count()).select_from(hb).where(hb.c.beat_at >= since)).scalar_one())
