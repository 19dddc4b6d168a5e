"""`settleguard audit verify|list|head` after the demo, as a user runs them (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text


def run(db: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_audit_verify_after_the_demo_then_one_update_is_named(db_url: str, tmp_path: Path) -> None:
    run(db_url, "demo", "--merchants", "40", "--days", "2", "--seed", "7", "--data-dir", str(tmp_path / "days"),
        cwd=tmp_path)
    ok = json.loads(run(db_url, "audit", "verify", "--json", cwd=tmp_path).stdout)
    assert ok["ok"]
    assert ok["checked"] > 3
    kinds = {e["kind"] for e in json.loads(run(db_url, "audit", "list", "--json", "--limit", "100000",
                                               cwd=tmp_path).stdout)}
    assert {"config_snapshot", "settlement.run", "payout.status"} <= kinds
    head = run(db_url, "audit", "head", cwd=tmp_path).stdout.strip()
    assert head.startswith(f"{ok['head_id']}:")
    assert run(db_url, "audit", "verify", "--expect-head", head, cwd=tmp_path).returncode == 0

    victim = ok["head_id"] // 2
    eng = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = :i"), {"i": victim})
    eng.dispose()
    bad = run(db_url, "audit", "verify", cwd=tmp_path, check=False)
    assert bad.returncode == 1
    assert f"first bad event: {victim}" in bad.stderr
    assert "被修改" in bad.stderr
    assert bad.stderr.index("审计链被篡改") < bad.stderr.index("edited")
    as_json = json.loads(run(db_url, "audit", "verify", "--json", cwd=tmp_path, check=False).stdout)
    assert as_json["problem"]["event_id"] == victim
    assert as_json["problem"]["fault"] == "edited"
