"""``settleguard doctor`` finds each planted problem -- wrong card key, old migration, stuck payout, stale or
missing backup, worker not running (no heartbeat, old heartbeat), open circuit, notice backlog, clock skew --
and says ok when there is none; exit code by the worst. On SQLite and PostgreSQL; doctor writes nothing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from factories import make_merchants
from settleguard.cards.custody import open_vault
from settleguard.cards.vault import Vault, load_vault
from settleguard.channels.simulator import SimulatedBank
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.db.engine import alembic_config, current_revision, head_revision
from settleguard.ops import heartbeat
from settleguard.ops.doctor import DoctorInput, newest_backup, run_checks
from settleguard.ops.doctor_model import Check, Status, Thresholds, exit_code
from settleguard.worker import run as worker_run

TH = Thresholds()


def real_now() -> datetime:
    return datetime.now(UTC)


def checks(db_url: str, key_file: Path, backup_dir: Path | None, *, now: datetime | None = None,
           key_error: str | None = None) -> dict[str, Check]:
    d = DoctorInput(db_url, None, key_file, backup_dir, TH, key_error)
    found = run_checks(d, now=(lambda: now) if now else real_now)
    assert [c.code for c in found] == ["database", "migration", "card_key", "disk", "clock", "worker",
                                       "notify_backlog", "stuck_payouts", "circuits", "backup", "statements"]
    return {c.code: c for c in found}


def manifest(backup_dir: Path, name: str, created: datetime) -> None:
    backup_dir.mkdir(exist_ok=True)
    (backup_dir / f"{name}.tar.manifest.json").write_text(
        json.dumps({"created_at": created.isoformat().replace("+00:00", "Z"), "format": "settleguard-backup"}))


def beat_by_the_worker(engine: Engine, vault: Vault, at: datetime) -> None:
    """The worker loop itself writes the heartbeat (one cycle; its steps are not what is tested here)."""
    n = worker_run(engine, SimulatedBank(1), vault, None, clock=lambda: at, today=lambda _n: at.date(),
                   stop=threading.Event(), interval=0, max_cycles=1, steps=())
    assert n == 1


def healthy(engine: Engine, tmp_path: Path) -> tuple[Path, Path]:
    key_file = tmp_path / "db.key"
    vault = open_vault(engine, key=None, key_file=key_file)  # an empty database: key created and recorded
    with engine.begin() as conn:
        make_merchants(conn, vault, 1)
    backups = tmp_path / "backups"
    manifest(backups, "settleguard-backup-20261207-20261207T010000Z", real_now() - timedelta(hours=2))
    with engine.begin() as conn:
        conn.execute(insert(t.bank_statements).values(
            file_sha256="a" * 64, source="camt.053", statement_id="S1", account="1100", line_count=0,
            imported_at=real_now() - timedelta(hours=3)))
    beat_by_the_worker(engine, vault, real_now())
    return key_file, backups


def test_a_healthy_installation_is_ok_and_doctor_writes_nothing(engine: Engine, db_url: str, tmp_path: Path) -> None:
    key_file, backups = healthy(engine, tmp_path)
    with engine.connect() as conn:
        before = {name: conn.execute(select(func.count()).select_from(tbl)).scalar_one()
                  for name, tbl in t.metadata.tables.items()}
    found = checks(db_url, key_file, backups)
    assert {c: v.status for c, v in found.items() if v.status != Status.OK} == {}, found
    assert exit_code(found.values()) == 0
    assert found["migration"].facts == {"current": head_revision(engine), "head": head_revision(engine)}
    assert found["worker"].facts["alive"] == 1
    if engine.dialect.name == "postgresql":
        assert abs(found["clock"].facts["skew_seconds"]) < 5  # measured against clock_timestamp()
    else:
        assert found["disk"].facts["free_bytes"] > 0
    with engine.connect() as conn:
        after = {name: conn.execute(select(func.count()).select_from(tbl)).scalar_one()
                 for name, tbl in t.metadata.tables.items()}
    assert after == before


def test_planted_problems_are_found(engine: Engine, db_url: str, tmp_path: Path) -> None:
    key_file, backups = healthy(engine, tmp_path)
    now = real_now()
    # wrong key: another key file
    other = tmp_path / "other.key"
    load_vault(None, other)
    # old migration: stamped one revision back
    head = head_revision(engine)
    command.stamp(alembic_config(engine), "0020")
    assert current_revision(engine) == "0020" != head
    # a payout stuck in result_unknown for 2 hours, one in inquiry for 2 days; a fresh one does not count
    with engine.begin() as conn:
        for i, (status, age) in enumerate([("result_unknown", timedelta(hours=2)), ("inquiry", timedelta(days=2)),
                                           ("result_unknown", timedelta(minutes=5))]):
            conn.execute(insert(t.payouts).values(
                merchant_id=1, cycle_date=date(2026, 11, 20), value_date=date(2026, 11, 21), amount_fen=100,
                status=status, idempotency_key=f"SG20261120M{i}", created_at=now - age, updated_at=now - age))
        conn.execute(insert(t.bank_circuits).values(bank_code="ICBC", state="open", failures=5, opened_at=now,
                                                    updated_at=now))
        mid = conn.execute(select(t.merchants.c.id)).scalar_one()
        nid = conn.execute(insert(t.notifications).values(
            merchant_id=mid, kind="payout_failed", dedupe_key="d1", payload={}, created_at=now)).inserted_primary_key[0]
        conn.execute(insert(t.notification_deliveries).values(
            notification_id=nid, channel="email", target="a@b.invalid", status="pending",
            next_attempt_at=now, created_at=now - timedelta(hours=5)))
        # the worker stopped an hour ago
        conn.execute(t.worker_heartbeats.update().values(beat_at=now - timedelta(hours=1)))
    # the newest backup is 4 days old
    for p in backups.iterdir():
        p.unlink()
    manifest(backups, "old", now - timedelta(days=4))

    found = checks(db_url, other, backups, now=now)
    got = {c: v.status for c, v in found.items()}
    assert got == {"database": "ok", "migration": "fail", "card_key": "fail", "disk": "ok", "clock": "ok",
                   "worker": "fail", "notify_backlog": "fail", "stuck_payouts": "fail", "circuits": "warn",
                   "backup": "fail", "statements": "ok"}
    assert exit_code(found.values()) == 2
    assert "0020" in found["migration"].en
    assert "db upgrade" in found["migration"].hint_en
    assert found["card_key"].facts["mismatched"] == [1]
    assert "不属于该数据库" in found["card_key"].zh
    assert found["stuck_payouts"].facts["result_unknown"]["payouts"] == 1  # the 5-minute one is not stuck
    assert found["stuck_payouts"].facts["inquiry"]["payouts"] == 1
    assert "2 payout(s)" in found["stuck_payouts"].en
    assert found["circuits"].facts["open"] == ["ICBC"]
    assert found["worker"].facts["age_seconds"] == 3600
    assert "60 min ago" in found["worker"].en
    assert "4 days" in found["backup"].en
    assert "4 天" in found["backup"].zh

    # milder: a backup 30 h old and a heartbeat 5 minutes old are warnings
    manifest(backups, "newer", now - timedelta(hours=30))
    with engine.begin() as conn:
        conn.execute(t.worker_heartbeats.update().values(beat_at=now - timedelta(minutes=5)))
    found = checks(db_url, key_file, backups, now=now)
    assert (found["backup"].status, found["worker"].status, found["card_key"].status) == ("warn", "warn", "ok")


def test_no_heartbeat_no_backup_and_no_key_are_failures(engine: Engine, db_url: str, tmp_path: Path) -> None:
    open_vault(engine, key=None, key_file=tmp_path / "db.key")
    found = checks(db_url, tmp_path / "missing.key", tmp_path / "empty-backups")
    assert found["worker"].status == "fail"
    assert "never run" in found["worker"].en
    assert found["backup"].status == "fail"
    assert "no backup in the backup directory" in found["backup"].en
    assert found["card_key"].status == "fail"
    assert "missing.key" in found["card_key"].en
    assert found["statements"].status == "warn"
    unconfigured = checks(db_url, tmp_path / "db.key", None)
    assert unconfigured["backup"].status == "warn"
    assert unconfigured["backup"].en == "no backup configured"
    no_key = checks(db_url, tmp_path / "db.key", None, key_error="no card key configured")
    assert no_key["card_key"].status == "fail"
    assert "no card key configured" in no_key["card_key"].en


def test_clock_skew_beyond_five_seconds_is_a_warning_on_postgresql(engine: Engine, db_url: str,
                                                                   tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite shares this machine's clock")
    d = DoctorInput(db_url, None, tmp_path / "k.key", None, TH)
    skewed = run_checks(d, now=lambda: real_now() + timedelta(seconds=30))
    (clock,) = [c for c in skewed if c.code == "clock"]
    assert clock.status == "warn"
    assert 29 < clock.facts["skew_seconds"] < 31
    assert "NTP" in clock.hint_en


def test_an_unreachable_database_fails_and_the_rest_is_not_checked(tmp_path: Path) -> None:
    d = DoctorInput("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", None, tmp_path / "k", None, TH)
    found = run_checks(d, now=real_now)
    by = {c.code: c for c in found}
    assert by["database"].status == "fail"
    assert by["worker"].status == "warn"
    assert "could not check" in by["worker"].en
    assert exit_code(found) == 2


def test_hostile_backup_manifests_are_skipped(tmp_path: Path) -> None:
    d = tmp_path / "b"
    d.mkdir()
    (d / "a.manifest.json").write_text("{not json")
    (d / "b.manifest.json").write_text(json.dumps(["created_at", "2099-01-01T00:00:00Z"]))
    (d / "c.manifest.json").write_text(json.dumps({"created_at": "yesterday"}))
    (d / "d.manifest.json").write_bytes(b"{\"created_at\": \"2099-01-01T00:00:00Z\", \"pad\": \"" + b"x" * (2 << 20)
                                        + b"\"}")
    (d / "e.manifest.json").write_bytes(b"\xff\xfe\x00garbage")
    assert newest_backup(d) is None
    manifest(d, "good", datetime(2026, 12, 1, tzinfo=UTC))
    assert newest_backup(d) == datetime(2026, 12, 1, tzinfo=UTC)


def test_doctor_command_json_and_exit_code(sqlite_url: str, tmp_path: Path) -> None:
    """Through the CLI (settings from flags and the environment): JSON with codes, exit 2 on a failure, 1 on
    warnings only, and text in zh then en."""
    from settleguard.db.engine import open_engine

    engine = open_engine(sqlite_url)
    key_file, backups = healthy(engine, tmp_path)
    env = {"SETTLEGUARD_KEY_FILE": str(key_file), "SETTLEGUARD_BACKUP_DIR": str(backups)}
    ok = CliRunner().invoke(cli, ["--db", sqlite_url, "doctor", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["status"] == "ok"
    assert {c["status"] for c in body["checks"]} == {"ok"}
    warn = CliRunner().invoke(cli, ["--db", sqlite_url, "doctor", "--json"], env={**env, "SETTLEGUARD_BACKUP_DIR": None})
    assert warn.exit_code == 1
    assert json.loads(warn.stdout)["status"] == "warn"
    with engine.begin() as conn:
        conn.execute(t.worker_heartbeats.delete())
    engine.dispose()
    text = CliRunner().invoke(cli, ["--db", sqlite_url, "doctor"], env=env)
    assert text.exit_code == 2
    out = " ".join(text.stdout.split())
    assert "工作进程心跳" in out
    assert "worker heartbeat" in out
    assert "最近 latest 20" in out
    assert "故障 fail" in out
    assert "出款工作进程从未运行" in out
    assert out.index("出款工作进程从未运行") < out.index("the payout worker has never run")


def test_the_heartbeat_keeps_one_row_per_worker(engine: Engine) -> None:
    at = datetime(2026, 12, 7, 8, tzinfo=UTC)
    heartbeat.beat(engine, at, run_id="r1", worker=("h:1", "h", 1))
    heartbeat.beat(engine, at + timedelta(seconds=30), run_id="r2", worker=("h:1", "h", 1))
    heartbeat.beat(engine, at + timedelta(days=8), run_id="x", worker=("h:2", "h", 2))  # prunes the week-old one
    with engine.connect() as conn:
        rows = conn.execute(select(t.worker_heartbeats.c.worker, t.worker_heartbeats.c.cycles)).all()
        last = heartbeat.latest(conn)
    assert rows == [("h:2", 1)]
    assert last is not None
    assert last.run_id == "x"
    assert last.beat_at == at + timedelta(days=8)


def test_a_worker_cycle_s_records_carry_its_run_id_the_same_as_its_heartbeat(engine: Engine, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from settleguard import logs
    from settleguard.worker import NamedStep

    vault = open_vault(engine, key=None, key_file=tmp_path / "db.key")
    calls = 0

    def step(_ctx: object) -> None:
        nonlocal calls
        calls += 1
        logging.getLogger("settleguard.test_step").warning("card 6217000012345678901 looked at")
        if calls == 1:
            raise RuntimeError("bank said 6217000012345678901 is closed")

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logs.configure(json=True)
        at = real_now()
        worker_run(engine, SimulatedBank(1), vault, None, clock=lambda: at, today=lambda _n: at.date(),
                   stop=threading.Event(), interval=0, max_cycles=3, steps=(NamedStep("probe", step),))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "6217000012345678901" not in err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failed = [r for r in records if "worker cycle failed" in r["event"]]
    assert len(failed) == 1
    assert "RuntimeError: bank said 621700*********8901 is closed" in failed[0]["exception"]
    steps = [r for r in records if r["logger"] == "settleguard.test_step"]
    assert len({r["run_id"] for r in steps}) == 3 == len(steps)  # one id per cycle
    assert failed[0]["run_id"] == steps[0]["run_id"]
    with engine.connect() as conn:
        last = heartbeat.latest(conn)
    assert last is not None
    assert last.cycles == 2
    assert last.run_id == steps[-1]["run_id"]
