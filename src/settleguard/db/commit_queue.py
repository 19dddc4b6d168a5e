"""Work a unit of work queues to run just before its transaction commits, inside it.

The audit trail (audit/repository.py ``defer``) queues its events here: they are appended, hashed and
chained when the transaction commits, so the audit lock is the transaction's last write, and dropped
when it rolls back. The queue is part of the store, not of the audit domain: ``db.engine.create``
attaches it to every engine it returns (:func:`attach`), so whether queued work runs never depends on
which modules happened to be imported, and ``db`` does not import any domain.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event

_QUEUES = "settleguard.db.commit_queue"

Flush = Callable[[Connection, list[Any]], None]

# The dialects of the engines attached: one per ``create_engine`` call, shared by the engines
# ``execution_options`` derives and kept across ``dispose``; held weakly. (Asking SQLAlchemy's event registry
# instead, ``event.contains(engine.pool, ...)``, answered yes for a new engine whose pool reused the memory
# address of a disposed one, so the new engine went unattached and its queued work was dropped.)
_ATTACHED: weakref.WeakSet[Any] = weakref.WeakSet()


def enqueue(conn: Connection, queue: str, item: Any, flush: Flush) -> None:
    """Queue ``item`` on ``conn``'s transaction; at commit, ``flush(conn, items)`` runs once per queue with
    the items in order. Refused on an engine without :func:`attach` (the items would be dropped silently)."""
    if not attached(conn.engine):
        raise RuntimeError("queued work needs an engine from db.engine.create (db.commit_queue.attach)")
    queues: dict[str, tuple[Flush, list[Any]]] = conn.info.setdefault(_QUEUES, {})
    queues.setdefault(queue, (flush, []))[1].append(item)


def queued(conn: Connection, queue: str) -> int:
    """How many items ``queue`` holds on ``conn``'s open transaction."""
    found = conn.info.get(_QUEUES, {}).get(queue)
    return 0 if found is None else len(found[1])


def _on_commit(conn: Connection) -> None:
    queues = conn.info.pop(_QUEUES, None)
    for flush, items in (queues or {}).values():
        flush(conn, items)


def _on_rollback(conn: Connection) -> None:
    conn.info.pop(_QUEUES, None)


def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info.pop(_QUEUES, None)  # never carried over to the connection's next user


def attach(engine: Engine) -> Engine:
    """Run ``engine``'s queued work at commit and drop it at rollback or check-in. Idempotent."""
    if not attached(engine):
        event.listen(engine, "commit", _on_commit)
        event.listen(engine, "rollback", _on_rollback)
        event.listen(engine.pool, "checkin", _on_checkin)
        _ATTACHED.add(engine.dialect)
    return engine


def attached(engine: Engine) -> bool:
    """Whether :func:`attach` was called for ``engine`` (or the engine it was derived from by
    ``execution_options``: they share the pool and the listeners)."""
    return engine.dialect in _ATTACHED
