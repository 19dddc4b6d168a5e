"""What the command line shows people (issue 18, items 6-9): labels instead of internal codes, local time to
the second with the zone named once, argument errors in Chinese then English naming the option (exit 2, no
traceback), and Chinese labels accepted as filter values.

One small demo database (a subprocess, as an operator runs it) serves the output tests; the argument tests
drive the command line in-process (CliRunner)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from settleguard.cli.main import app

SH = ZoneInfo("Asia/Shanghai")
# identifiers of the stored vocabularies that must never be shown bare (a label reads "银行卡信息错误 card info error")
CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
RAW_EVENT = re.compile(r"settlement run \d+ \(|attempt \d+ via ")
ANY_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z| ?[A-Z]{3}\b)?")
SECOND = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
ZONE_NOTE = "时间为北京时间 times are Beijing time (Asia/Shanghai)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path, str]:
    """A demo week of 200 merchants over 3 days (failures, holds, re-binds); its environment and summary."""
    cwd = tmp_path_factory.mktemp("labels")
    env = {**os.environ, "SETTLEGUARD_DB": f"sqlite:///{cwd / 'demo.db'}", "SETTLEGUARD_KEY_FILE": str(cwd / "k.key"),
           "COLUMNS": "200"}
    out = cli(env, cwd, "demo", "--merchants", "200", "--days", "3", "--data-dir", str(cwd / "days")).stdout
    return env, cwd, out


def cli(env: dict[str, str], cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == code, f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def query(cwd: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(cwd / "demo.db") as conn:
        return list(conn.execute(sql))


def codes_in(text: str) -> list[str]:
    return sorted(set(CODE.findall(text)))


def test_the_demo_summary_shows_labels_not_codes(demo: tuple[dict[str, str], Path, str]) -> None:
    _, _, out = demo
    assert "失败分类 failures by category" in out
    tables = out[out.index("出款状态 payouts by status"):]
    assert codes_in(tables) == [], tables
    assert "出款成功 succeeded" in tables


def test_payouts_show_has_labels_and_local_time_to_the_second(demo: tuple[dict[str, str], Path, str]) -> None:
    env, cwd, _ = demo
    [(pid,)] = query(cwd, "SELECT payout_id FROM payout_attempts WHERE category = 'card_info_error' "
                          "ORDER BY payout_id LIMIT 1")
    out = cli(env, cwd, "payouts", "show", str(pid)).stdout
    assert codes_in(out) == [], out
    assert not RAW_EVENT.search(out), out
    for want in ("待出款 created", "挂账 held", "银行卡信息错误 card info error", "发送 send", "结算批次 #"):
        assert want in out, want
    times = ANY_TIME.findall(out)
    assert times
    assert all(SECOND.fullmatch(t) for t in times), times  # no zone abbreviation, no microseconds
    [(created,)] = query(cwd, f"SELECT min(created_at) FROM payout_events WHERE payout_id = {int(pid)}")
    first = datetime.fromisoformat(str(created))
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    assert first.astimezone(SH).strftime("%Y-%m-%d %H:%M:%S") in out  # stored UTC, shown in Beijing time
    assert out.count(ZONE_NOTE) == 1


def test_payouts_list_has_labels_not_codes(demo: tuple[dict[str, str], Path, str]) -> None:
    env, cwd, _ = demo
    # the demo re-pays every hold by its end: leave one payout held for a card problem, as a failure does
    [(pid,)] = query(cwd, "SELECT max(payout_id) FROM payout_attempts WHERE category = 'card_info_error'")
    with sqlite3.connect(cwd / "demo.db") as conn:
        conn.execute("UPDATE payouts SET status = 'held', category = 'card_info_error' WHERE id = ?", (pid,))
    out = cli(env, cwd, "payouts", "list", "--limit", "1000").stdout
    assert codes_in(out) == [], out
    row = next(line for line in out.splitlines() if re.search(rf"│ {pid}\s+│", line))
    assert "挂账 held" in row, row
    assert "银行卡信息错误 card info error" in row, row


@pytest.mark.parametrize(("typed", "code"), [("挂账", "held"), ("出款成功", "succeeded"), ("结果未明", "result_unknown"),
                                             ("result unknown", "result_unknown"), ("已放行待出款", "released")])
def test_a_chinese_status_filter_is_the_same_as_the_code(demo: tuple[dict[str, str], Path, str], typed: str,
                                                         code: str) -> None:
    env, cwd, _ = demo
    by_label = json.loads(cli(env, cwd, "payouts", "list", "--status", typed, "--limit", "1000", "--json").stdout)
    by_code = json.loads(cli(env, cwd, "payouts", "list", "--status", code, "--limit", "1000", "--json").stdout)
    assert by_label == by_code
    assert all(r["status"] == code for r in by_label)


def test_a_chinese_category_filter_is_the_same_as_the_code(demo: tuple[dict[str, str], Path, str]) -> None:
    env, cwd, _ = demo
    by_label = cli(env, cwd, "payouts", "list", "--category", "银行卡信息错误", "--json").stdout
    by_code = cli(env, cwd, "payouts", "list", "--category", "card_info_error", "--json").stdout
    assert json.loads(by_label) == json.loads(by_code) != []


BAD = [
    (("settle", "--date", "2026/11/18"), "--date", "2026/11/18", "YYYY-MM-DD"),
    (("settle", "--date", "2026-13-01"), "--date", "2026-13-01", "YYYY-MM-DD"),
    (("settle", "--date", "2026-02-30"), "--date", "2026-02-30", "YYYY-MM-DD"),
    (("payouts", "send", "--as-of", "18.11.2026"), "--as-of", "18.11.2026", "YYYY-MM-DD"),
    (("demo", "--start", "2026/11/16"), "--start", "2026/11/16", "YYYY-MM-DD"),
    (("payouts", "show", "abc"), "PAYOUT_ID", "abc", "正整数"),
    (("payouts", "show", "0"), "PAYOUT_ID", "0", "正整数"),
    (("payouts", "release", "1.5"), "PAYOUT_ID", "1.5", "正整数"),
    (("cases", "show", "x1"), "CASE_ID", "x1", "正整数"),
    (("payouts", "list", "--status", "冻结"), "--status", "冻结", "挂账（held）"),
    (("payouts", "list", "--category", "bogus"), "--category", "bogus", "银行卡信息错误（card_info_error）"),
    (("cases", "list", "--status", "done"), "--status", "done", "处理中（open）"),
    (("card", "check", "6222020200112233445", "--kind", "公司"), "--kind", "公司", "对公（corporate）"),
    (("diagnose", "--code", "1", "--lang", "fr"), "--lang", "fr", "中文（zh）"),
    (("payouts", "list", "--limit", "x"), "--limit", "", "应为"),
    (("merchants", "contract", "change", "M1", "--effective", "2026/12/20", "--reason", "x"), "--effective",
     "2026/12/20", "YYYY-MM-DD"),
    (("users", "add", "bob", "--role", "老板", "--password-stdin"), "--role", "老板", "运营（operator）"),
]


@pytest.mark.parametrize(("args", "option", "typed", "form"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_a_bad_argument_is_named_in_chinese_then_english_with_exit_2(tmp_path: Path, args: tuple[str, ...],
                                                                    option: str, typed: str, form: str) -> None:
    env = {"SETTLEGUARD_DB": f"sqlite:///{tmp_path / 'never.db'}", "SETTLEGUARD_KEY_FILE": str(tmp_path / "k.key")}
    r = CliRunner().invoke(app, list(args), env=env)
    text = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert r.exit_code == 2, text
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in text
    assert "错误" in text, text
    assert "Error" in text, text
    assert text.index("错误") < text.index("Error"), text
    zh = text[text.index("错误"):text.index("Error")]
    # names the option, what was typed and the accepted form
    assert option in zh, zh
    assert typed in zh, zh
    assert form in zh, zh
    assert option in text[text.index("Error"):]
    assert not (tmp_path / "never.db").exists()  # refused before anything was opened


def test_a_role_typed_in_chinese_adds_that_role(tmp_path: Path) -> None:
    env = {"SETTLEGUARD_DB": f"sqlite:///{tmp_path / 'u.db'}", "SETTLEGUARD_KEY_FILE": str(tmp_path / "k.key")}
    r = CliRunner().invoke(app, ["users", "add", "lee", "--role", "客服", "--password-stdin"], env=env,
                           input="a-long-enough-password-1\n")
    assert r.exit_code == 0, r.output
    assert "客服 support" in r.output
    listed = CliRunner().invoke(app, ["users", "list", "--json"], env=env)
    assert json.loads(listed.output)[0]["role"] == "support"
