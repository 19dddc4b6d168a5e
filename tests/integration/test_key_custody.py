"""The card key belongs to the database (cards/custody.py, cards/key_rotation.py, payouts/service.py), on
SQLite and PostgreSQL: fingerprints recorded per key version, a key that is not the database's refused
before anything changes, a key created only for an empty database or by ``keys init``, rotation that
leaves nothing behind when it fails, and a send loop that survives a card it cannot open."""

from __future__ import annotations

import base64
import secrets
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from test_payout_send import (
    SEND_AT,
    VALUE_DAY,
    ScriptedBank,
    assert_consistent,
    attempts,
    make_payouts,
    payout,
    status,
)

from factories import make_merchants
from settleguard.cards import custody
from settleguard.cards import key_repository as key_repo
from settleguard.cards.key_rotation import rotate_keys
from settleguard.cards.vault import Vault, fingerprint, load_vault, read_vault
from settleguard.channels.base import BankOutcome, PayoutInstruction
from settleguard.cli.runtime import Runtime
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.payouts.model import PayoutStatus
from settleguard.worker import run as run_worker

S = PayoutStatus


def recorded(engine: Engine) -> dict[int, tuple[str, bool]]:
    with engine.connect() as conn:
        return {v: (r.fingerprint, r.retired_at is not None) for v, r in key_repo.recorded(conn).items()}


def raw_key(key_file: Path, version: int = 1) -> bytes:
    for line in key_file.read_text().splitlines():
        v, _, material = line.partition(":")
        if int(v) == version:
            return base64.urlsafe_b64decode(material + "=" * (-len(material) % 4))
    raise AssertionError(f"no version {version} in {key_file}")


def sealed_rows(engine: Engine) -> list[tuple[Any, ...]]:
    a = t.settlement_accounts
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(a.c.id, a.c.pan_cipher, a.c.pan_nonce, a.c.key_version)
                                               .order_by(a.c.id))]


def test_an_empty_database_records_its_key_and_no_other_directory_gets_a_new_one(
        engine: Engine, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "sg.key", tmp_path / "b" / "sg.key"
    first.parent.mkdir()
    second.parent.mkdir()
    vault = custody.open_vault(engine, key=None, key_file=first)
    assert first.stat().st_mode & 0o777 == 0o600
    fp = fingerprint(raw_key(first))
    assert recorded(engine) == {1: (fp, False)}
    assert base64.urlsafe_b64encode(raw_key(first)).decode().rstrip("=") not in repr(recorded(engine))
    assert vault.fingerprints() == {1: fp}

    with pytest.raises(custody.KeyCustodyError) as info:  # another directory, no key file: no new key
        custody.open_vault(engine, key=None, key_file=second)
    assert not second.exists()
    text = str(info.value)
    assert str(second) in text
    assert fp in text
    assert "SETTLEGUARD_KEY_FILE" in text
    assert text.index("密钥文件不存在") < text.index("key file not found")

    other = tmp_path / "b" / "other.key"
    load_vault(None, other)  # a key of its own
    with pytest.raises(custody.KeyCustodyError, match="does not belong to this database") as info:
        custody.open_vault(engine, key=None, key_file=other)
    assert fp in str(info.value)
    assert str(other) in str(info.value)
    env = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(custody.KeyCustodyError, match="SETTLEGUARD_KEY"):
        custody.open_vault(engine, key=env, key_file=None)
    assert recorded(engine) == {1: (fp, False)}  # nothing changed
    again = custody.open_vault(engine, key=None, key_file=first)
    assert again.fingerprints() == {1: fp}


def test_a_database_from_before_0008_adopts_only_the_key_that_opens_its_cards(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_merchants(conn, vault, 20)  # sealed under tmp_path/test.key; no card_keys row
    before = sealed_rows(engine)
    stranger = tmp_path / "stranger.key"
    load_vault(None, stranger)
    with pytest.raises(custody.KeyCustodyError, match="do not decrypt"):
        custody.open_vault(engine, key=None, key_file=stranger)
    assert recorded(engine) == {}
    assert sealed_rows(engine) == before
    with pytest.raises(custody.KeyCustodyError, match="key file not found"):
        custody.open_vault(engine, key=None, key_file=tmp_path / "nowhere.key")
    assert not (tmp_path / "nowhere.key").exists()
    with pytest.raises(custody.KeyCustodyError, match="already has a card key"):
        custody.init_key(engine, tmp_path / "init.key")
    assert not (tmp_path / "init.key").exists()

    custody.open_vault(engine, key=None, key_file=tmp_path / "test.key")
    assert recorded(engine) == {1: (vault.fingerprints()[1], False)}


def test_keys_init_creates_a_key_only_for_a_database_without_one(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "init.key"
    made = custody.init_key(engine, key_file)
    assert recorded(engine) == {1: (made.fingerprints()[1], False)}
    assert read_vault(None, key_file).fingerprints() == made.fingerprints()
    with pytest.raises(custody.KeyCustodyError, match="key file exists"):
        custody.init_key(engine, key_file)
    with pytest.raises(custody.KeyCustodyError, match="already has a card key"):
        custody.init_key(engine, tmp_path / "second.key")
    assert not (tmp_path / "second.key").exists()
    assert list(recorded(engine)) == [1]


def test_the_default_key_file_is_beside_the_sqlite_file_and_a_server_needs_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("SETTLEGUARD_KEY", raising=False)
    monkeypatch.delenv("SETTLEGUARD_KEY_FILE", raising=False)
    rt = Runtime(Settings(db=f"sqlite:///{data / 'settleguard.db'}"))
    assert rt.key_file == data / "settleguard.key"
    rt.vault.seal("6222021234567890128")
    assert (data / "settleguard.key").exists()
    assert list(elsewhere.iterdir()) == []
    rt.engine.dispose()
    explicit = tmp_path / "k" / "x.key"
    assert custody.resolve_key_file("postgresql://u@h/db", explicit) == explicit
    with pytest.raises(custody.KeyCustodyError, match="SETTLEGUARD_KEY_FILE") as info:
        custody.resolve_key_file("postgresql://u@h/db", None)
    assert "SETTLEGUARD_KEY" in info.value.zh + info.value.detail


class FaultyBank(ScriptedBank):
    """Raises (an unexpected error with an echoed card number) when sending ``raise_for``."""

    def __init__(self, raise_for: str) -> None:
        super().__init__()
        self.raise_for = raise_for

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        if instruction.idempotency_key == self.raise_for:
            self.calls.append(("send", instruction.idempotency_key))
            raise RuntimeError(f"socket reset while sending to {instruction.account_number}")
        return super().send(instruction)


def test_a_worker_survives_a_card_it_cannot_open_and_a_channel_that_raises_and_pays_the_others(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    dues = make_payouts(engine, vault, tmp_path, [10_000, 20_000, 30_000, 40_000])
    custody.check(engine, vault)
    stranger = load_vault(None, tmp_path / "stranger.key").seal(dues[1].merchant.pan)  # sealed behind custody
    a = t.settlement_accounts
    with engine.begin() as conn:
        conn.execute(update(a).where(a.c.merchant_id == dues[1].merchant.id)
                     .values(pan_cipher=stranger.cipher, pan_nonce=stranger.nonce))
    bank = FaultyBank(raise_for=dues[2].key)
    n = run_worker(engine, bank, vault, None, clock=lambda: SEND_AT, today=lambda _now: VALUE_DAY,
                   stop=threading.Event(), interval=0, max_cycles=2)
    assert n == 2
    assert_consistent(engine)
    assert status(engine, dues[0].payout_id) is S.SUCCEEDED
    assert status(engine, dues[3].payout_id) is S.SUCCEEDED
    # the card that does not decrypt: needs review with the reason, never claimed as a send
    bad = payout(engine, dues[1].payout_id)
    assert bad["status"] == S.NEEDS_REVIEW
    assert bad["attempt_count"] == 0
    assert attempts(engine, dues[1].payout_id) == []
    assert ("send", dues[1].key) not in bank.calls
    with engine.connect() as conn:
        reasons = [r for (r,) in conn.execute(select(t.payout_events.c.reason)
                                              .where(t.payout_events.c.payout_id == dues[1].payout_id))]
        alerts = [m for (m,) in conn.execute(select(t.ops_alerts.c.message).where(t.ops_alerts.c.kind == "card_key"))]
    assert "卡号无法用当前密钥解密" in reasons[-1]
    assert "does not decrypt" in reasons[-1]
    assert len(alerts) == 1
    # the channel that raised: a result unknown, inquired about in the next cycle, the card number masked
    raised = attempts(engine, dues[2].payout_id)
    assert raised[0]["kind"] == "send"
    assert raised[0]["outcome"] == "unknown"
    assert raised[0]["code"] == "SEND_ERROR"
    assert dues[2].merchant.pan not in str(raised)
    assert ("inquire", dues[2].key) in bank.calls
    assert status(engine, dues[2].payout_id) is not S.SUBMITTED


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["after re-encrypting", "recording the new version"])
def test_a_rotation_that_fails_midway_leaves_every_card_open_and_the_next_run_finishes_it(
        engine: Engine, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    # Issue 23 item 1 changed this: a rotation commits in batches and is resumed, instead of one transaction that
    # leaves everything as it was. A failure midway leaves a key file holding the old AND the new version.
    key_file = tmp_path / "test.key"
    with engine.begin() as conn:
        make_merchants(conn, vault, 12)
    custody.check(engine, vault)
    before_keys = recorded(engine)

    def fail(*_a: Any, **_k: Any) -> None:
        raise Boom("disk full")

    progress = None
    if where == "after re-encrypting":
        progress = fail
    else:
        monkeypatch.setattr(key_repo, "record", fail)
    with pytest.raises(Boom):
        rotate_keys(engine, key_file, progress=progress)
    monkeypatch.undo()
    both = read_vault(None, key_file)
    assert sorted(both.fingerprints()) == [1, 2]
    assert both.fingerprints()[1] == before_keys[1][0]
    assert sorted(p.name for p in tmp_path.iterdir() if "test.key" in p.name) == ["test.key"]
    for _id, cipher, nonce, version in sealed_rows(engine):
        both.open(cipher, nonce, version)  # every card opens, whichever version it is under
    custody.open_vault(engine, key=None, key_file=key_file)  # still this database's key
    res = rotate_keys(engine, key_file)  # the same rotation, finished
    assert (res.new_version, res.reencrypted, res.resumed) == (2, 12, True)
    assert {v for *_r, v in sealed_rows(engine)} == {2}
    assert recorded(engine)[1][1] is True


def test_a_rotation_records_the_new_version_and_retires_the_old(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    key_file = tmp_path / "test.key"
    with engine.begin() as conn:
        make_merchants(conn, vault, 5)
    custody.check(engine, vault)
    rotate_keys(engine, key_file)
    keys = recorded(engine)
    assert keys[1] == (vault.fingerprints()[1], True)
    assert keys[2] == (fingerprint(raw_key(key_file, 2)), False)
    custody.open_vault(engine, key=None, key_file=key_file)
    with pytest.raises(custody.KeyCustodyError, match="still in use"):  # the old key alone opens nothing now
        custody.check(engine, vault)
