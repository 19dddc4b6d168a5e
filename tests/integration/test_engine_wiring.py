"""What ``db.engine.create`` attaches to every engine it returns, explicitly.

1. The audit trail's deferred events (``audit.repository.attach``): written at commit on every such
   engine whatever was imported before; an engine made otherwise has no listener and refuses them.
2. SQLite: a unit of work (``engine.begin()``, ``conn.begin()``) starts with BEGIN IMMEDIATE and holds
   the write lock from its start; a read (``engine.connect()``) starts with a deferred BEGIN and never
   waits for a writer.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, func, insert, select, text
from sqlalchemy.exc import CompileError

from settleguard.audit import repository as arepo
from settleguard.db import tables as t
from settleguard.db.engine import create, open_engine

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def test_an_engine_from_create_records_deferred_events_though_audit_was_not_imported_before(db_url: str) -> None:
    script = textwrap.dedent("""
        import sys
        from datetime import UTC, datetime
        from sqlalchemy import func, select
        from settleguard.db.engine import open_engine
        assert "settleguard.audit.repository" not in sys.modules, "imported too early for this test"
        engine = open_engine(sys.argv[1])
        from settleguard.audit import repository as repo
        from settleguard.db import tables as t
        with engine.begin() as conn:
            repo.defer(conn, at=datetime(2026, 11, 23, tzinfo=UTC), actor="test", kind="test.attach",
                       subject_type=None, subject_id=None, payload={"n": 1})
        with engine.connect() as conn:
            print(conn.execute(select(func.count()).select_from(t.audit_events)
                               .where(t.audit_events.c.kind == "test.attach")).scalar_one())
    """)
    out = subprocess.run([sys.executable, "-c", script, db_url], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1"]


def test_attach_is_idempotent_and_every_created_engine_is_attached(engine: Engine) -> None:
    assert arepo.attached(engine)
    assert arepo.attached(engine.execution_options(logging_token="x"))
    n = len(engine.dispatch.commit)
    arepo.attach(engine)
    assert len(engine.dispatch.commit) == n
    with engine.begin() as conn:
        arepo.defer(conn, at=NOW, actor="test", kind="test.once", subject_type=None, subject_id=None, payload={})
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_events)
                            .where(t.audit_events.c.kind == "test.once")).scalar_one() == 1


def test_a_plain_engine_has_no_audit_listener_and_refuses_deferred_events(engine: Engine) -> None:
    plain = create_engine(engine.url)
    try:
        assert not arepo.attached(plain)
        assert len(plain.dispatch.commit) == 0
        with pytest.raises(RuntimeError, match="db.engine.create"), plain.begin() as conn:
            arepo.defer(conn, at=NOW, actor="test", kind="test.plain", subject_type=None, subject_id=None,
                        payload={})
    finally:
        plain.dispose()


# --- SQLite: units of work take the write lock at start, reads stay deferred ---------------------------------

def _begins(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, stmt, *_a: seen.append(stmt) if stmt.startswith("BEGIN") else None)
    return seen


def test_sqlite_units_of_work_begin_immediate_and_reads_deferred(tmp_path: Path) -> None:
    engine = create(f"sqlite:///{tmp_path / 'b.db'}")
    seen = _begins(engine)
    with engine.begin() as conn:
        conn.execute(text("select 1"))
    assert seen == ["BEGIN IMMEDIATE"]
    with engine.connect() as conn:
        conn.execute(text("select 1"))
        conn.commit()
        with conn.begin():  # explicit, on a connection from connect(): a unit of work
            conn.execute(text("select 2"))
        conn.execute(text("select 3"))  # autobegin again: a read
        conn.rollback()
        with conn.begin_nested():  # a savepoint with no transaction yet: a unit of work
            conn.execute(text("select 4"))
    with engine.connect() as conn, pytest.raises(CompileError):
        conn.execute(insert(t.audit_events).values(no_such_column=1))  # fails before it begins
    with engine.begin() as conn:  # ... and does not turn the next unit of work into a read
        conn.execute(text("select 5"))
    assert seen == ["BEGIN IMMEDIATE", "BEGIN", "BEGIN IMMEDIATE", "BEGIN", "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
    engine.dispose()


def test_sqlite_a_unit_of_work_holds_the_write_lock_from_its_start_and_readers_never_wait(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    engine = open_engine(url)
    other = sqlite3.connect(tmp_path / "lock.db", timeout=0.05, isolation_level=None)
    try:
        with engine.begin() as conn:
            conn.execute(text("select 1"))  # nothing written yet: the lock was taken by BEGIN IMMEDIATE
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            with engine.connect() as reader:  # a read meanwhile: deferred, answered at once (WAL)
                assert reader.execute(select(func.count()).select_from(t.audit_events)).scalar_one() == 0
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
        with engine.connect() as reader:
            reader.execute(text("select 1"))  # a read holds no write lock
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()
