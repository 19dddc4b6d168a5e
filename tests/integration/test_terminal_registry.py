"""Terminal registry and telemetry (issue 21 item 1; SQLite and PostgreSQL): a TMS export (CSV with Chinese
headers, PAXSTORE-like JSON) is imported all or nothing and idempotently, bad rows are reported by line and
field (zh, en) and change nothing, unknown terminals are reported, hostile files are refused; heartbeats go
through the API (operators only; a merchant user sees its own terminals); the CLI imports, diagnoses, lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from factories import make_merchants
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.merchants import terminals
from settleguard.terminals import registry, service
from settleguard.terminals.policy import PolicyRejected, parse_csv, parse_toml
from settleguard.terminals.registry import ExportRejected, parse_export
from settleguard.web.app import create_app

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
BJ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-battery"
TABLES = (t.terminal_telemetry, t.terminal_heartbeats, t.terminal_findings, t.terminals)

CSV_ZH = (
    "序列号,终端号,型号,固件版本,应用版本,通讯方式,主机地址,主机端口,IP地址,子网掩码,网关,DNS,SIM卡号,"
    "最后活跃时间,电量,信号强度,打印机状态,防拆状态,纬度,经度\n"
    "SNREG0001,R0000001,PAX A920,2.3.12,3.1.4,Wi-Fi,pos.acquirer.cn,8583,192.168.1.20,255.255.255.0,192.168.1.1,"
    "114.114.114.114,89860012345678901234,2026-11-20 09:30:00,80,-70,正常,否,39.9087,116.3975\n"
    "SNREG0002,R0000002,PAX A920,2.3.12,3.1.4,4G,pos.acquirer.cn,8583,10.20.30.40,255.0.0.0,10.0.0.1,"
    "223.5.5.5,89860098765432109876,2026-11-20 09:31:00,7,-113,缺纸,否,39.9087,116.3975\n"
    "SNOTHER99,X0000009,PAX A920,2.3.12,3.1.4,4G,,,,,,,,2026-11-20 09:31:00,50,-80,正常,否,,\n"
)


def _merchant_with_terminals(engine: Engine, vault: Vault) -> tuple[str, str]:
    with engine.begin() as conn:
        m1, m2 = make_merchants(conn, vault, 2)
    for m, sn, no in ((m1, "SNREG0001", "R0000001"), (m1, "SNREG0002", "R0000002"), (m2, "SNREG0003", "R0000003")):
        terminals.add(engine, m.merchant_no, serial=sn, terminal_no=no, model="PAX A920", address="北京东城区1号",
                      actor="op", now=NOW - timedelta(days=10))
    return str(m1.merchant_no), str(m2.merchant_no)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {tb.name: int(c.execute(select(func.count()).select_from(tb)).scalar_one()) for tb in TABLES}


def test_import_csv_with_chinese_headers_is_idempotent_and_reports_unknown(engine: Engine, vault: Vault,
                                                                           tmp_path: Path) -> None:
    _merchant_with_terminals(engine, vault)
    path = tmp_path / "tms.csv"
    path.write_text(CSV_ZH, encoding="utf-8-sig")
    res = service.import_export(engine, path, zone=BJ, now=NOW, actor="op")
    assert (res.rows, res.changed, res.unchanged, res.heartbeats) == (3, 2, 0, 2)
    assert [(w, who) for w, _, who in res.unknown] == [("第 4 行", "SNOTHER99")]
    with engine.connect() as conn:
        tel = {r.terminal_id: r for r in conn.execute(select(t.terminal_telemetry))}
        fw = dict(conn.execute(select(t.terminals.c.serial_no, t.terminals.c.firmware)).all())
    row = next(iter(tel.values()))
    assert row.iccid == "89860012345678901234"  # an identifier, kept whole
    assert row.last_heartbeat_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # local time without offset: Beijing
    assert row.home_lat == pytest.approx(39.9087)  # the first location becomes the registered one
    assert fw["SNREG0001"] == "2.3.12"
    opened = _counts(engine)
    assert opened["terminal_findings"] == 3  # terminal 2: low battery, weak signal, no paper
    again = service.import_export(engine, path, zone=BJ, now=NOW + timedelta(minutes=5), actor="op")
    assert (again.changed, again.unchanged, again.heartbeats, again.opened, again.closed) == (0, 2, 0, 0, 0)
    assert _counts(engine) == opened


def test_a_bad_row_changes_nothing_and_names_line_and_field(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    _merchant_with_terminals(engine, vault)
    before = _counts(engine)
    bad = CSV_ZH.replace("255.255.255.0", "255.255.255.999").replace(",80,-70,", ",180,-70,")
    path = tmp_path / "bad.csv"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(service.ImportRefused) as got:
        service.import_export(engine, path, zone=BJ, now=NOW, actor="op")
    problems = {(p.where_en, p.field) for p in got.value.problems}
    assert problems == {("line 2", "mask"), ("line 2", "battery")}
    zh = " ".join(p.zh for p in got.value.problems)
    assert "子网掩码「255.255.255.999」" in zh
    assert "电量「180」" in zh
    assert _counts(engine) == before
    # a serial number registered to another terminal number is a problem too, and a future time
    clash = CSV_ZH.replace("SNREG0001,R0000001", "SNREG0001,R0000003").replace("2026-11-20 09:31:00,7",
                                                                               "2027-01-01 09:31:00,7")
    path.write_text(clash, encoding="utf-8")
    with pytest.raises(service.ImportRefused) as got:
        service.import_export(engine, path, zone=BJ, now=NOW, actor="op")
    assert {(p.where_en, p.field) for p in got.value.problems} == {("line 2", "serial_no"),
                                                                  ("line 3", "last_heartbeat_at")}
    assert _counts(engine) == before


def test_paxstore_json_export(engine: Engine, vault: Vault) -> None:
    _merchant_with_terminals(engine, vault)
    doc = {"businessCode": 0, "pageInfo": {"dataSet": [{
        "serialNo": "SNREG0003", "tid": "R0000003", "status": "A", "modelName": "A920", "merchantName": "x",
        "lastActiveTime": int((NOW - timedelta(minutes=3)).timestamp() * 1000),
        "geoLocation": {"lat": 31.24, "lng": 121.49}, "installedFirmware": {"firmwareName": "2.3.20"},
        "installedApks": [{"packageName": "com.pay", "versionName": "3.2.0"}],
        "terminalDetail": {"osVersion": "7.1.2", "ip": "10.1.2.3", "macAddress": "00-1A-2B-3C-4D-5E",
                           "iccid": "8986001234567890123F", "imei": "356938035643809"},
        "battery": "64%"}]}}
    res = service.import_export(engine, json.dumps(doc).encode(), zone=BJ, now=NOW, actor="op")
    assert (res.rows, res.changed, res.unknown) == (1, 1, [])
    with engine.connect() as conn:
        r = conn.execute(select(t.terminal_telemetry)).one()
    assert (r.os_version, r.ip, r.mac, r.iccid, r.app_version, r.battery) == (
        "7.1.2", "10.1.2.3", "00:1A:2B:3C:4D:5E", "8986001234567890123F", "3.2.0", 64)
    assert (r.lat, r.lng) == (31.24, 121.49)


@pytest.mark.parametrize(("data", "words"), [
    (b"[" * 50 + b"]" * 50, "嵌套过深"),
    (b'[{"serialNo": "SN1", "battery": NaN}]', "JSON"),
    (b"serialNo,battery\n\x00\x01,5\n", "二进制"),
    (b'{"foo": 1}', "dataSet"),
    (("serialNo,battery\n" + "x" * 5000 + ",5\n").encode(), "CSV"),
    (b"\xff\xfe\xfa\xfb", "UTF-8"),
])
def test_hostile_files_are_refused_whole(data: bytes, words: str) -> None:
    with pytest.raises(ExportRejected) as got:
        parse_export(data, BJ)
    assert words in got.value.zh


def test_hostile_rows_are_bounded_and_masked() -> None:
    pan = "6217000000000008009"
    rows, problems = parse_export(
        f"serialNo,tid,battery,ip,extra_col\nSN1,T1,{pan},1.2.3.4.5,{'y' * 300}\nSN2,T2,{'9' * 300},,\n".encode(), BJ)
    assert rows == []
    text = " ".join(p.zh + p.en for p in problems)
    assert pan not in text
    assert "621700*********8009" in text
    assert "y" * 100 not in text
    assert {p.field for p in problems} == {"battery", "ip", "extra_col"}
    _, problems = parse_export(b'[1, {"serialNo": "SN1", "battery": {"a": 1}}]', BJ)
    assert [(p.where_en, p.field) for p in problems] == [("item 1", ""), ("item 2", "battery")]
    assert registry.MAX_ROWS >= 100_000


def test_policy_files_toml_and_csv_and_their_problems(tmp_path: Path) -> None:
    p = parse_csv("型号,最低固件版本,禁用应用版本,主机地址,主机端口,允许IP段\n*,,,pos.acq.cn,8583,10.0.0.0/8\n"
                  "PAX A920,2.3.12,3.2.1;3.2.2,,,\n")
    mp = p.for_model("pax  a920")
    assert (mp.min_firmware, mp.bad_app, mp.host, mp.port, mp.ip_ranges) == (
        "2.3.12", ("3.2.1", "3.2.2"), "pos.acq.cn", 8583, ("10.0.0.0/8",))
    with pytest.raises(PolicyRejected) as got:
        parse_toml('[defaults]\nport = 70000\nip_ranges = ["10.0.0.0/33"]\n[thresholds]\nbattery_low_pct = 300\n'
                   'nope = 1\n[[model]]\nmodel = "A"\n[[model]]\nmodel = "a"\n')
    words = " ".join(p.zh for p in got.value.problems)
    for part in ("主机端口「70000」", "允许 IP 段", "battery_low_pct", "未知阈值", "重复"):
        assert part in words


@pytest.fixture
def api(engine: Engine, vault: Vault) -> tuple[TestClient, dict[str, str], str]:
    m1, _ = _merchant_with_terminals(engine, vault)
    tokens = {}
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None),
                                 ("mera", Role.MERCHANT, m1)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name,
                 now=NOW, actor="test")
        tokens[name] = issue_token(engine, username=name, name="tests", now=NOW, actor="test").token
    return TestClient(create_app(engine, now=lambda: NOW), raise_server_exceptions=False), tokens, m1


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_heartbeat_api_roles_validation_and_reads(api: tuple[TestClient, dict[str, str], str]) -> None:
    client, tok, _m1 = api
    beat: dict[str, Any] = {"battery": 4, "signal_dbm": -80, "printer": "ok", "dns": ["114.114.114.114"]}
    assert client.post("/api/v1/terminals/R0000001/heartbeat", json=beat, headers=_h(tok["supp"])).status_code == 403
    assert client.post("/api/v1/terminals/R0000001/heartbeat", json=beat).status_code == 401
    r = client.post("/api/v1/terminals/R0000001/heartbeat", json=beat, headers=_h(tok["oper"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["health"] == "warning"
    assert [f["code"] for f in body["open_findings"]] == ["low_battery"]
    assert body["open_findings"][0]["owner"] == "merchant"
    bad = client.post("/api/v1/terminals/R0000001/heartbeat", json={"ip": "300.1.1.1"}, headers=_h(tok["oper"]))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["problems"][0]["field"] == "ip"
    assert "IP 地址" in bad.json()["error"]["message_zh"]
    assert client.post("/api/v1/terminals/NOPE/heartbeat", json=beat, headers=_h(tok["oper"])).status_code == 404
    future = (NOW + timedelta(days=1)).isoformat()
    assert client.post("/api/v1/terminals/R0000001/heartbeat", json={"at": future},
                       headers=_h(tok["oper"])).status_code == 422
    listed = client.get("/api/v1/terminals?unhealthy=true", headers=_h(tok["supp"])).json()
    assert [(i["terminal_no"], i["health"], i["codes"]) for i in listed["items"]] == [
        ("R0000001", "warning", ["low_battery"])]
    # a merchant user: its own terminals only; another merchant's is 404
    mine = client.get("/api/v1/terminals", headers=_h(tok["mera"])).json()
    names = {i["terminal_no"] for i in mine["items"]}
    assert {"R0000001", "R0000002"} <= names
    assert "R0000003" not in names
    assert client.get("/api/v1/terminals/R0000003", headers=_h(tok["mera"])).status_code == 404
    one = client.get("/api/v1/terminals/SNREG0001", headers=_h(tok["mera"])).json()
    assert one["health"] == "warning"
    assert one["telemetry"]["battery"] == 4
    assert any(e["kind"] == "heartbeat" for e in one["timeline"])


def test_cli_import_policy_diagnose_and_list(db_url: str, engine: Engine, vault: Vault, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _merchant_with_terminals(engine, vault)
    monkeypatch.setenv("SETTLEGUARD_TIMEZONE", "Asia/Shanghai")
    csv_path = tmp_path / "tms.csv"
    recent = (datetime.now(BJ) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")  # the CLI runs on the real clock
    text = CSV_ZH.replace("2026-11-20 09:30:00", recent).replace("2026-11-20 09:31:00", recent)
    csv_path.write_text(text, encoding="utf-8")
    pol = tmp_path / "policy.toml"
    pol.write_text('[defaults]\nhost = "pos.acquirer.cn"\nport = 8583\n[[model]]\nmodel = "PAX A920"\n'
                   'min_firmware = "2.4.0"\n', encoding="utf-8")
    run = CliRunner()
    done = run.invoke(cli, ["--db", db_url, "terminals", "policy", "import", str(pol), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["models"] == ["PAX A920"]
    done = run.invoke(cli, ["--db", db_url, "terminals", "import", str(csv_path)])
    assert done.exit_code == 0, done.output
    assert "未登记的终端" in done.output
    assert "SNOTHER99" in done.output
    done = run.invoke(cli, ["--db", db_url, "terminals", "diagnose", "SNREG0002", "--json"])
    assert done.exit_code == 0, done.output
    diag = json.loads(done.output)
    assert {f["code"] for f in diag["open_findings"]} == {"weak_signal", "firmware_outdated", "low_battery",
                                                          "printer_no_paper"}
    done = run.invoke(cli, ["--db", db_url, "terminals", "diagnose", "R0000002"])
    assert done.exit_code == 0, done.output
    assert "固件版本过低" in done.output
    assert "收单运维 acquirer ops" in done.output
    assert "北京时间" in done.output
    done = run.invoke(cli, ["--db", db_url, "terminals", "list", "--unhealthy", "--json"])
    listed = json.loads(done.output)
    assert [(r["terminal_no"], r["health"]) for r in listed] == [("R0000002", "warning"), ("R0000001", "warning")]
    done = run.invoke(cli, ["--db", db_url, "terminals", "diagnose", "NOPE"])
    assert done.exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(text.replace(",80,", ",x,"), encoding="utf-8")
    done = run.invoke(cli, ["--db", db_url, "terminals", "import", str(bad)])
    assert done.exit_code == 1
    assert "第 2 行" in done.output
    assert "line 2" in done.output


def test_console_health_list_filters_and_terminal_page(api: tuple[TestClient, dict[str, str], str],
                                                      engine: Engine) -> None:
    from test_web_console import sign_in

    client, tok, _m1 = api
    beat = {"signal_dbm": -120, "tamper": True, "battery": 60}
    assert client.post("/api/v1/terminals/R0000002/heartbeat", json=beat, headers=_h(tok["oper"])).status_code == 200
    assert client.post("/api/v1/terminals/R0000001/heartbeat", json={"battery": 3},
                       headers=_h(tok["oper"])).status_code == 200
    staff = sign_in(client.app, "supp")  # type: ignore[arg-type]
    page = staff.get("/terminals?health=fault")
    assert page.status_code == 200
    assert "R0000002" in page.text
    assert "R0000001" not in page.text
    assert "防拆触发" in page.text
    only = staff.get("/terminals?code=low_battery&owner=merchant").text
    assert "R0000001" in only
    assert "R0000002" not in only
    assert "R0000002" in staff.get("/terminals?q=SNREG0002").text
    with engine.connect() as conn:
        tid = conn.execute(select(t.terminals.c.id).where(t.terminals.c.terminal_no == "R0000002")).scalar_one()
    one = staff.get(f"/terminals/{tid}")
    assert one.status_code == 200
    for words in ("防拆触发", "收单运维", "风控或合规拦截", "信号弱", "换一个网络", "心跳", "发现问题", "Asia/Shanghai"):
        assert words in one.text, words
    assert "tamper triggered" in staff.get(f"/terminals/{tid}?lang=en").text
    assert staff.get("/terminals/999999").status_code == 404
    merchant = sign_in(client.app, "mera")  # type: ignore[arg-type]
    assert merchant.get("/terminals").status_code == 403
