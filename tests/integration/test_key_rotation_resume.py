"""Key rotation resumable after a crash (issue 23 item 1; cards/key_rotation.py), on SQLite and PostgreSQL: a crash
injected at each step leaves a key file that opens every card and webhook secret in every process, and the next
``rotate_keys`` finishes the same rotation: every value on the new version, the old retired, the key file as asked."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from factories import make_merchants
from settleguard.cards import custody
from settleguard.cards import key_repository as key_repo
from settleguard.cards.key_rotation import STEPS, RotationError, rotate_keys
from settleguard.cards.vault import Vault, load_vault, read_vault
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.notify import repository as notify_repo

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CRASH_POINTS = [s for s in STEPS if s != "done"]


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing may catch it as an ordinary error."""


def crash_at(step: str, nth: int = 1):  # type: ignore[no-untyped-def]
    seen = {"n": 0}

    def hook(name: str) -> None:
        if name == step:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(step)
    return hook


def seed(engine: Engine, vault: Vault, cards: int, secrets: int) -> None:
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, cards)
        for m in ms[:secrets]:
            s = vault.seal(f"whsec-{m.id}")
            notify_repo.save_preferences(conn, m.id, {"webhook_secret_cipher": s.cipher, "webhook_secret_nonce": s.nonce,
                                                      "webhook_key_version": s.key_version}, NOW)
    custody.check(engine, vault, NOW)


def sealed(engine: Engine) -> list[tuple[str, int, bytes, bytes, int]]:
    a, p = t.settlement_accounts, t.notification_preferences
    with engine.connect() as conn:
        cards = [("card", int(i), bytes(c), bytes(n), int(v)) for i, c, n, v in conn.execute(
            select(a.c.id, a.c.pan_cipher, a.c.pan_nonce, a.c.key_version))]
        secrets = [("secret", int(i), bytes(c), bytes(n), int(v)) for i, c, n, v in conn.execute(
            select(p.c.merchant_id, p.c.webhook_secret_cipher, p.c.webhook_secret_nonce, p.c.webhook_key_version)
            .where(p.c.webhook_secret_cipher.is_not(None)))]
    return cards + secrets


def opened(engine: Engine, vault: Vault) -> list[str]:
    return sorted(vault.open(c, n, v) for _k, _i, c, n, v in sealed(engine))


def assert_every_process_opens_every_value(engine: Engine, key_file: Path, clear: list[str]) -> None:
    again = custody.open_vault(engine, key=None, key_file=key_file, now=NOW)  # what a new process does
    assert opened(engine, again) == clear


def assert_finished(engine: Engine, key_file: Path, clear: list[str], *, keep_old: bool, new: int = 2) -> None:
    v = read_vault(None, key_file)
    assert opened(engine, v) == clear
    assert {row[-1] for row in sealed(engine)} == {new}
    with engine.connect() as conn:
        keys = key_repo.recorded(conn)
        rotations = conn.execute(select(t.card_key_rotations.c.phase)).scalars().all()
        audit = conn.execute(select(t.audit_events.c.kind, t.audit_events.c.payload)).all()
    assert {k: r.retired_at is not None for k, r in keys.items()} == {**{k: True for k in range(1, new)}, new: False}
    assert rotations[-1] == "done"
    assert "new_key" not in rotations
    assert "reencrypting" not in rotations
    assert [line.split(":")[0] for line in key_file.read_text().splitlines()] == (
        [str(k) for k in range(1, new + 1)] if keep_old else [str(new)])
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in key_file.parent.iterdir() if "test.key" in p.name) == ["test.key"]
    kinds = [k for k, _p in audit]
    assert kinds.count("operator.keys_rotate") == new - 1
    material = key_file.read_text().split(":", 1)[1].strip()
    assert all(material not in str(p) for _k, p in audit)  # never key material in the audit trail


@pytest.mark.parametrize("keep_old", [False, True], ids=["drop-old", "keep-old"])
@pytest.mark.parametrize("step", CRASH_POINTS)
def test_a_crash_at_each_step_leaves_every_card_open_and_the_next_run_finishes_the_same_rotation(
        engine: Engine, vault: Vault, tmp_path: Path, step: str, keep_old: bool) -> None:
    key_file = tmp_path / "test.key"
    seed(engine, vault, 23, 6)
    clear = opened(engine, vault)
    try:
        rotate_keys(engine, key_file, keep_old=keep_old, batch=5, hook=crash_at(step, 2 if step == "batch" else 1),
                    now=NOW)
    except Crash:
        reached = True
    else:
        reached = False
    assert reached is not (keep_old and step == "key_file_rewritten")  # --keep-old: the key file is not rewritten
    assert_every_process_opens_every_value(engine, key_file, clear)
    with engine.connect() as conn:
        rot = key_repo.unfinished_rotation(conn)
    if keep_old and step in ("retired", "key_file_rewritten"):  # --keep-old: done once the old versions retire
        assert rot is None
        assert_finished(engine, key_file, clear, keep_old=keep_old)
        return
    assert rot is not None
    assert rot.new_version == 2
    res = rotate_keys(engine, key_file, keep_old=False, resume_only=True, batch=5, now=NOW)  # --resume
    assert (res.resumed, res.new_version, res.old_versions, res.reencrypted, res.runs) == (True, 2, (1,), 29, 2)
    assert res.dropped_versions == (() if keep_old else (1,))  # the rotation finishes as it was started
    assert_finished(engine, key_file, clear, keep_old=keep_old)


def test_a_card_sealed_under_the_old_key_during_the_rotation_is_reencrypted_before_the_old_key_is_retired(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    key_file = tmp_path / "test.key"
    seed(engine, vault, 12, 0)
    old_only = read_vault(None, key_file)  # a process that loaded the key before the rotation

    def hook(name: str) -> None:
        if name == "reencrypted":
            with engine.begin() as conn:
                make_merchants(conn, old_only, 2)
    res = rotate_keys(engine, key_file, batch=4, hook=hook, now=NOW)
    assert res.reencrypted == 14
    with engine.connect() as conn:
        assert {v for *_r, v in sealed(engine)} == {2}
        assert key_repo.recorded(conn)[1].retired_at is not None


def test_resume_only_refuses_when_nothing_is_in_progress_and_a_second_rotation_starts_after_the_first(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    key_file = tmp_path / "test.key"
    seed(engine, vault, 3, 1)
    with pytest.raises(RotationError, match="no key rotation in progress"):
        rotate_keys(engine, key_file, resume_only=True)
    with engine.connect() as conn:
        assert key_repo.last_rotation(conn) is None
    first = rotate_keys(engine, key_file, now=NOW)
    second = rotate_keys(engine, key_file, now=NOW)
    assert (first.new_version, second.new_version, second.resumed) == (2, 3, False)
    with engine.connect() as conn:
        events = conn.execute(select(t.audit_events.c.kind).where(t.audit_events.c.kind.like("card.key_rotation%"))
                              .order_by(t.audit_events.c.id)).scalars().all()
    assert events == ["card.key_rotation_started", "card.key_rotation_new_key", "card.key_rotation_retired"] * 2


def test_a_killed_rewrite_leaves_no_temporary_key_file_behind(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    key_file = tmp_path / "test.key"
    seed(engine, vault, 2, 0)
    stale = tmp_path / ".test.key.999999.0123abcd.tmp"  # a dead process's half-done rewrite (holds key material)
    stale.write_text("1:xx\n")
    rotate_keys(engine, key_file, now=NOW)
    assert not stale.exists()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty migrated SQLite file, copied for each example (migrating takes seconds)."""
    path = tmp_path_factory.mktemp("template") / "sg.db"
    open_engine(f"sqlite:///{path}").dispose()
    return path


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(crashes=st.lists(st.tuples(st.sampled_from(CRASH_POINTS), st.integers(1, 4)), min_size=1, max_size=4),
       keep_old=st.booleans())
def test_any_sequence_of_crashes_still_ends_in_one_finished_rotation(
        tmp_path_factory: pytest.TempPathFactory, migrated: Path, crashes: list[tuple[str, int]],
        keep_old: bool) -> None:
    d = tmp_path_factory.mktemp("crashes")
    key_file = d / "test.key"
    shutil.copyfile(migrated, d / "sg.db")
    engine = open_engine(f"sqlite:///{d / 'sg.db'}")
    try:
        vault = load_vault(None, key_file)
        seed(engine, vault, 11, 3)
        clear = opened(engine, vault)
        for step, nth in crashes:
            try:
                rotate_keys(engine, key_file, keep_old=keep_old, batch=3, hook=crash_at(step, nth), now=NOW)
            except Crash:
                assert_every_process_opens_every_value(engine, key_file, clear)
            else:
                break  # the crash point was not reached: finished
            with engine.connect() as conn:
                if key_repo.unfinished_rotation(conn) is None:
                    break  # crashed after the last commit (--keep-old: done once retired): nothing to resume
        with engine.connect() as conn:
            if key_repo.unfinished_rotation(conn) is not None:
                rotate_keys(engine, key_file, resume_only=True, batch=3, now=NOW)
        assert_finished(engine, key_file, clear, keep_old=keep_old)
        with engine.connect() as conn:
            (rotations,) = conn.execute(select(t.card_key_rotations.c.done)).all()
        assert rotations[0] == 14  # every value counted once, however many runs
    finally:
        engine.dispose()
