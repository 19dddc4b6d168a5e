"""The card key from a command the operator configures (issue 23 item 1; cards/key_source.py), on SQLite and
PostgreSQL: a real script that prints a key file, a failing one and a hanging one; precedence key > command > file;
``keys status`` read-only; rotation through ``--new-key-out`` when the key lives in a store settleguard cannot write."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from factories import make_merchants
from settleguard.bootstrap import Container
from settleguard.cards import custody
from settleguard.cards import key_repository as key_repo
from settleguard.cards.key_rotation import RotationError, RotationPending, rotate_keys
from settleguard.cards.key_source import COMMAND_SOURCE, KeyCommandError, KeySource, load, run_key_command
from settleguard.cards.vault import ENV_SOURCE, Vault, VaultError, load_vault, read_vault
from settleguard.cli.main import app
from settleguard.config import Settings
from settleguard.db import tables as t

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def kms_script(tmp_path: Path, store: Path) -> str:
    """A stand-in for a KMS client: a shell script that prints the stored key file."""
    script = tmp_path / "kms-get.sh"
    script.write_text(f"#!/bin/sh\nexec cat '{store}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{script} --secret settleguard/card-key"


def script(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text(f"#!/bin/sh\n{body}\n")
    p.chmod(0o700)
    return str(p)


def runner_cli(db_url: str, env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    """The command line in process, configured through the environment like an operator's shell."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SETTLEGUARD_")}
    full = {**clean, **{f"SETTLEGUARD_{k.upper()}": v for k, v in env.items()}, "COLUMNS": "200"}
    return CliRunner().invoke(app, ["--db", db_url, *args], env=full, catch_exceptions=False)


def test_a_key_command_prints_the_key_file_and_the_vault_says_command(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    store = tmp_path / "test.key"  # the key file behind the `vault` fixture, read through the "KMS"
    with engine.begin() as conn:
        make_merchants(conn, vault, 3)
    custody.check(engine, vault, NOW)
    got = custody.open_vault(engine, key=None, key_file=None, command=kms_script(tmp_path, store), now=NOW)
    assert got.source == COMMAND_SOURCE == "command"
    assert got.fingerprints() == vault.fingerprints()
    other = tmp_path / "other.key"
    load_vault(None, other)
    with pytest.raises(custody.KeyCustodyError, match="SETTLEGUARD_KEY_COMMAND") as exc:
        custody.open_vault(engine, key=None, key_file=None, command=kms_script(tmp_path, other), now=NOW)
    assert other.read_text().split(":", 1)[1].strip() not in str(exc.value)


def test_a_failing_command_names_its_exit_code_and_stderr_never_its_stdout(tmp_path: Path) -> None:
    leaked = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    cmd = script(tmp_path, "fail.sh", f"echo '1:{leaked}'\necho 'kms: AccessDenied for role sg-prod' >&2\nexit 3")
    with pytest.raises(KeyCommandError) as exc:
        run_key_command(cmd, 5)
    text = str(exc.value)
    assert "退出码 3" in text
    assert "exit code 3" in text
    assert "AccessDenied" in text
    assert leaked not in text
    assert text.index("密钥命令失败") < text.index("the key command failed")
    with pytest.raises(KeyCommandError, match="cannot be started"):
        run_key_command(str(tmp_path / "no-such-kms"), 5)
    with pytest.raises(KeyCommandError, match="printed no key"):
        run_key_command(script(tmp_path, "empty.sh", "exit 0"), 5)
    with pytest.raises(KeyCommandError, match="more than 1024 bytes"):
        run_key_command(script(tmp_path, "flood.sh", "head -c 5000 /dev/zero | tr '\\\\0' A"), 5, max_output=1024)
    with pytest.raises(KeyCommandError, match="does not parse"):
        run_key_command("kms 'unclosed", 5)
    bad = script(tmp_path, "bad.sh", f"echo 'x{leaked}'")
    with pytest.raises(VaultError, match="expected") as exc2:
        load(KeySource(command=bad))
    assert leaked not in str(exc2.value)


def test_a_hanging_command_is_killed_at_the_timeout_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    cmd = script(tmp_path, "hang.sh", f"sleep 60 &\necho $! > '{marker}'\nwait")
    started = time.monotonic()
    with pytest.raises(KeyCommandError, match="timed out after 0.5 s") as exc:
        run_key_command(cmd, 0.5)
    assert time.monotonic() - started < 10
    assert "超时" in str(exc.value)
    child = int(marker.read_text())
    time.sleep(0.2)
    try:
        os.kill(child, 0)
        alive = Path(f"/proc/{child}/stat").read_text().split()[2] != "Z"
    except ProcessLookupError:
        alive = False
    assert not alive  # the whole process group was killed, not only the shell


def test_precedence_is_the_environment_then_the_command_then_the_file(tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    both = Container(Settings(db=db, key=key, key_command="kms get", key_file=tmp_path / "f.key")).key_source()
    assert (both.kind, both.env_key) == ("environment", key)
    cmd = Container(Settings(db=db, key_command="kms get", key_file=tmp_path / "f.key")).key_source()
    assert (cmd.kind, cmd.command) == ("command", "kms get")
    assert "kms" in cmd.describe()
    assert "get" not in cmd.describe().split("kms", 1)[1]
    plain = Container(Settings(db=db)).key_source()
    assert (plain.kind, plain.key_file) == ("file", tmp_path / "sg.key")
    assert Container(Settings(db="postgresql+psycopg://x@h/db", key_command="kms get")).key_source().kind == "command"
    assert read_vault(f"1:{key} 2:{key}", Path()).versions == (1, 2)  # the environment takes key-file entries too
    assert read_vault(f"1:{key} 2:{key}", Path()).source == ENV_SOURCE


def test_keys_status_shows_versions_counts_and_the_loaded_key_read_only(
        db_url: str, engine: Engine, vault: Vault, tmp_path: Path) -> None:
    store = tmp_path / "test.key"
    with engine.begin() as conn:
        make_merchants(conn, vault, 4)
    custody.check(engine, vault, NOW)
    settings = {"key_command": kms_script(tmp_path, store), "timezone": "Asia/Shanghai"}
    out = runner_cli(db_url, settings, "keys", "status")
    assert out.exit_code == 0, out.output
    assert "密钥命令 key command" in out.output
    assert "kms-get.sh" in out.output
    assert "settleguard/card-key" not in out.output  # the command's arguments are not shown
    assert vault.fingerprints()[1] in out.output
    assert "密钥属于该数据库 the key is this database's" in out.output
    assert "北京时间" in out.output
    assert out.output.index("卡号密钥") < out.output.index("card key")
    data = json.loads(runner_cli(db_url, settings, "keys", "status", "--json").stdout)
    assert data["matches"] is True
    assert data["key"]["source"] == "command"
    assert [(v["version"], v["cards"], v["held"], v["held_matches"]) for v in data["versions"]] == [(1, 4, True, True)]
    assert store.read_text().split(":", 1)[1].strip() not in json.dumps(data)
    # a key file nobody has: reported, exit 1, and nothing is created or recorded
    missing = tmp_path / "none.key"
    out = runner_cli(db_url, {"key_file": str(missing)}, "keys", "status")
    assert out.exit_code == 1
    assert str(missing) in out.output
    assert not missing.exists()
    stranger = tmp_path / "stranger.key"
    load_vault(None, stranger)
    out = runner_cli(db_url, {"key_file": str(stranger)}, "keys", "status", "--json")
    assert out.exit_code == 1
    assert json.loads(out.stdout)["key"]["mismatched"] == [1]
    with engine.connect() as conn:
        assert list(key_repo.recorded(conn)) == [1]


def test_keys_status_on_a_database_without_a_key_creates_none(db_url: str, engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "fresh.key"
    out = runner_cli(db_url, {"key_file": str(key_file)}, "keys", "status")
    assert out.exit_code == 0, out.output
    assert "首次使用时新建" in out.output
    assert not key_file.exists()
    with engine.connect() as conn:
        assert key_repo.recorded(conn) == {}


def test_rotation_with_the_key_in_a_kms_writes_the_new_key_file_then_finishes_when_the_store_returns_it(
        db_url: str, engine: Engine, vault: Vault, tmp_path: Path) -> None:
    store = tmp_path / "test.key"  # what the KMS holds
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 7)
    custody.check(engine, vault, NOW)
    settings = {"key_command": kms_script(tmp_path, store)}
    refused = runner_cli(db_url, settings, "keys", "rotate")
    assert refused.exit_code == 2
    assert "--new-key-out" in refused.output
    with engine.connect() as conn:
        assert key_repo.last_rotation(conn) is None
    out_file = tmp_path / "out" / "new.key"
    out_file.parent.mkdir()
    first = runner_cli(db_url, settings, "keys", "rotate", "--new-key-out", str(out_file))
    assert first.exit_code == 0, first.output
    assert out_file.stat().st_mode & 0o777 == 0o600
    assert [line.split(":")[0] for line in out_file.read_text().splitlines()] == ["1", "2"]
    assert str(out_file) in first.output
    waiting = runner_cli(db_url, settings, "keys", "rotate", "--json")  # the store still returns version 1 only
    assert waiting.exit_code == 1
    assert json.loads(waiting.stdout)["pending"] is True
    again = runner_cli(db_url, settings, "keys", "rotate", "--new-key-out", str(out_file))  # idempotent
    assert again.exit_code == 1
    assert "已写出" in again.output
    status = json.loads(runner_cli(db_url, settings, "keys", "status", "--json").stdout)
    assert status["rotation"]["phase"] == "new_key"
    assert status["rotation"]["phase_en"] == "writing the new key"
    # the operator loads the file into the KMS
    store.write_text(out_file.read_text())
    done = runner_cli(db_url, settings, "keys", "rotate", "--json")
    assert done.exit_code == 0, done.output
    res = json.loads(done.stdout)
    assert (res["new_version"], res["reencrypted"], res["resumed"], res["remove_from_store"]) == (2, 7, True, [1])
    both = read_vault(None, store)
    with engine.connect() as conn:
        rows = conn.execute(select(t.settlement_accounts.c.pan_cipher, t.settlement_accounts.c.pan_nonce,
                                   t.settlement_accounts.c.key_version)).all()
        assert key_repo.recorded(conn)[1].retired_at is not None
    assert sorted(both.open(c, n, v) for c, n, v in rows) == sorted(m.pan for m in ms)
    assert {v for *_x, v in rows} == {2}
    store.write_text(out_file.read_text().splitlines()[1] + "\n")  # the operator trims the store
    custody.open_vault(engine, key=None, key_file=None, command=kms_script(tmp_path, store), now=NOW)


def test_a_store_that_returns_another_new_key_than_the_one_written_is_refused(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    store = tmp_path / "test.key"
    with engine.begin() as conn:
        make_merchants(conn, vault, 2)
    custody.check(engine, vault, NOW)
    src = KeySource(command=kms_script(tmp_path, store))
    out_file = tmp_path / "new.key"
    with pytest.raises(RotationPending):
        rotate_keys(engine, None, source=src, new_key_out=out_file, now=NOW)
    other = read_vault(None, tmp_path / "test.key")
    assert other.versions == (1,)
    store.write_text(store.read_text() + "2:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
    with pytest.raises(RotationError, match="put the content of the file --new-key-out wrote"):
        rotate_keys(engine, None, source=src, now=NOW)
    with engine.connect() as conn:
        assert 2 not in key_repo.recorded(conn)


def test_the_environment_key_rotates_through_a_new_key_file_too(engine: Engine, tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env_vault = read_vault(key, Path())
    with engine.begin() as conn:
        make_merchants(conn, env_vault, 3)
    custody.check(engine, env_vault, NOW)
    out_file = tmp_path / "env-new.key"
    with pytest.raises(RotationPending) as exc:
        rotate_keys(engine, None, source=KeySource(env_key=key), new_key_out=out_file, now=NOW)
    assert exc.value.written
    assert exc.value.new_version == 2
    new_env = " ".join(out_file.read_text().split())  # SETTLEGUARD_KEY="1:... 2:..."
    res = rotate_keys(engine, None, source=KeySource(env_key=new_env), now=NOW)
    assert (res.new_version, res.reencrypted, res.remove_from_store) == (2, 3, (1,))


def test_the_cli_runs_the_key_command_through_the_container(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    store = tmp_path / "test.key"
    with engine.begin() as conn:
        make_merchants(conn, vault, 1)
    custody.check(engine, vault, NOW)
    rt = Container(Settings(db="sqlite://", key_command=kms_script(tmp_path, store)), given_engine=engine)
    assert rt.vault.source == "command"
    failing = Container(Settings(db="sqlite://", key_command=f"{sys.executable} -c 'import sys; sys.exit(7)'",
                                 key_command_timeout_seconds=5), given_engine=engine)
    with pytest.raises(custody.KeyCustodyError, match="exit code 7"):
        _ = failing.vault


def test_doctor_reads_the_key_through_the_key_command(db_url: str, engine: Engine, vault: Vault,
                                                      tmp_path: Path) -> None:
    from settleguard.ops.doctor import run_checks

    store = tmp_path / "test.key"
    with engine.begin() as conn:
        make_merchants(conn, vault, 1)
    custody.check(engine, vault, NOW)

    def card_key(command: str) -> tuple[str, str]:
        d = Container(Settings(db=db_url, key_command=command, key_command_timeout_seconds=5)).doctor_input()
        (check,) = [c for c in run_checks(d, now=lambda: NOW, engine=engine) if c.code == "card_key"]
        return str(check.status), check.en

    assert card_key(kms_script(tmp_path, store))[0] == "ok"
    status, en = card_key(script(tmp_path, "denied.sh", "echo denied >&2; exit 4"))
    assert status == "fail"
    assert "退出码 4" in en
    assert "denied.sh" in en
