"""``settleguard worker`` as an operator starts it: one at a time on SQLite, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _env(db: str, cwd: Path) -> dict[str, str]:
    return {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "160"}


def run(db: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=_env(db, cwd),
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def sqlite_demo(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    run(db, "demo", "--merchants", "40", "--days", "2", "--seed", "3", "--data-dir", str(tmp_path / "days"),
        cwd=tmp_path)
    return db


def test_a_second_worker_on_the_same_sqlite_database_is_refused_and_the_first_stops_on_sigterm(
    sqlite_demo: str, tmp_path: Path,
) -> None:
    first = subprocess.Popen([sys.executable, "-m", "settleguard", "worker", "--interval", "3600", "--json"],
                             cwd=tmp_path, env=_env(sqlite_demo, tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()  # the first cycle has run; the worker now waits an hour
        cycle = json.loads(line)
        assert {"sent", "inquired", "released", "cards_checked"} <= cycle.keys()

        second = run(sqlite_demo, "worker", "--once", cwd=tmp_path, check=False)
        assert second.returncode == 3
        assert "已有一个工作进程" in second.stderr
        assert "another worker is already running" in second.stderr

        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    again = run(sqlite_demo, "worker", "--once", "--json", cwd=tmp_path)  # the lock died with the first
    assert json.loads(again.stdout.splitlines()[-1])["sent"] >= 0
    check = run(sqlite_demo, "ledger", "check", "--json", cwd=tmp_path)
    assert json.loads(check.stdout)["ok"] is True


def test_a_killed_worker_leaves_no_lock_behind(sqlite_demo: str, tmp_path: Path) -> None:
    first = subprocess.Popen([sys.executable, "-m", "settleguard", "worker", "--interval", "3600"],
                             cwd=tmp_path, env=_env(sqlite_demo, tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    first.kill()
    first.wait()
    assert run(sqlite_demo, "worker", "--once", cwd=tmp_path).returncode == 0
