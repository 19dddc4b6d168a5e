"""SQL of the audit trail: appending under a lock, reading the chain, digests of covered rows.

Appends are linear under concurrency: on PostgreSQL a transaction-scoped advisory lock is taken
before the last hash is read (held until commit, so the next writer reads this event); on SQLite
the write transaction serialises writers, and a no-op UPDATE takes the write lock first when the
event is the transaction's first write.

``defer`` queues an event on the connection and the queue is appended when the transaction
commits (db.commit_queue: a ``commit`` listener, still inside the transaction, that ``db.engine.create``
attaches to every engine it returns, so no import decides whether events are written; an engine without
it refuses ``defer``): the audit lock is then the last
lock a transaction takes, so it cannot deadlock with row locks taken after a change (a circuit
breaker row, say), it is held only for the append itself, and the chain's order is commit order.
A rollback drops the queue with the change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, func, insert, or_, select, text

from settleguard.audit import model
from settleguard.db import commit_queue
from settleguard.db import tables as t

# pg_advisory_xact_lock key of the audit chain ("SGAUDIT" as a number).
ADVISORY_KEY = 0x53_47_41_55_44_49_54
_SEP_ROW = "\x1e"


def lock(conn: Connection) -> None:
    """Serialise appends until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
    else:
        conn.execute(text("UPDATE audit_events SET id = id WHERE id < 0"))


def _event(r: Any) -> model.Event:
    return model.Event(int(r.id), r.at, r.actor, r.kind, r.subject_type, r.subject_id, r.payload, r.prev_hash, r.hash)


def last(conn: Connection) -> model.Event | None:
    a = t.audit_events
    r = conn.execute(select(a).order_by(a.c.id.desc()).limit(1)).first()
    return None if r is None else _event(r)


def append(conn: Connection, *, at: datetime, actor: str, kind: str, subject_type: str | None,
           subject_id: str | None, payload: Mapping[str, Any]) -> model.Event:
    """Append one event after the current last one, in the caller's transaction."""
    lock(conn)
    e = model.make_event(last(conn), at=at, actor=actor[:64], kind=kind[:48],
                         subject_type=None if subject_type is None else subject_type[:24],
                         subject_id=None if subject_id is None else subject_id[:64], payload=payload)
    conn.execute(insert(t.audit_events).values(
        id=e.id, at=e.at, actor=e.actor, kind=e.kind, subject_type=e.subject_type, subject_id=e.subject_id,
        payload=e.payload, prev_hash=e.prev_hash, hash=e.hash))
    return e


def by_id(conn: Connection, event_id: int) -> model.Event | None:
    a = t.audit_events
    r = conn.execute(select(a).where(a.c.id == event_id)).first()
    return None if r is None else _event(r)


_QUEUE = "audit.events"


def defer(conn: Connection, *, at: datetime, actor: str, kind: str, subject_type: str | None,
          subject_id: str | None, payload: Mapping[str, Any]) -> None:
    """Queue an event; it is appended (hashed and chained) when ``conn``'s transaction commits
    (db.commit_queue). Refused on an engine without the commit queue (its events would be dropped)."""
    model.make_event(None, at=at, actor=actor, kind=kind, subject_type=subject_type, subject_id=subject_id,
                     payload=payload)  # refuses a naive time or a payload that is not JSON now, not at commit
    commit_queue.enqueue(conn, _QUEUE, dict(at=at, actor=actor, kind=kind, subject_type=subject_type,
                                            subject_id=subject_id, payload=dict(payload)), _append_all)


def pending(conn: Connection) -> int:
    return commit_queue.queued(conn, _QUEUE)


def _append_all(conn: Connection, items: list[Any]) -> None:
    for item in items:
        append(conn, **item)


def attach(engine: Engine) -> Engine:
    """Record ``engine``'s deferred events at commit (its commit queue, db.commit_queue). Idempotent;
    ``db.engine.create`` does it for every engine it returns."""
    return commit_queue.attach(engine)


def attached(engine: Engine) -> bool:
    """Whether deferred events of ``engine`` are recorded at commit."""
    return commit_queue.attached(engine)


def chain(conn: Connection, batch: int = 5000) -> Iterator[model.Event]:
    """Every event in id order, read in pages."""
    a = t.audit_events
    after = -1
    while True:
        rows = conn.execute(select(a).where(a.c.id > after).order_by(a.c.id).limit(batch)).all()
        if not rows:
            return
        yield from (_event(r) for r in rows)
        after = int(rows[-1].id)


def listing(conn: Connection, *, kind: str | None = None, subject: str | None = None,
            limit: int = 50) -> list[model.Event]:
    """The latest events, newest first; ``kind`` matches a prefix ("payout" finds payout.*),
    ``subject`` is ``type:id`` or a bare id."""
    a = t.audit_events
    q = select(a).order_by(a.c.id.desc()).limit(limit)
    if kind:
        q = q.where(or_(a.c.kind == kind, a.c.kind.like(kind.replace("%", "") + ".%")))
    if subject:
        st, _, sid = subject.rpartition(":")
        q = q.where(a.c.subject_id == sid)
        if st:
            q = q.where(a.c.subject_type == st)
    return [_event(r) for r in conn.execute(q)]


def last_of_kinds(conn: Connection, kinds: Sequence[str], subject: tuple[str, str]) -> model.Event | None:
    """The latest event of one of ``kinds`` about ``subject`` (through the subject index)."""
    a = t.audit_events
    r = conn.execute(select(a).where(a.c.subject_type == subject[0], a.c.subject_id == subject[1],
                                     a.c.kind.in_(list(kinds))).order_by(a.c.id.desc()).limit(1)).first()
    return None if r is None else _event(r)


# --- rows covered by one event ------------------------------------------------------------

_DIGEST_SQL = {
    # One text per row (fields joined by U+001F, the reason length-prefixed, no status contains "~"),
    # rows joined by U+001E in id order; created_at as "YYYY-MM-DD HH:MM:SS.ffffff" UTC on both backends.
    "payout_events": {
        # SQLite: one range per query, no ORDER BY subquery (it costs ~40 % more): a rowid range scan
        # yields rows in id order; a plan that did not would only raise a false alarm in verify.
        # printf builds the same text as || chains, in about three quarters of the time.
        "sqlite": ("SELECT count(*), group_concat(printf('%d' || char(31) || '%d' || char(31) || '%s' || char(31)"
                   " || '%s' || char(31) || '%d' || char(31) || '%s' || char(31) || '%s', id, payout_id,"
                   " coalesce(from_status, '~'), to_status, length(reason), reason, created_at), char(30))"
                   " FROM payout_events WHERE {where}"),
        "postgresql": ("SELECT count(*), string_agg(id::text || chr(31) || payout_id::text || chr(31)"
                       " || coalesce(from_status, '~') || chr(31) || to_status || chr(31) || length(reason)::text"
                       " || chr(31) || reason || chr(31)"
                       " || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), chr(30) ORDER BY id)"
                       " FROM payout_events WHERE {where}"),
    },
}


def digest(conn: Connection, table: str, ranges: Sequence[Sequence[int]]) -> model.Recomputed:
    """Count and SHA-256 of the rows of ``table`` with ids in ``ranges``, concatenated in SQL."""
    if not ranges:
        return model.Recomputed(0, model.sha256_text(""))
    sql = _DIGEST_SQL[table][conn.dialect.name]
    if conn.dialect.name == "sqlite":
        total, parts = 0, []
        for a, b in ranges:
            n, joined = conn.execute(text(sql.format(where="id BETWEEN :a AND :b")), {"a": int(a), "b": int(b)}).one()
            total += int(n)
            if joined:
                parts.append(joined)
        return model.Recomputed(total, model.sha256_text(_SEP_ROW.join(parts)))
    where = " OR ".join(f"id BETWEEN :a{i} AND :b{i}" for i in range(len(ranges)))
    params: dict[str, int] = {}
    for i, (a, b) in enumerate(ranges):
        params[f"a{i}"], params[f"b{i}"] = int(a), int(b)
    n, joined = conn.execute(text(sql.format(where=where)), params).one()
    return model.Recomputed(int(n), model.sha256_text(joined or ""))


def insert_rows_covered(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Insert ``rows`` and return the id ranges they got.

    SQLite, more than a few rows: one plain executemany, then the ids above the largest before it (one
    writer at a time, as in :func:`insert_select_covered`): SQLite's RETURNING with parameter order
    would insert the rows one statement at a time."""
    if not rows:
        return []
    if conn.dialect.name != "postgresql" and len(rows) > 4:
        before = int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
        conn.execute(insert(table), list(rows))
        return model.id_ranges(int(i) for i in conn.execute(
            select(table.c.id).where(table.c.id > before).order_by(table.c.id)).scalars())
    ids = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)).scalars()
    return model.id_ranges(int(i) for i in ids)


def insert_select_covered(conn: Connection, table: Table, stmt: Insert) -> list[tuple[int, int]]:
    """Run an INSERT ... SELECT into ``table`` and return the id ranges of its rows, in SQL.

    PostgreSQL: the insert is a CTE whose ids are grouped into runs (a concurrent insert may take
    ids in between). SQLite: one writer at a time and new ids follow the largest, so the rows are
    the ids after the largest before the insert.
    """
    if conn.dialect.name == "postgresql":
        ins = stmt.returning(table.c.id).cte("ins")
        runs = select(ins.c.id.label("id"), (ins.c.id - func.row_number().over(order_by=ins.c.id)).label("g")).subquery()
        return [(int(a), int(b)) for a, b in conn.execute(
            select(func.min(runs.c.id), func.max(runs.c.id)).group_by(runs.c.g).order_by(func.min(runs.c.id)))]
    before = int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
    n = conn.execute(stmt).rowcount
    return [(before + 1, before + n)] if n > 0 else []


def cover(conn: Connection, table: Table, ranges: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """The ``covers`` payload part for rows just inserted."""
    d = digest(conn, table.name, ranges)
    return model.cover(table.name, ranges, d.count, d.digest)
