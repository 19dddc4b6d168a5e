"""Alembic environment: migrates the engine handed in through ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from settleguard.db.partitions import include_object  # transactions' day partitions are not metadata tables
from settleguard.db.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line use
    from settleguard.config import Settings
    from settleguard.db.engine import normalise_url

    engine = create_engine(normalise_url(Settings().db))

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
