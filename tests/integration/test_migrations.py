"""The Alembic migrations build exactly the schema that db/tables.py declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from settleguard.db.engine import current_revision, head_revision, upgrade
from settleguard.db.partitions import include_object
from settleguard.db.tables import metadata


def test_migrated_schema_matches_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": include_object}), metadata)
    assert diff == []


def test_upgrading_an_up_to_date_database_changes_nothing(engine: Engine) -> None:
    assert current_revision(engine) == head_revision(engine)
    before, after = upgrade(engine)
    assert before == after == head_revision(engine)
