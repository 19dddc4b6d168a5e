"""Shared fixtures: databases (SQLite always; PostgreSQL when reachable, required under CI=true),
a vault with a throw-away key, and small merchant sets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, text

from settleguard.cards.vault import Vault, load_vault
from settleguard.db.engine import open_engine

PG_URL = os.environ.get("SETTLEGUARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def _pg_reachable() -> str | None:
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} unreachable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


_PG_PROBLEM: str | None = None
_PG_CHECKED = False


def require_pg() -> None:
    global _PG_PROBLEM, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_PROBLEM = _pg_reachable()
        _PG_CHECKED = True
    if _PG_PROBLEM:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {_PG_PROBLEM}")
        pytest.skip(_PG_PROBLEM)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sg.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_pg()
    schema = f"sgtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as c:
        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each integration test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sg.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = open_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return load_vault(None, tmp_path / "test.key")


def count_statements(engine: Engine) -> list[str]:
    """Collect the SQL statements an engine runs (for set-based assertions)."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _log(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    return seen
