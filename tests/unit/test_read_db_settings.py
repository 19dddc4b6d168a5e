"""``read_db`` (the standby the console's and the API's GET handlers read from; docs/operations.md): the
composition root's read engine, and its password never written to the audit trail's config snapshot."""

from __future__ import annotations

from pathlib import Path

from settleguard.audit.service import public_settings
from settleguard.bootstrap import Container
from settleguard.config import Settings


def test_the_read_engine_is_the_primary_unless_read_db_is_set(tmp_path: Path) -> None:
    plain = Container(Settings(db=f"sqlite:///{tmp_path / 'a.db'}"))
    assert plain.read_engine is plain.engine
    split = Container(Settings(db=f"sqlite:///{tmp_path / 'a.db'}", read_db=f"sqlite:///{tmp_path / 'b.db'}"))
    assert split.read_engine is not split.engine
    assert split.read_engine.url.database == str(tmp_path / "b.db")
    for c in (plain, split):
        c.engine.dispose()
        c.read_engine.dispose()


def test_the_password_in_read_db_is_masked_in_the_config_snapshot() -> None:
    shown = public_settings({"db": "postgresql://sg:s3cret@db1/settleguard",
                             "read_db": "postgresql://sg_ro:s3cret@db2/settleguard"})
    assert "s3cret" not in str(shown)
    assert shown["read_db"].startswith("postgresql://sg_ro:***@db2")
