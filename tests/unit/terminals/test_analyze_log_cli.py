"""``terminals analyze-log`` in-process (CliRunner): an unbalanced batch shows its differences in the text and
its totals and differences in ``--json``; the JSON has what issue 21 asks for."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from settleguard.cli.main import app
from settleguard.sim.terminal_logs import TEST_PAN, fault_log


def _run(tmp_path: Path, *args: str) -> str:
    log = tmp_path / "pos.log"
    log.write_text("\n".join([*fault_log("unbalanced_batch", "40000001"), *fault_log("data_mismatch", "40000002")])
                   + "\n", encoding="utf-8")
    env = {"SETTLEGUARD_DB": f"sqlite:///{tmp_path / 'missing' / 'never.db'}", "COLUMNS": "200"}
    r = CliRunner().invoke(app, ["terminals", "analyze-log", str(log), *args], env=env)
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "missing").exists()
    assert TEST_PAN not in r.output
    return r.output


def test_the_text_lists_the_differences_of_an_unbalanced_batch(tmp_path: Path) -> None:
    out = _run(tmp_path)
    assert "差异 differences：" in out
    assert "终端未计入 not counted by the terminal 流水号 trace 000004" in out
    assert "主机金额 host ¥150.00" in out
    assert "终端与主机交易数据不一致" in out


def test_the_json_has_terminal_code_category_at_evidence_totals_and_differences(tmp_path: Path) -> None:
    data = json.loads(_run(tmp_path, "--json"))
    assert [(d["terminal"], d["code"], d["category"]) for d in data] == [
        ("40000001", "sale_timeout", "system_or_network_fault"),
        ("40000001", "settlement_unbalanced", "transaction_data_error"),
        ("40000002", "data_mismatch", "transaction_data_error")]
    for d in data:
        assert datetime.fromisoformat(d["at"]).utcoffset() is not None
        assert all(isinstance(e["line"], int) for e in d["evidence"])
    unbalanced = data[1]
    assert unbalanced["totals"]["terminal"]["debit_fen"] == 30_000
    assert unbalanced["totals"]["host"]["debit_fen"] == 45_000
    assert [(x["kind"], x["trace"], x["host_amount_fen"]) for x in unbalanced["differences"]] == [
        ("extra", "000004", 15_000)]
    assert data[2]["differences"][0]["fields"] == ["amount"]
