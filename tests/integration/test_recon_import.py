"""``recon import``: bank statements stored atomically and idempotently, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.unit.reconciliation.bank_files import csv_text, write_csv
from tests.unit.reconciliation.camt_files import PAN, camt053, entry, standard_body, standard_summary, write
from typer.testing import CliRunner

from settleguard.cli.main import app as cli
from settleguard.reconciliation import repository as repo
from settleguard.reconciliation.service import import_statement_file

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return len(repo.statements(conn)), repo.line_count(conn)


def test_a_statement_is_stored_once_however_often_it_is_imported(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, camt053(standard_body(), txs_summary=standard_summary()))
    res = import_statement_file(engine, path, now=NOW)
    assert (res.kind, res.already_imported, res.new_lines) == ("camt.053", False, 6)
    assert counts(engine) == (1, 6)
    with engine.connect() as conn:
        [st] = repo.statements(conn)
        rows = {r["entry_ref"]: r for r in repo.lines(conn)}
    assert (st["opening_fen"], st["closing_fen"], st["previous_closing_fen"], st["file_sha256"]) == (
        1_000_000, 949_950, 1_000_000, res.sha256)
    assert (rows["E2/2"]["pmt_inf_id"], rows["E2/2"]["batch_count"], rows["E2/2"]["amount_fen"]) == (
        "SGB00000000000000000001", 2, 18000)
    assert (rows["E5"]["reversal"], rows["E5"]["direction"], rows["E4"]["status"]) == (True, "CRDT", "PDNG")
    assert "621700*********4874" in rows["E5"]["raw"]
    assert all(PAN not in r["raw"] for r in rows.values())
    # the same file again: nothing changes
    again = import_statement_file(engine, path, now=NOW)
    assert (again.already_imported, again.new_lines) == (True, 0)
    assert counts(engine) == (1, 6)
    # the bank re-sends the statement (another file, same statement id) with one more entry: one copy each
    resent = write(tmp_path, camt053(standard_body() + entry("E6", "1.00")).replace("MSG-1", "MSG-2"), "again.xml")
    third = import_statement_file(engine, resent, now=NOW)
    assert (third.already_imported, third.new_lines) == (False, 1)
    assert counts(engine) == (1, 7)


def test_a_failure_half_way_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, camt053(standard_body(), txs_summary=standard_summary()))

    def crash(stored: int) -> None:
        if stored >= 3:
            raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        import_statement_file(engine, path, now=NOW, after_chunk=crash, chunk=1)
    assert counts(engine) == (0, 0)
    assert import_statement_file(engine, path, now=NOW).new_lines == 6  # and it imports cleanly afterwards
    assert counts(engine) == (1, 6)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_a_bank_file_imports_through_the_cli(engine: Engine, db_url: str, tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path, csv_text(), encoding)
    out = CliRunner().invoke(cli, ["--db", db_url, "recon", "import", str(path)])
    assert out.exit_code == 0, out.output
    assert "读取 lines read 4" in out.output
    assert "¥1,234.56" in out.output
    assert out.output.index("已记账") < out.output.index("booked")  # zh first
    assert counts(engine) == (1, 4)
    again = CliRunner().invoke(cli, ["--db", db_url, "recon", "import", str(path), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["already_imported"] is True
    assert counts(engine) == (1, 4)


def test_a_refused_file_exits_2_naming_the_file_and_line(engine: Engine, db_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path, csv_text(summary="合计,笔数:9,金额:1835.00"), "gbk")
    out = CliRunner().invoke(cli, ["--db", db_url, "recon", "import", str(path), "--profile", "generic"])
    assert out.exit_code == 2
    assert "第 6 行" in out.output
    assert "line 6" in out.output
    assert "bank.csv" in out.output
    assert counts(engine) == (0, 0)


KILLED_CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from settleguard.db.engine import open_engine
from settleguard.reconciliation.service import import_statement_file

def stall(stored):
    if stored >= 3:
        Path(sys.argv[3]).write_text("half")
        time.sleep(120)

import_statement_file(open_engine(sys.argv[1]), Path(sys.argv[2]), now=datetime.now(UTC), after_chunk=stall, chunk=1)
"""


def test_a_process_killed_mid_import_leaves_nothing(engine: Engine, db_url: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    path = write(tmp_path, camt053(standard_body(), txs_summary=standard_summary()))
    marker = tmp_path / "half"
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, db_url, str(path), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never got half-way"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert counts(engine) == (0, 0)
    assert import_statement_file(engine, path, now=NOW).new_lines == 6
    assert counts(engine) == (1, 6)
