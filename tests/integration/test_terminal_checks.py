"""Terminal checks (issue 21 item 3/4): a planted fault in a terminal's telemetry gives exactly the right finding
(taxonomy category, owner, guidance), a clean terminal none; through the service the finding is stored open and
closed again once the telemetry is clean (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from factories import make_merchants
from settleguard import labels
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.merchants import terminals
from settleguard.terminals import service
from settleguard.terminals.checks import CODES, OWNERS, STEPS, State, check, haversine_km
from settleguard.terminals.policy import parse_toml
from settleguard.terminals.telemetry import Telemetry, read_fields

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
BJ = ZoneInfo("Asia/Shanghai")
POLICY = """
[defaults]
host = "pos.acquirer.cn"
port = 8583
ip_ranges = ["192.168.0.0/16", "10.0.0.0/8"]
[thresholds]
silent_days = 3
moved_km = 2.0
[[model]]
model = "PAX A920"
min_firmware = "2.3.12"
min_app = "3.1.0"
bad_firmware = ["2.4.0"]
bad_app = ["3.2.1"]
"""
CLEAN: dict[str, Any] = {
    "comm_type": "Wi-Fi", "host": "pos.acquirer.cn", "port": 8583, "ip": "192.168.1.20", "mask": "255.255.255.0",
    "gateway": "192.168.1.1", "dns": "114.114.114.114", "battery": 80, "charging": False, "signal_dbm": -70,
    "reconnects": 1, "echo_latency_ms": 120, "echo_loss_pct": 0, "printer": "ok", "tamper": False,
    "lat": 39.9087, "lng": 116.3975, "home_lat": 39.9087, "home_lng": 116.3975, "app_version": "3.1.4",
    "firmware": "2.3.12",
}
# code -> the fields that plant it over the clean telemetry
FAULTS: dict[str, dict[str, Any]] = {
    "ip_config_invalid": {"gateway": "192.168.2.1"},
    "ip_out_of_range": {"ip": "172.16.5.9", "mask": "255.255.0.0", "gateway": "172.16.0.1"},
    "no_dns": {"dns": "无"},
    "wrong_host": {"host": "pos.evil.example"},
    "weak_signal": {"signal_dbm": -112, "comm_type": "4G"},
    "frequent_reconnects": {"reconnects": 40},
    "high_latency": {"echo_latency_ms": 3500},
    "packet_loss": {"echo_loss_pct": 35},
    "firmware_outdated": {"firmware": "2.3.5"},
    "firmware_known_bad": {"firmware": "2.4.0"},
    "app_outdated": {"app_version": "3.0.2"},
    "app_known_bad": {"app_version": "3.2.1"},
    "low_battery": {"battery": 9},
    "printer_no_paper": {"printer": "缺纸"},
    "printer_fault": {"printer": "fault"},
    "tamper": {"tamper": "是"},
    "moved": {"lat": 39.99, "lng": 116.60},
}
SILENT = ("silent_no_heartbeat", "silent_no_transactions")


def _telemetry(fields: dict[str, Any], at: datetime = NOW) -> Telemetry:
    tel, problems = read_fields({**fields, "last_heartbeat_at": at.isoformat()}, BJ)
    assert problems == []
    return tel


def _state(fields: dict[str, Any], **kw: Any) -> State:
    tel = _telemetry(fields, kw.pop("at", NOW))
    return State("A0000001", "PAX A920", tel.firmware, tel, kw.pop("first_seen_at", NOW - timedelta(days=1)),
                 kw.pop("last_txn_at", NOW - timedelta(hours=2)))


def test_every_code_has_a_taxonomy_category_an_owner_steps_and_labels() -> None:
    taxonomy = {"card_info_error", "card_status_abnormal", "system_or_network_fault", "limit_exceeded",
                "verification_failed", "insufficient_funds", "risk_or_compliance_block", "transaction_data_error",
                "duplicate", "result_unknown", "unknown"}
    assert set(CODES) == set(FAULTS) | set(SILENT)
    for code, spec in CODES.items():
        assert spec.category in taxonomy
        assert spec.owner in OWNERS
        assert spec.steps
        assert set(spec.steps) <= set(STEPS)
        assert spec.merchant_zh
        assert spec.merchant_en
        assert spec.ops_zh
        assert spec.ops_en
        assert labels.TERMINAL_FINDING[code] == (spec.title_zh, spec.title_en)
    assert set(OWNERS) == set(labels.TERMINAL_OWNER)
    assert set(STEPS) == set(labels.TERMINAL_STEP)


def test_a_clean_terminal_has_no_finding() -> None:
    assert check(_state(CLEAN), parse_toml(POLICY), NOW) == []


@pytest.mark.parametrize("code", sorted(FAULTS))
def test_a_planted_fault_gives_its_finding(code: str) -> None:
    got = check(_state({**CLEAN, **FAULTS[code]}), parse_toml(POLICY), NOW)
    assert [f.code for f in got] == [code]
    d = got[0].as_dict()
    assert d["category"] == CODES[code].category
    assert d["owner"] == CODES[code].owner
    assert d["terminal"] == "A0000001"
    assert d["at"] == NOW.isoformat()
    assert d["evidence"]
    assert d["detail_zh"]
    assert d["detail_en"]


def test_silence_no_heartbeat_and_no_transactions_for_n_days() -> None:
    policy = parse_toml(POLICY)
    old = NOW - timedelta(days=4)
    got = check(_state(CLEAN, at=old, first_seen_at=NOW - timedelta(days=30), last_txn_at=None), policy, NOW)
    assert [f.code for f in got] == ["silent_no_heartbeat", "silent_no_transactions"]
    # a transaction yesterday: only the heartbeat is missing; a terminal first seen today is not judged yet
    got = check(_state(CLEAN, at=old, last_txn_at=NOW - timedelta(days=1)), policy, NOW)
    assert [f.code for f in got] == ["silent_no_heartbeat"]
    assert check(_state(CLEAN, first_seen_at=NOW - timedelta(hours=1), last_txn_at=None), policy, NOW) == []


def test_mask_and_gateway_variants_and_distance() -> None:
    policy = parse_toml(POLICY)
    for fields in ({"mask": "255.0.255.0"}, {"ip": "192.168.1.0"}, {"gateway": "192.168.1.20"}):
        assert [f.code for f in check(_state({**CLEAN, **fields}), policy, NOW)] == ["ip_config_invalid"], fields
    # Tiananmen to the Bund is about 1,067 km
    assert 1000 < haversine_km(39.9087, 116.3975, 31.2400, 121.4900) < 1100
    # a model without its own policy gets the defaults only: no version checks
    other = State("A0000001", "Other X1", "0.1", _telemetry({**CLEAN, "app_version": "0.1"}))
    assert check(other, policy, NOW) == []


def _setup(engine: Engine, vault: Vault, tmp_path: Path) -> str:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    terminals.add(engine, m.merchant_no, serial="SNCHK0001", terminal_no="A0000001", model="PAX A920",
                  address="北京东城区1号", actor="op", now=NOW - timedelta(days=10))
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    service.import_policy(engine, path, actor="op", now=NOW)
    return str(m.merchant_no)


def _open(engine: Engine) -> dict[str, tuple[str, str, str]]:
    tf = t.terminal_findings
    with engine.connect() as conn:
        return {r.code: (r.category, r.owner, r.severity) for r in conn.execute(
            select(tf).where(tf.c.status == "open"))}


def test_findings_are_stored_open_and_closed_through_heartbeats(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    _setup(engine, vault, tmp_path)
    clean = _telemetry(CLEAN, NOW)
    out = service.record_heartbeat(engine, "A0000001", clean, now=NOW)
    assert out["health"] == "ok"
    assert out["open_findings"] == []
    at = NOW
    for code in ("wrong_host", "weak_signal", "firmware_known_bad", "printer_no_paper", "tamper", "moved"):
        at += timedelta(minutes=1)
        out = service.record_heartbeat(engine, "A0000001", _telemetry({**CLEAN, **FAULTS[code]}, at), now=at)
        assert set(_open(engine)) == {code}, code
        assert _open(engine)[code][:2] == (CODES[code].category, CODES[code].owner)
        assert out["health"] == ("fault" if CODES[code].severity == "high" else "warning")
        at += timedelta(minutes=1)
        service.record_heartbeat(engine, "A0000001", _telemetry(CLEAN, at), now=at)
        assert _open(engine) == {}, code
    tf = t.terminal_findings
    with engine.connect() as conn:
        closed = conn.execute(select(tf.c.code).where(tf.c.status == "closed")).scalars().all()
        beats = conn.execute(select(t.terminal_heartbeats.c.id)).scalars().all()
    assert sorted(closed) == sorted(["wrong_host", "weak_signal", "firmware_known_bad", "printer_no_paper", "tamper",
                                     "moved"])
    assert len(beats) == 13
    # silence is judged against the clock: five days later the sweep opens both
    later = at + timedelta(days=5)
    opened, _ = service.sweep(engine, later)
    assert opened == 2
    assert set(_open(engine)) == set(SILENT)
    diag = service.diagnose(engine, "SNCHK0001", now=later)
    assert diag["health"] == "fault"
    assert {f["code"] for f in diag["open_findings"]} == set(SILENT)
    kinds = [e["kind"] for e in diag["timeline"]]
    assert {"event", "heartbeat", "finding_opened", "finding_closed"} <= set(kinds)
    assert [e["at"] for e in diag["timeline"]] == sorted((e["at"] for e in diag["timeline"]), reverse=True)


def test_silence_reads_the_transactions_table_and_the_history_is_bounded(
        engine: Engine, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from factories import Txn, import_rows, ref
    from settleguard.settlement.model import CardType, TxnKind
    from settleguard.terminals import repository

    merchant_no = _setup(engine, vault, tmp_path)
    monkeypatch.setattr(repository, "HISTORY", 3)
    start = NOW - timedelta(days=6)
    for i in range(5):  # five heartbeats six days ago: the history keeps the latest three
        service.record_heartbeat(engine, "A0000001", _telemetry(CLEAN, start + timedelta(minutes=i)),
                                 now=start + timedelta(minutes=i))
    with engine.connect() as conn:
        kept = conn.execute(select(t.terminal_heartbeats.c.at).order_by(t.terminal_heartbeats.c.at)).scalars().all()
    assert kept == [start + timedelta(minutes=i) for i in (2, 3, 4)]
    service.sweep(engine, NOW)
    assert set(_open(engine)) == set(SILENT)
    # a sale yesterday on this terminal closes "no transactions"; the heartbeat is still missing
    sale = NOW - timedelta(days=1)
    import_rows(engine, tmp_path, [Txn(ref(), merchant_no, "A0000001", sale.astimezone(BJ), TxnKind.SALE,
                                       CardType.DEBIT, 1000)], now=NOW)
    opened, closed = service.sweep(engine, NOW)
    assert (opened, closed) == (0, 1)
    assert set(_open(engine)) == {"silent_no_heartbeat"}
    # the same sweep again changes nothing
    assert service.sweep(engine, NOW) == (0, 0)
