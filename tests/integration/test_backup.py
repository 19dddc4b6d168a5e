"""Backups that restore (issue 23 item 3): a backup taken while payouts are being sent restores to a database where
ledger check and audit verify pass and the counts match the manifest; one changed byte fails verify; a non-empty
target is refused; the card key is never inside the archive; the worker's daily step keeps N. SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, select, text
from test_payout_send import SEND_AT, VALUE_DAY, ScriptedBank, make_payouts
from typer.testing import CliRunner

from conftest import NOW, PG_URL
from settleguard.cards.custody import open_vault
from settleguard.cards.vault import Vault
from settleguard.channels.base import BankOutcome, PayoutInstruction
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.db.engine import create, open_engine
from settleguard.ledger import repository as ledger_repo
from settleguard.ops import backup as ops
from settleguard.ops import backup_manifest as bm
from settleguard.payouts import service as payout_service
from settleguard.payouts.service import send_due
from settleguard.worker import STEPS, cycle

CHECKS_OF_A_GOOD_RESTORE = {"archive", "manifest", "dump_sha256", "restore", "row_counts", "ledger_check",
                            "ledger_totals", "audit_verify", "audit_head", "card_keys", "schema_revision"}


@contextmanager
def _pg_schema() -> Iterator[str]:
    """Another empty schema in the test database, as a URL (a restore target), dropped afterwards."""
    schema = f"sgrestore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def _target(db_url: str, tmp_path: Path, name: str) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / name}"
    else:
        with _pg_schema() as url:
            yield url


class SlowBank(ScriptedBank):
    """Answers OK after a short delay; says when sending is well under way, and holds the last sends until the
    backup is done, so that payouts are written before, during and after the snapshot."""

    def __init__(self, started_after: int, hold_at: int) -> None:
        super().__init__()
        self.started, self.backup_done = threading.Event(), threading.Event()
        self.started_after, self.hold_at, self.n = started_after, hold_at, 0

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        self.n += 1
        if self.n == self.started_after:
            self.started.set()
        if self.n == self.hold_at:
            self.backup_done.wait(60)
        time.sleep(0.01)
        return super().send(instruction)


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one())


def _key_material(key_file: Path) -> list[bytes]:
    """The key file's bytes, each key as written (base64) and each key's 32 raw bytes."""
    out = [key_file.read_bytes()]
    for line in key_file.read_text().splitlines():
        _, _, b64 = line.partition(":")
        if b64.strip():
            out += [b64.strip().encode(), base64.urlsafe_b64decode(b64.strip())]
    return out


def test_a_backup_taken_while_paying_restores_with_checks_passing(db_url: str, vault: Vault, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_engine(db_url)
    key_file = tmp_path / "test.key"  # the vault fixture's key file
    make_payouts(engine, vault, tmp_path, [10_000 + i for i in range(36)])
    open_vault(engine, key=None, key_file=key_file, now=NOW)  # the key's fingerprint recorded (cards.custody)
    monkeypatch.setattr(payout_service, "BATCH", 3)  # many small transactions while the snapshot is taken
    bank = SlowBank(started_after=8, hold_at=30)
    failures: list[BaseException] = []

    def pay() -> None:
        try:
            send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    entries_before = _count(engine, "ledger_entries")
    writer = threading.Thread(target=pay)
    writer.start()
    assert bank.started.wait(60)
    out = tmp_path / "backups"
    out.mkdir()
    try:
        made = ops.create_backup(engine, out, now=SEND_AT, business_day=VALUE_DAY)
        assert writer.is_alive()  # the writer was still paying when the snapshot was taken
    finally:
        bank.backup_done.set()
        writer.join(60)
    assert not failures
    m = made.manifest
    # payouts were written before and after the snapshot: the manifest holds a state in between
    assert entries_before < m.row_counts["ledger_entries"] < _count(engine, "ledger_entries")
    assert m.dialect == engine.dialect.name
    assert m.schema_revision
    assert m.row_counts["payouts"] == 36
    assert m.key_fingerprint == vault.fingerprints()[vault.current]
    assert set(m.ledger_totals) >= {"merchant_payable", "payout_in_transit"}
    assert made.path.name == ops.archive_name(VALUE_DAY, SEND_AT)
    assert sorted(p.name for p in out.iterdir()) == [made.path.name, made.path.name + ops.SIDECAR]  # no temp left

    assert made.path.stat().st_mode & 0o777 == 0o600  # the whole database: readable by its owner only
    blob = made.path.read_bytes()  # the card key is never inside the backup, in any form
    for secret in _key_material(key_file):
        assert secret not in blob

    checked = ops.verify_backup(made.path, server_url=db_url)
    assert checked.ok, [c for c in checked.checks if not c.ok]
    assert {c.code for c in checked.checks} >= CHECKS_OF_A_GOOD_RESTORE

    with engine.connect() as conn:
        source_before = ops.observe(conn)
    with _target(db_url, tmp_path, "restored.db") as target_url:
        restored = ops.restore_backup(made.path, target_url, now=SEND_AT + timedelta(hours=1))
        assert restored.ok, [c for c in restored.checks if not c.ok]
        target = create(target_url)
        try:
            with target.connect() as conn:
                got = ops.observe(conn)
                assert ledger_repo.check(conn) == []
            assert {k: v for k, v in got.row_counts.items() if k != "audit_events"} == {
                k: v for k, v in m.row_counts.items() if k != "audit_events"}
            assert got.row_counts["audit_events"] == m.row_counts["audit_events"] + 1  # backup.restored recorded
        finally:
            target.dispose()

        with pytest.raises(ops.BackupRefused) as refused:  # the target now holds tables
            ops.restore_backup(made.path, target_url, now=SEND_AT)
        assert "--force" in refused.value.zh
        assert "not empty" in refused.value.en
        again = ops.restore_backup(made.path, target_url, force=True, now=SEND_AT)
        assert again.ok, [c for c in again.checks if not c.ok]
    with engine.connect() as conn:
        assert ops.observe(conn) == source_before  # the source was never touched
    engine.dispose()


def _archive(tmp_path: Path, db_url: str) -> Path:
    engine = open_engine(db_url)
    try:
        out = tmp_path / "b"
        out.mkdir(exist_ok=True)
        return ops.create_backup(engine, out, now=NOW, business_day=date(2026, 11, 20)).path
    finally:
        engine.dispose()


def _spots(path: Path) -> dict[str, int]:
    """Byte offsets of interesting places in an archive: headers, the manifest, its digest, the dump, padding."""
    with tarfile.open(path, "r:") as tf:
        members = tf.getmembers()
    manifest, digest, dump = members
    size = path.stat().st_size
    return {"first header name": 0, "header checksum": 150, "manifest": manifest.offset_data + 20,
            "digest line": digest.offset_data + 3, "dump header size field": dump.offset + 124 + 5,
            "dump start": dump.offset_data, "dump middle": dump.offset_data + dump.size // 2,
            "dump end": dump.offset_data + dump.size - 1, "padding after the dump": dump.offset_data + dump.size,
            "end of archive": size - 1}


def test_one_changed_byte_fails_verify_and_restore_changes_nothing(db_url: str, tmp_path: Path) -> None:
    good = _archive(tmp_path, db_url)
    data = good.read_bytes()
    for where, offset in _spots(good).items():
        bad = tmp_path / f"bad-{offset}.tar"
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        bad.write_bytes(bytes(flipped))
        report = ops.verify_backup(bad, server_url=db_url)
        assert not report.ok, where
        assert report.checks[-1].code in ("archive", "manifest", "dump_sha256"), (where, report.checks)
        assert not any(c.code == "restore" for c in report.checks), where  # refused before any restore
    with _target(db_url, tmp_path, "never.db") as target_url:
        report = ops.restore_backup(bad, target_url, now=NOW)
        assert not report.ok
        if db_url.startswith("sqlite"):
            assert not (tmp_path / "never.db").exists()
        else:
            with create(target_url).connect() as conn:
                assert ops.observe(conn).row_counts == {}


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for ti, data in members:
            ti.size = len(data) if ti.isreg() else 0
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return path


def test_hostile_archives_fail_without_writing_anywhere(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tarfile.TarInfo("manifest.sha256")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases = {
        "traversal": [(tarfile.TarInfo("../outside/evil"), b"x"), (tarfile.TarInfo("manifest.sha256"), b"0"),
                      (tarfile.TarInfo("dump.sqlite"), b"x")],
        "symlink": [(tarfile.TarInfo("manifest.json"), b"{}"), (link, b""), (tarfile.TarInfo("dump.sqlite"), b"x")],
        "too many": [(tarfile.TarInfo(n), b"x") for n in ("manifest.json", "manifest.sha256", "dump.sqlite", "more")],
        "not a manifest": [(tarfile.TarInfo("manifest.json"), b"<!DOCTYPE x>"),
                           (tarfile.TarInfo("manifest.sha256"), bm.digest_line(b"<!DOCTYPE x>")),
                           (tarfile.TarInfo("dump.sqlite"), b"x")],
    }
    for name, members in cases.items():
        report = ops.verify_backup(_tar(tmp_path / f"{name}.tar", members), server_url=None)
        assert not report.ok, name
        assert report.checks[-1].code in ("archive", "manifest"), (name, report.checks)
    pan = "6222021234567890123"  # a card number in a member name is never echoed, nor a terminal escape
    echoed = ops.verify_backup(_tar(tmp_path / "pan.tar", [(tarfile.TarInfo(f"{pan}\x1b[2J"), b"x")]))
    detail = " ".join(c.detail for c in echoed.checks)
    assert pan not in detail
    assert "\x1b" not in detail
    assert "622202" in detail  # masked, not dropped
    (tmp_path / "junk.tar").write_bytes(b"\x00garbage" * 100)
    assert not ops.verify_backup(tmp_path / "junk.tar").ok
    assert list(outside.iterdir()) == []
    with pytest.raises(ops.BackupRefused):
        ops.verify_backup(tmp_path / "missing.tar")
    with pytest.raises(bm.ManifestError):
        bm.parse(b'{"format": "settleguard-backup", "format_version": 99}')


def test_the_worker_backs_up_once_a_business_day_and_keeps_n(db_url: str, vault: Vault, tmp_path: Path) -> None:
    assert "backup" in [s.name for s in STEPS]
    engine = open_engine(db_url)
    out = tmp_path / "daily"
    out.mkdir()
    (out / "notes.txt").write_text("an operator's file: never deleted")
    policy = ops.BackupPolicy(out, keep=2)
    only_backup = [s for s in STEPS if s.name == "backup"]
    days = [date(2026, 11, 17) + timedelta(days=i) for i in range(3)]
    for i, day in enumerate(days):
        for n in range(2):  # the second cycle of the day takes no second backup
            now = SEND_AT + timedelta(days=i, minutes=n)
            summary = cycle(engine, ScriptedBank(), vault, None, as_of=day, now=now, steps=only_backup, backup=policy)
            step = summary.steps["backup"]
            assert isinstance(step, ops.DailySummary)
            assert (step.created is None) == (n == 1)
    kept = ops.archives(out)
    assert [p.name[19:27] for p in kept] == ["20261118", "20261119"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(p.name for p in kept), *(p.name + ops.SIDECAR for p in kept), "notes.txt"])
    if engine.dialect.name == "sqlite":  # (PostgreSQL archives are verified in the first test)
        assert ops.verify_backup(kept[-1], server_url=db_url).ok
    blocked = tmp_path / "a file, not a directory"
    blocked.write_text("x")
    failed = cycle(engine, ScriptedBank(), vault, None, as_of=days[0], now=SEND_AT, steps=only_backup,
                   backup=ops.BackupPolicy(blocked, keep=2))
    step = failed.steps["backup"]
    assert isinstance(step, ops.DailySummary)
    assert "no such directory" in step.failed  # logged; the cycle carried on
    none = cycle(engine, ScriptedBank(), vault, None, as_of=days[0], now=SEND_AT, steps=only_backup)
    assert none.steps["backup"] is None  # no backup_dir: nothing
    engine.dispose()


def test_cli_create_verify_and_refusals(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    open_engine(db).dispose()
    runner = CliRunner()
    made = runner.invoke(cli, ["--db", db, "backup", "create", "--out", str(tmp_path), "--json"])
    assert made.exit_code == 0, made.output
    path = Path(made.output.strip().splitlines()[-1].split('"file": "')[1].split('"')[0])
    ok = runner.invoke(cli, ["--db", db, "backup", "verify", str(path), "--work-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "账务检查" in ok.output
    assert "ledger check" in ok.output
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    failed = runner.invoke(cli, ["--db", db, "backup", "verify", str(bad)])
    assert failed.exit_code == 1, failed.output
    assert "检查未通过" in failed.output
    assert "Check failed" in failed.output
    refused = runner.invoke(cli, ["--db", db, "backup", "restore", str(path), "--to", db])
    assert refused.exit_code == 2, refused.output
    assert "--force" in refused.output
    missing = runner.invoke(cli, ["--db", db, "backup", "verify", str(tmp_path / "nope.tar")])
    assert missing.exit_code == 2
    no_dir = runner.invoke(cli, ["--db", db, "backup", "create", "--out", str(tmp_path / "nope")])
    assert no_dir.exit_code == 2


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
_hex = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)


@given(counts=st.dictionaries(_names, st.integers(0, 10**12), max_size=8),
       totals=st.dictionaries(_names, st.integers(-(10**15), 10**15), max_size=5),
       head=st.integers(0, 10**9), sha=_hex, head_hash=_hex, schema=st.none() | _names)
@settings(max_examples=60, deadline=None)
def test_a_manifest_reads_back_as_written(counts: dict[str, int], totals: dict[str, int], head: int, sha: str,
                                          head_hash: str, schema: str | None) -> None:
    m = bm.Manifest(created_at="2026-11-20T15:30:00Z", business_day="2026-11-20", dialect="postgresql",
                    pg_schema=schema, schema_revision="0020", dump_name="dump.pgc", dump_sha256=sha, dump_bytes=7,
                    row_counts=counts, ledger_totals=totals, audit_head_id=head, audit_head_hash=head_hash,
                    card_keys=(bm.KeyFingerprint(1, "ab" * 32, True), bm.KeyFingerprint(2, "cd" * 32, False)),
                    key_fingerprint="cd" * 32, app_version="0.1.0")
    assert bm.parse(m.to_bytes()) == m


def test_a_manifest_from_outside_is_checked_field_by_field() -> None:
    good = bm.Manifest(created_at="x", business_day="y", dialect="sqlite", pg_schema=None, schema_revision=None,
                       dump_name="dump.sqlite", dump_sha256="0" * 64, dump_bytes=1, row_counts={}, ledger_totals={},
                       audit_head_id=0, audit_head_hash="0" * 64).to_dict()
    hostile: list[dict[str, object]] = [
        {"pg_schema": 'x"; DROP SCHEMA public CASCADE; --'},  # reaches SQL as an identifier: refused
        {"row_counts": {'t" ; --': 1}},
        {"dump": {"name": "../../etc/passwd", "sha256": "0" * 64, "bytes": 1}},
        {"dump": {"name": "dump.sqlite", "sha256": "zz", "bytes": 1}},
        {"audit_head": {"id": True, "hash": "0" * 64}},
        {"dialect": "oracle"},
        {"format_version": 2},
    ]
    for change in hostile:
        with pytest.raises(bm.ManifestError):
            bm.parse(json.dumps({**good, **change}).encode())
    with pytest.raises(bm.ManifestError):
        bm.parse(b" " * (bm.MAX_MANIFEST_BYTES + 1))
    assert bm.parse(json.dumps(good).encode()).dialect == "sqlite"


def test_the_composition_root_hands_the_worker_its_backup_policy(tmp_path: Path) -> None:
    from settleguard.bootstrap import Container
    from settleguard.config import Settings

    assert Container(Settings()).backup_policy() is None
    given = Container(Settings(backup_dir=tmp_path, backup_keep=3)).backup_policy()
    assert given == ops.BackupPolicy(tmp_path, 3)
    with pytest.raises(ValueError, match="backup_keep"):
        Settings(backup_keep=0)


def _reseal(src: Path, out_dir: Path, change_dump: str | None = None, **manifest_changes: object) -> Path:
    """A well-formed archive (digests right) whose dump or manifest was changed: what a forger would write."""
    import dataclasses
    import sqlite3

    work = out_dir / "work"
    work.mkdir(exist_ok=True)
    report = ops.Report(src)
    opened = ops.open_archive(src, work, report)
    assert opened is not None
    if change_dump:
        conn = sqlite3.connect(opened.dump)
        conn.execute(change_dump)
        conn.commit()
        conn.close()
    m = dataclasses.replace(opened.manifest, dump_sha256=ops._sha256_file(opened.dump),
                            dump_bytes=opened.dump.stat().st_size, **manifest_changes)  # type: ignore[arg-type]
    path, _ = ops._write_archive(out_dir, f"forged-{len(list(out_dir.glob('forged-*.tar')))}.tar", m, opened.dump, 0)
    return path


def test_a_well_sealed_archive_with_wrong_contents_fails_the_named_check(sqlite_url: str, vault: Vault,
                                                                         tmp_path: Path) -> None:
    engine = open_engine(sqlite_url)
    make_payouts(engine, vault, tmp_path, [10_000, 20_000])
    send_due(engine, ScriptedBank(), vault, as_of=VALUE_DAY, now=SEND_AT)
    made = ops.create_backup(engine, tmp_path, now=SEND_AT, business_day=VALUE_DAY)
    engine.dispose()
    out = tmp_path / "forged"
    out.mkdir()
    cases = {
        "row_counts": _reseal(made.path, out, row_counts={**made.manifest.row_counts, "payouts": 3}),
        "audit_head": _reseal(made.path, out, audit_head_id=made.manifest.audit_head_id - 1),
        "ledger_check": _reseal(made.path, out, "UPDATE ledger_postings SET amount_fen = amount_fen + 1 "
                                                "WHERE id = (SELECT min(id) FROM ledger_postings)"),
        "audit_verify": _reseal(made.path, out, "UPDATE audit_events SET actor = 'mallory' "
                                                "WHERE id = (SELECT min(id) FROM audit_events)"),
        "row_counts+audit_verify": _reseal(  # a payout event gone: the counts and the audit digest say so
            made.path, out, "DELETE FROM payout_events WHERE id = (SELECT max(id) FROM payout_events)"),
    }
    for checks, path in cases.items():
        report = ops.verify_backup(path)
        failed = {c.code for c in report.checks if not c.ok}
        assert set(checks.split("+")) <= failed, (checks, report.checks)
        assert {"archive", "manifest", "dump_sha256"}.isdisjoint(failed)  # the seal itself was right


def test_the_password_goes_to_pg_tools_in_the_environment_never_on_the_command_line() -> None:
    from sqlalchemy.engine import make_url

    args, env = ops._pg_conn(make_url("postgresql+psycopg://sg:s3cr%3Dt@db1:6543/settle?sslmode=require"))
    assert args == ["-h", "db1", "-p", "6543", "-U", "sg"]
    assert env["PGPASSWORD"] == "s3cr=t"
    assert env["PGSSLMODE"] == "require"
    assert not any("s3cr" in a for a in args)
