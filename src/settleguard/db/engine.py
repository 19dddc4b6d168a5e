"""Engine factory and migrations: SQLite by default, PostgreSQL (psycopg 3) by URL.

``open_engine(url)`` returns an engine whose database is migrated to the latest Alembic
revision (a fresh database is created on first use). SQLite runs in WAL mode with
foreign keys on.

Every engine :func:`create` returns has its commit queue attached (db/commit_queue.py, where the audit
trail's deferred events wait for commit): recording does not depend on which modules were imported, and
``db`` imports no domain.

SQLite transactions: a unit of work (``engine.begin()``, ``conn.begin()``) starts with ``BEGIN
IMMEDIATE`` and so takes the write lock when it starts; a read (``engine.connect()``, whose first
statement begins a transaction by SQLAlchemy's autobegin) starts with a deferred ``BEGIN``, so WAL
readers never wait for a writer. The two are told apart with public events only: SQLAlchemy runs
``before_execute`` before it autobegins, so a statement executed while the connection is not in a
transaction marks the ``begin`` that follows as an autobegin; an explicit ``begin()`` fires ``begin``
with no statement before it. The mark is cleared at every begin and for every new ``Connection``;
the one case it can mislead is a statement that fails before it begins (a compile error) followed by
an explicit ``conn.begin()`` on the same ``Connection``, which then starts deferred: still correct,
only without the early write lock. A savepoint (``begin_nested()``) on a connection not yet in a
transaction begins IMMEDIATE (the frame walk this replaced began it deferred); nothing does that.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from settleguard.db import commit_queue


class DatabaseError(RuntimeError):
    """The database cannot be opened or migrated."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so reads
    # and writes of one unit of work are in one transaction (SQLAlchemy's pysqlite recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache
    cur.close()


_AUTOBEGIN = "settleguard.db.autobegin"  # Connection.info key: the next begin is an autobegin (a read)


def _mark_autobegin(conn: Connection, *_args: Any) -> None:
    # before_execute: a statement outside a transaction is about to autobegin one.
    if not conn.in_transaction():
        conn.info[_AUTOBEGIN] = True


def _clear_mark(conn: Connection) -> None:
    # engine_connect: a mark left by a statement that failed before it began (compile error) never
    # reaches the next user of the pooled connection.
    conn.info.pop(_AUTOBEGIN, None)


def _sqlite_begin(conn: Connection) -> None:
    # A unit of work takes the write lock when it starts (IMMEDIATE): a deferred transaction that
    # reads and then writes after another process committed fails at once with "database is
    # locked" (SQLite cannot wait for a newer snapshot), an immediate one waits (busy_timeout).
    # Reads through engine.connect() stay deferred, so WAL readers never wait for a writer.
    read = conn.info.pop(_AUTOBEGIN, False)
    conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")
    conn.info.pop(_AUTOBEGIN, None)  # set again by the BEGIN statement itself (no transaction yet)


def create(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for ``url`` without running migrations. ``pool_size`` (PostgreSQL): connections kept open,
    as many again opened beyond them under a burst (default: SQLAlchemy's 5 + 10)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "engine_connect", _clear_mark)
        event.listen(engine, "before_execute", _mark_autobegin)
        event.listen(engine, "begin", _sqlite_begin)
    elif pool_size is None:
        engine = create_engine(url, pool_pre_ping=True)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    commit_queue.attach(engine)  # the audit trail's deferred events are written at commit
    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "settleguard.db:migrations")
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate to head; returns (revision before, revision after)."""
    before = current_revision(engine)
    try:
        command.upgrade(alembic_config(engine), "head")
    except Exception as exc:  # pragma: no cover - surfaced to the CLI with the URL
        raise DatabaseError(f"cannot migrate {engine.url.render_as_string()}: {exc}") from exc
    return before, current_revision(engine)


def open_engine(url: str) -> Engine:
    """An engine for ``url``, migrated to the latest revision if it is behind."""
    engine = create(url)
    try:
        if current_revision(engine) != head_revision(engine):
            upgrade(engine)
    except DatabaseError:
        raise
    except Exception as exc:
        raise DatabaseError(f"cannot open database {engine.url.render_as_string()}: {exc}") from exc
    return engine


def is_transient_conflict(exc: BaseException) -> bool:
    """A conflict with another transaction that running the same unit of work again resolves:
    a PostgreSQL deadlock or serialization failure, or SQLite's "database is locked"."""
    orig = getattr(exc, "orig", exc)
    name = type(orig).__name__
    if name in ("DeadlockDetected", "SerializationFailure"):
        return True
    return "database is locked" in str(orig)
