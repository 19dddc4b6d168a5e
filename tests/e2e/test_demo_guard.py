"""``settleguard demo`` never destroys a real database (issue 16, item 8): on SQLite and PostgreSQL it refuses a
database holding imported transactions or bound cards that no demo wrote, naming the URL and what it holds, and
changes nothing; it replaces its own demo database (on a server only with --replace-demo)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.settlement.model import CardType, TxnKind

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
HELD = ("merchants", "transactions", "settlement_accounts", "payouts", "imports", "terminals")


def demo(db: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The demo with the key of the ``vault`` fixture: the key matches, only the demo's own guard can refuse."""
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "test.key"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "settleguard", "demo", "--merchants", "6", "--days", "1",
                           "--data-dir", str(cwd / "days"), *extra], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def snapshot(url: str) -> dict[str, Any]:
    """Every row of the tables a real database keeps, and the demo mark (None without one)."""
    eng = open_engine(url)
    try:
        with eng.connect() as conn:
            rows: dict[str, Any] = {name: sorted(map(tuple, conn.execute(select(t.metadata.tables[name])).all()),
                                                 key=repr) for name in HELD}
            rows["mark"] = conn.execute(select(t.database_marks.c.name)
                                        .where(t.database_marks.c.name == "demo")).scalar_one_or_none()
            rows["counts"] = {n: int(conn.execute(select(func.count()).select_from(t.metadata.tables[n])).scalar_one())
                              for n in HELD}
        return rows
    finally:
        eng.dispose()


def test_a_database_with_transactions_and_cards_no_demo_wrote_is_refused_and_kept(
    engine: Engine, db_url: str, vault: Vault, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 3)
    at = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 5_000)
                                   for m in ms], now=NOW)
    before = snapshot(db_url)
    assert before["counts"]["transactions"] == 3
    assert before["counts"]["settlement_accounts"] == 3

    proc = demo(db_url, tmp_path)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "不是演示数据库" in err
    assert "is neither a demo database nor empty" in err
    assert "商户 merchants 3" in err
    assert "交易 transactions 3" in err
    assert "结算卡 cards 3" in err
    assert make_url(db_url).render_as_string(hide_password=True) in proc.stderr.replace("\n", "")
    assert snapshot(db_url) == before
    assert not (tmp_path / "days").exists()


def test_bound_cards_alone_are_enough_to_refuse(engine: Engine, db_url: str, vault: Vault, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_merchants(conn, vault, 1)
    before = snapshot(db_url)

    proc = demo(db_url, tmp_path)

    assert proc.returncode == 2
    assert "不是演示数据库" in proc.stderr
    assert "结算卡 cards 1" in " ".join(proc.stderr.split())
    assert snapshot(db_url) == before


def test_the_demo_replaces_its_own_database_on_a_server_only_with_the_flag(db_url: str, tmp_path: Path) -> None:
    first = demo(db_url, tmp_path)
    assert first.returncode == 0, first.stderr
    made = snapshot(db_url)
    assert made["mark"] == "demo"
    assert made["counts"]["transactions"] > 0

    again = demo(db_url, tmp_path)
    if db_url.startswith("sqlite"):  # `make demo` twice: the demo's SQLite file is replaced without asking
        assert again.returncode == 0, again.stderr
    else:
        assert again.returncode == 2
        assert "--replace-demo" in again.stderr
        assert snapshot(db_url) == made
        again = demo(db_url, tmp_path, "--replace-demo")
        assert again.returncode == 0, again.stderr
    replaced = snapshot(db_url)
    assert replaced["mark"] == "demo"
    assert replaced["counts"] == made["counts"]  # the same seed again: the same week, not two weeks


def test_an_empty_migrated_database_is_used(db_url: str, tmp_path: Path) -> None:
    open_engine(db_url).dispose()  # settleguard's tables, no merchant, transaction or card

    proc = demo(db_url, tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert snapshot(db_url)["mark"] == "demo"
