"""The store: one SQLAlchemy MetaData, Alembic migrations, engines for SQLite and PostgreSQL."""
