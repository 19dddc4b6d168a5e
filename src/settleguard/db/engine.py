"""Engine factory and migrations: SQLite by default, PostgreSQL (psycopg 3) by URL.

``open_engine(url)`` returns an engine whose database is migrated to the latest Alembic
revision (a fresh database is created on first use). SQLite runs in WAL mode with
foreign keys on.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


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


def _explicit_begin() -> bool:
    """Was the transaction begun with ``engine.begin()`` / ``conn.begin()`` (a unit of work), rather
    than by SQLAlchemy's autobegin on the first statement of ``engine.connect()`` (a read)?"""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return True
        if frame.f_code.co_name == "_autobegin":
            return False
        frame = frame.f_back
    return True


def _sqlite_begin(conn: Any) -> None:
    # A unit of work takes the write lock when it starts (IMMEDIATE): a deferred transaction that
    # reads and then writes after another process committed fails at once with "database is
    # locked" (SQLite cannot wait for a newer snapshot), an immediate one waits (busy_timeout).
    # Reads through engine.connect() stay deferred, so WAL readers never wait for a writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _explicit_begin() else "BEGIN")


def create(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for ``url`` without running migrations. ``pool_size`` (PostgreSQL): connections kept open,
    as many again opened beyond them under a burst (default: SQLAlchemy's 5 + 10)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if pool_size is None:
        return create_engine(url, pool_pre_ping=True)
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


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
