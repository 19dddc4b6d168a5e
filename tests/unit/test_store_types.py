"""The store keeps timezone-aware times and refuses naive ones; URLs are normalised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from settleguard.db import tables as t
from settleguard.db.engine import head_revision, normalise_url, open_engine


def test_postgres_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("postgres://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_aware_times_come_back_in_utc_and_naive_times_are_refused(tmp_path: Path) -> None:
    eng = open_engine(f"sqlite:///{tmp_path / 'x.db'}")
    beijing = timezone(timedelta(hours=8))
    with eng.begin() as c:
        c.execute(t.imports.insert().values(kind="k", sha256="a" * 64, filename="f", encoding="utf-8",
                                            row_count=1, imported_at=datetime(2026, 11, 20, 9, 0, tzinfo=beijing)))
    with eng.connect() as c:
        got = c.execute(select(t.imports.c.imported_at)).scalar_one()
    assert got == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    assert got.tzinfo is not None
    with pytest.raises(StatementError, match="naive datetime"), eng.begin() as c:
        c.execute(t.imports.insert().values(kind="k", sha256="b" * 64, filename="f", encoding="utf-8",
                                            row_count=1, imported_at=datetime(2026, 11, 20, 9, 0)))  # noqa: DTZ001
    eng.dispose()


def test_a_fresh_database_is_migrated_on_first_use(tmp_path: Path) -> None:
    eng = open_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision(eng)
        names = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(t.metadata.tables) <= names
    eng.dispose()
