"""A message log's findings stored per terminal (issue 21; SQLite and PostgreSQL): ``terminals analyze-log
--store`` keeps them in terminal_findings (code, category, owner, evidence lines, the log's time), a repeated
log changes nothing, the checks never close them, a later log without them does; ``--compare`` holds the
host's answers against the imported transactions and names both values; ``terminals diagnose``, the
troubleshooter and the merchant portal see them (the portal in merchant words only); the worker's silence
sweep opens and closes the silent findings within a time budget."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner

from factories import make_merchants
from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.merchants import terminals
from settleguard.sim.terminal_logs import TEST_PAN, LogWriter, scenario_log
from settleguard.terminals import service
from settleguard.terminals.analysis import analyze
from settleguard.terminals.log_reader import read_log
from settleguard.terminals.telemetry import Telemetry
from settleguard.troubleshoot import service as troubleshoot
from settleguard.troubleshoot.model import Symptom

LOG_DAY = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)  # the simulator's START (08:30 Beijing)
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
BJ = ZoneInfo("Asia/Shanghai")


def _world(engine: Engine, vault: Vault) -> tuple[int, str, int]:
    """Merchant 1 with terminals 40000001 (sign-in fails) and 40000002 (data mismatch); merchant 2 with one."""
    with engine.begin() as conn:
        m1, m2 = make_merchants(conn, vault, 2)
    for m, sn, no in ((m1, "SNLOG0001", "40000001"), (m1, "SNLOG0002", "40000002"), (m2, "SNLOG0003", "40000003")):
        terminals.add(engine, m.merchant_no, serial=sn, terminal_no=no, model="PAX A920", address="北京东城区1号",
                      actor="op", now=NOW - timedelta(days=10))
    return int(m1.id), str(m1.merchant_no), int(m2.id)


def _log(tmp_path: Path, lines: list[str], name: str = "pos.log") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _store(engine: Engine, path: Path, now: datetime = NOW) -> service.LogStoreResult:
    log = read_log(path)
    return service.store_log(engine, analyze(log.messages), log.messages, file_name=path.name, digest="d",
                             compared=False, now=now)


def _rows(engine: Engine) -> list[dict[str, object]]:
    tf, tm = t.terminal_findings, t.terminals
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(tm.c.terminal_no, tf.c.code, tf.c.category, tf.c.owner, tf.c.status, tf.c.evidence,
                   tf.c.first_seen_at, tf.c.last_seen_at, tf.c.detail_zh)
            .join(tm, tm.c.id == tf.c.terminal_id).order_by(tf.c.id))]


def test_stored_log_findings_are_idempotent_survive_the_checks_and_a_later_clean_log_closes_them(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    mid, _, _ = _world(engine, vault)
    path = _log(tmp_path, [*scenario_log("sign_in_failed", "40000001"), *scenario_log("data_mismatch", "40000002"),
                           *scenario_log("sign_in_failed", "49999999")])
    res = _store(engine, path)
    assert (res.opened, res.refreshed, res.closed) == (2, 0, 0)
    assert res.stored_terminals == ["40000001", "40000002"]
    assert res.unknown == ["49999999"]
    rows = {(r["terminal_no"], r["code"]): r for r in _rows(engine)}
    assert set(rows) == {("40000001", "sign_in_failed"), ("40000002", "data_mismatch")}
    sign_in = rows[("40000001", "sign_in_failed")]
    assert (sign_in["category"], sign_in["owner"], sign_in["status"]) == ("verification_failed", "merchant", "open")
    evidence = sign_in["evidence"]
    assert isinstance(evidence, dict)
    assert (evidence["source"], evidence["lines"]) == ("log", [1, 2])
    assert evidence["messages"][1]["response_code"] == "A0"
    answered = datetime.fromisoformat(evidence["messages"][1]["at"])
    assert answered.date() == LOG_DAY.date()
    assert sign_in["first_seen_at"] == answered  # the log's time, not now
    assert TEST_PAN not in json.dumps(rows[("40000002", "data_mismatch")]["evidence"])  # masked PAN only

    again = _store(engine, path, NOW + timedelta(hours=1))
    assert (again.opened, again.refreshed, again.closed) == (0, 0, 0)
    assert _rows(engine) == list(rows.values())

    # the checks (telemetry, silence) run and keep their own findings; the log's stay open
    service.record_heartbeat(engine, "40000001", Telemetry(battery=5), now=NOW)
    out = service.diagnose(engine, "40000001", now=NOW)
    codes = {f["code"]: f for f in out["open_findings"]}
    assert {"sign_in_failed", "low_battery"} <= set(codes)
    assert codes["sign_in_failed"]["merchant_zh"].startswith("请在终端上重新签到")
    assert codes["sign_in_failed"]["steps"] == ["re_sign_in", "contact_service"]

    # the troubleshooter shows the stored sign-in failure for that symptom
    report = troubleshoot.run(engine, mid, Symptom.SIGN_IN_FAILED, now=NOW, zone=BJ)
    text = " ".join(f.zh for r in report.results for f in r.found)
    assert "终端 40000001：签到失败" in text
    terminal_steps = " ".join(s.zh for r in report.results for s in r.steps)
    assert "请在终端上重新签到" in terminal_steps  # the log finding's merchant guidance

    # a later log of 40000001 that signs in fine closes it; 40000002 (not in that log) keeps its finding
    w = LogWriter(terminal="40000001", at=datetime(2026, 12, 7, 10, 0, tzinfo=BJ))
    w.sign_in()
    w.sale(1_000)
    later = _store(engine, _log(tmp_path, w.lines, "later.log"), NOW + timedelta(hours=2))
    assert (later.opened, later.closed) == (0, 1)
    status = {(r["terminal_no"], r["code"]): r["status"] for r in _rows(engine)}
    assert status[("40000001", "sign_in_failed")] == "closed"
    assert status[("40000002", "data_mismatch")] == "open"
    assert status[("40000001", "low_battery")] == "open"


def _imported(engine: Engine, terminal_no: str, rows: list[tuple[str, str, int, str]]) -> None:
    """Imported transactions of the terminal: (stan, rrn, amount_fen, auth_code) at 08:30 Beijing."""
    with engine.begin() as conn:
        term = conn.execute(select(t.terminals.c.id, t.terminals.c.merchant_id)
                            .where(t.terminals.c.terminal_no == terminal_no)).one()
        conn.execute(insert(t.transactions), [
            {"cycle_date": date(2026, 12, 7), "merchant_id": term.merchant_id, "external_ref": f"T{stan}",
             "terminal_id": term.id, "kind": 1, "card_type": 1, "amount_fen": amount, "fee_fen": 0,
             "occurred_at": LOG_DAY + timedelta(minutes=1), "import_id": 1, "stan": stan, "rrn": rrn,
             "auth_code": auth} for stan, rrn, amount, auth in rows])


def test_compare_names_both_values_and_the_cli_stores_it(db_url: str, engine: Engine, vault: Vault,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(engine, vault)
    w = LogWriter(terminal="40000003")
    w.sign_in()
    trace = w.sale(12_000)  # the host approves 120.00
    path = _log(tmp_path, w.lines)
    (answer,) = [m for m in read_log(path).messages if m.mti == "0210"]
    log_rrn = answer.get("37")
    assert len(log_rrn) == 12
    _imported(engine, "40000003", [(trace, "999999999999", 12_500, "")])
    monkeypatch.setenv("SETTLEGUARD_TIMEZONE", "Asia/Shanghai")
    run = CliRunner()
    args = ["--db", db_url, "terminals", "analyze-log", str(path), "--compare", "--store"]
    done = run.invoke(cli, [*args, "--json"])
    assert done.exit_code == 0, done.output
    (f,) = [x for x in json.loads(done.output) if x["code"] == "import_mismatch"]
    assert f["terminal"] == "40000003"
    (d,) = f["differences"]
    assert (d["kind"], d["host_amount_fen"], d["terminal_amount_fen"]) == ("different", 12_000, 12_500)
    assert "金额 报文 ¥120.00 / 导入 ¥125.00" in f["detail_zh"]
    assert f"参考号 报文 {log_rrn} / 导入 999999999999" in f["detail_zh"]
    assert "授权码" not in f["detail_zh"]  # an empty imported code is no difference
    assert f"RRN log {log_rrn} / import 999999999999" in f["detail_en"]
    again = run.invoke(cli, args)  # the text output, the same file: nothing new stored
    assert again.exit_code == 0, again.output
    assert "新增 opened 0，更新 refreshed 0，消除 closed 0" in again.output
    (row,) = [r for r in _rows(engine) if r["code"] == "import_mismatch"]
    assert row["status"] == "open"
    assert "999999999999" in str(row["detail_zh"])
    # without --compare a later store does not close the comparison's finding
    plain = run.invoke(cli, ["--db", db_url, "terminals", "analyze-log", str(path), "--store"])
    assert plain.exit_code == 0, plain.output
    assert [r["status"] for r in _rows(engine) if r["code"] == "import_mismatch"] == ["open"]
    # agreeing rows: no finding
    with engine.begin() as conn:
        conn.execute(t.transactions.update().values(rrn=log_rrn, amount_fen=12_000))
    agree = run.invoke(cli, [*args[:-1], "--json"])
    assert not [x for x in json.loads(agree.output) if x["code"] == "import_mismatch"]
    # diagnose shows the stored comparison with its owner
    diag = run.invoke(cli, ["--db", db_url, "terminals", "diagnose", "40000003"])
    assert "报文与已导入交易不一致" in diag.output
    assert "收单运维 acquirer ops" in diag.output


def test_silence_sweep_opens_and_closes_within_its_budget(engine: Engine, vault: Vault) -> None:
    _world(engine, vault)
    old = NOW - timedelta(days=5)
    for no in ("40000001", "40000002"):
        service.record_heartbeat(engine, no, Telemetry(battery=90, last_heartbeat_at=old), now=old)
    none = service.silence_sweep(engine, NOW, budget=timedelta(seconds=0))
    assert (none.candidates, none.checked, none.left) == (2, 0, 2)  # no time: nothing done, all left
    swept = service.silence_sweep(engine, NOW, chunk=1)
    assert (swept.candidates, swept.checked, swept.left) == (2, 2, 0)
    assert swept.opened == 4  # no heartbeat and no transaction, each terminal
    assert service.silence_sweep(engine, NOW).opened == 0  # idempotent
    service.record_heartbeat(engine, "40000001", Telemetry(battery=90), now=NOW)  # the heartbeat's own checks
    _imported(engine, "40000001", [("000009", "", 100, "")])  # a transaction: no check runs on an import
    status = {(r["terminal_no"], r["code"]): r["status"] for r in _rows(engine)}
    assert status[("40000001", "silent_no_heartbeat")] == "closed"
    assert status[("40000001", "silent_no_transactions")] == "open"
    later = service.silence_sweep(engine, NOW + timedelta(minutes=1))
    assert (later.candidates, later.closed) == (2, 1)  # 40000001 by its open finding; 40000002 still silent
    status = {(r["terminal_no"], r["code"]): r["status"] for r in _rows(engine)}
    assert status[("40000001", "silent_no_transactions")] == "closed"
    assert status[("40000002", "silent_no_heartbeat")] == "open"
    # neither a terminal heard from with sales nor a fresh one is a candidate any more
    service.record_heartbeat(engine, "40000003", Telemetry(battery=90), now=NOW)
    assert service.silence_sweep(engine, NOW + timedelta(minutes=2)).candidates == 1


def test_portal_shows_own_terminals_in_merchant_words_only(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    mid, merchant_no, other = _world(engine, vault)
    _store(engine, _log(tmp_path, [*scenario_log("sign_in_failed", "40000001"),
                                   *scenario_log("settlement_unbalanced", "40000002")]))
    from test_web_console import PASSWORD as WEB_PASSWORD
    from test_web_console import sign_in

    from settleguard.web.app import create_app

    add_user(engine, username="shop", password=WEB_PASSWORD, role=Role.MERCHANT, merchant_no=merchant_no,
             display_name="shop", now=NOW, actor="test")
    c = sign_in(create_app(engine, now=lambda: NOW), "shop")
    page = c.get(f"/m/{mid}/terminals")
    assert page.status_code == 200
    text = page.text
    for words in ("签到失败", "请在终端上重新签到", "重新签到", "批结算对账不平", "收单机构已知晓并在处理"):
        assert words in text, words
    for ops_words in ("核对终端主密钥与工作密钥", "对比终端批次与主机交易", "acquirer ops", "收单运维"):
        assert ops_words not in text, ops_words
    assert "40000003" not in text
    assert c.get(f"/m/{other}/terminals").status_code == 404
    assert "sign-in failed" in c.get(f"/m/{mid}/terminals?lang=en").text


def test_hostile_log_lines_store_bounded_and_masked(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    _world(engine, vault)
    garbage = [
        f"2026-12-07T08:40:00+08:00 RX 40000001 6000030000603100000000{TEST_PAN}FFFF",  # truncated, a card number
        f"2026-12-07T08:41:00+08:00 TX 40000001 ZZ{TEST_PAN}",  # not hex
        "2026-12-07T08:42:00+08:00 TX " + "9" * 5000 + " 00",  # an absurd terminal number
        "\x00\xff garbage",
    ]
    path = _log(tmp_path, [*scenario_log("sign_in_failed", "40000001"), *garbage])
    res = _store(engine, path)
    assert res.opened >= 1
    assert all(len(no) <= 64 for no in res.unknown)
    rows = _rows(engine)
    assert {r["code"] for r in rows} >= {"sign_in_failed"}
    dumped = json.dumps([{k: str(v) for k, v in r.items()} for r in rows], ensure_ascii=False)
    assert TEST_PAN not in dumped
    assert all(len(str(r["detail_zh"])) <= 256 for r in rows)
    assert _store(engine, path).opened == 0  # idempotent with the garbage too
