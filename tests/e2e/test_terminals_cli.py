"""``settleguard terminals analyze-log`` as ops run it: no database, Chinese first, grouped by terminal, local
time to the second, never a full card number, ``--json`` an array of findings; a hostile log never crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from settleguard.sim.terminal_logs import TEST_PAN, clean_log, demo_log


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": f"sqlite:///{cwd}/missing/dir/never.db", "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "settleguard", "terminals", "analyze-log", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_findings_are_printed_zh_first_grouped_by_terminal_in_local_time(tmp_path: Path) -> None:
    proc = run(str(write(tmp_path / "pos.log", demo_log())), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("终端 terminal 10000002：2 项发现 findings") < out.index("终端 terminal 10000003：1 项发现")
    assert "终端 terminal 10000001" not in out  # the clean terminal has nothing to say
    assert "[严重 high] 2026-12-07 08:30:31 签到失败 sign-in failed" in out
    assert out.index("签到失败") < out.index("sign-in failed")
    assert "批结算对账不平 batch settlement not balanced" in out
    assert "商户 merchant：" in out
    assert "运维 ops：" in out
    assert "第 18 行 line 18" in out
    assert "时间为北京时间" in out
    assert TEST_PAN not in out
    assert TEST_PAN[6:-4] not in out
    assert not (tmp_path / "missing").exists()


def test_times_are_shown_in_the_configured_zone(tmp_path: Path) -> None:
    env_log = write(tmp_path / "pos.log", demo_log())
    env = {**os.environ, "SETTLEGUARD_DB": f"sqlite:///{tmp_path}/never.db", "COLUMNS": "160",
           "SETTLEGUARD_TIMEZONE": "UTC"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", "terminals", "analyze-log", str(env_log)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "2026-12-07 00:30:31 签到失败" in proc.stdout


def test_json_is_an_array_of_findings_with_terminal_code_category_at_and_evidence(tmp_path: Path) -> None:
    proc = run(str(write(tmp_path / "pos.log", demo_log())), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(d["terminal"], d["code"], d["category"]) for d in data] == [
        ("10000002", "sign_in_failed", "verification_failed"),
        ("10000002", "sale_timeout", "system_or_network_fault"),
        ("10000003", "settlement_unbalanced", "transaction_data_error")]
    assert data[1]["at"] == "2026-12-07T08:31:47+08:00"
    assert [e["mti"] for e in data[1]["evidence"]] == ["0200", "0400", "0410"]
    assert TEST_PAN not in proc.stdout


def test_a_clean_log_says_so(tmp_path: Path) -> None:
    proc = run(str(write(tmp_path / "pos.log", clean_log())), cwd=tmp_path)
    assert proc.returncode == 0
    assert "未发现问题 no findings" in proc.stdout
    assert json.loads(run(str(tmp_path / "pos.log"), "--json", cwd=tmp_path).stdout) == []


def test_a_hostile_log_is_reported_by_line_and_the_rest_analysed(tmp_path: Path) -> None:
    lines = demo_log()
    sale_hex = lines[21].split()[3]
    hostile = [*lines[:5], "2026-12-07T08:30:00+08:00 TX 10000001 " + sale_hex[:-3],
               "2026-12-07T08:30:00+08:00 TX 10000001 " + sale_hex[:-8], "\x00\xff binary " + TEST_PAN,
               "2026-12-07T08:30:00+08:00 TX 10000001 " + "AB" * 5_000_000, *lines[5:]]
    path = write(tmp_path / "pos.log", hostile)
    proc = run(str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "4 行无法解析 unreadable" in proc.stdout
    for n in (6, 7, 8, 9):
        assert f"第 {n} 行" in proc.stdout
    assert "批结算对账不平" in proc.stdout  # the rest was analysed
    assert TEST_PAN not in proc.stdout + proc.stderr
    data = json.loads(run(str(path), "--json", cwd=tmp_path).stdout)
    assert [d["evidence"][0]["line"] for d in data if d["code"] == "undecodable"] == [6, 7, 8, 9]


def test_a_missing_file_is_a_bilingual_error(tmp_path: Path) -> None:
    proc = run(str(tmp_path / "nope.log"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "文件不存在" in proc.stderr
    assert "no such file" in proc.stderr
