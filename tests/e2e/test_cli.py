"""The command line as a user runs it: a subprocess per command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from settleguard.db.engine import create, head_revision


def run(db: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def demo_db(db_url: str, tmp_path: Path) -> str:
    out = run(db_url, "demo", "--merchants", "120", "--days", "4", "--seed", "7", "--data-dir", str(tmp_path / "days"),
              cwd=tmp_path).stdout
    for text_ in ("汇总 summary", "已出款金额 amount paid", "挂账金额 money held", "在途金额 money in transit",
                  "失败原因 failures by reason", "平衡 balanced"):
        assert text_ in out
    return db_url


def test_the_demo_settles_and_pays_and_the_ledger_checks_out(demo_db: str, tmp_path: Path) -> None:
    check = run(demo_db, "ledger", "check", "--json", cwd=tmp_path)
    body = json.loads(check.stdout)
    assert {k: v for k, v in body.items() if k != "bank_balance"} == {"ok": True, "problems": []}
    assert body["bank_balance"]["ok"] is True  # the demo's bank statements: every difference is a planted break
    payouts = json.loads(run(demo_db, "payouts", "list", "--json", "--limit", "10000", cwd=tmp_path).stdout)
    statuses = {p["status"] for p in payouts}
    assert "succeeded" in statuses
    assert all(p["amount_fen"] > 0 for p in payouts)
    assert len({p["idempotency_key"] for p in payouts}) == len(payouts)


def test_corrupting_one_posting_makes_ledger_check_exit_1_naming_the_accounts(demo_db: str, tmp_path: Path) -> None:
    eng = create_engine(demo_db.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        pid, mid, account = c.execute(text(
            "SELECT id, merchant_id, account FROM ledger_postings WHERE account = 'merchant_payable' "
            "ORDER BY id LIMIT 1")).one()
        c.execute(text("UPDATE ledger_postings SET amount_fen = amount_fen - 1 WHERE id = :i"), {"i": pid})
    eng.dispose()
    proc = run(demo_db, "ledger", "check", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert f"merchant_payable:{mid}" in proc.stderr
    assert "does not balance" in " ".join(proc.stderr.split())  # Rich wraps the long account list at any word


def test_settling_a_day_again_and_reimporting_its_file_change_nothing(demo_db: str, tmp_path: Path) -> None:
    again = run(demo_db, "settle", "--date", "2026-11-17", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["merchants_settled"] == 0
    day_file = tmp_path / "days" / "transactions-20261117.csv"
    out = json.loads(run(demo_db, "import", "transactions", str(day_file), "--json", cwd=tmp_path).stdout)
    assert out["already_imported"] is True
    assert json.loads(run(demo_db, "ledger", "check", "--json", cwd=tmp_path).stdout)["ok"] is True


def test_a_rejected_file_prints_the_line_and_exits_2(tmp_path: Path, sqlite_url: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("external_ref,merchant_no,terminal_no,occurred_at,kind,card_type,amount_fen\n"
                   "R1,898000000000001,10000001,2026-11-20T10:00:00+08:00,sale,debit,100\n", encoding="utf-8")
    proc = run(sqlite_url, "import", "transactions", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert f"{bad}:2" in proc.stderr
    assert "unknown merchant" in proc.stderr
    assert "未导入" in proc.stderr


def test_db_upgrade_migrates_a_fresh_database_and_then_says_it_is_current(tmp_path: Path, sqlite_url: str) -> None:
    first = run(sqlite_url, "db", "upgrade", cwd=tmp_path)
    head = head_revision(create(sqlite_url))
    assert f"-> {head}" in first.stdout
    second = run(sqlite_url, "db", "upgrade", cwd=tmp_path)
    assert f"already at revision {head}" in second.stdout


def test_the_sqlite_database_runs_in_wal_mode(tmp_path: Path, sqlite_url: str) -> None:
    run(sqlite_url, "db", "upgrade", cwd=tmp_path)
    eng = create_engine(sqlite_url)
    with eng.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    eng.dispose()


def test_the_key_file_is_created_with_mode_0600(tmp_path: Path, sqlite_url: str) -> None:
    run(sqlite_url, "demo", "--merchants", "5", "--days", "1", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert (tmp_path / "e2e.key").stat().st_mode & 0o777 == 0o600
