"""Event readers never skip an event committed out of id order (db.horizon, migration 0006).

On PostgreSQL a transaction that inserted card event N may commit after one that inserted N+1. The
release reader (payouts.release.release_for_card_events) and the automatic-case scan
(cases.service.open_auto_cases) follow their tables with a cursor; reading N+1 while N is still in
flight and moving the cursor past it would lose N for good: a restored card whose held money is
never paid, a needs-review payout without a case. These tests hold N open, commit N+1, run the reader,
then commit N and run it again: N must be acted on.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select
from test_payout_lifecycle import A, go

from payout_helpers import SEND_AT, ScriptedBank, make_payouts, status
from settleguard.cards.vault import Vault
from settleguard.cases.service import open_auto_cases
from settleguard.channels.base import BankOutcome, OutcomeStatus
from settleguard.db import tables as t
from settleguard.db.horizon import committed_horizon
from settleguard.payouts import repository as repo
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.release import release_for_card_events

S = PayoutStatus
FROZEN = BankOutcome(OutcomeStatus.FAILED, "3017", "账户已冻结", '{"RET_CODE":"3017"}', scheme=A)


def _restore_event(conn: object, merchant_id: int, at: object) -> None:
    account = conn.execute(select(t.settlement_accounts.c.id).where(  # type: ignore[attr-defined]
        t.settlement_accounts.c.merchant_id == merchant_id)).scalar_one()
    conn.execute(insert(t.card_events).values(  # type: ignore[attr-defined]
        merchant_id=merchant_id, account_id=account, kind="status_changed", payload={"from": "frozen", "to": "normal"},
        actor="status-check", created_at=at))


def test_the_horizon_is_the_last_id_when_nothing_is_in_flight(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    assert committed_horizon(engine, "card_events") == 0
    (d,) = make_payouts(engine, vault, tmp_path, [1000])
    with engine.begin() as conn:
        _restore_event(conn, d.merchant.id, SEND_AT)
        top = conn.execute(select(t.card_events.c.id).order_by(t.card_events.c.id.desc()).limit(1)).scalar_one()
    assert committed_horizon(engine, "card_events") == top
    with engine.connect() as conn:
        last_event = conn.execute(select(t.payout_events.c.id).order_by(t.payout_events.c.id.desc())
                                  .limit(1)).scalar_one()
    assert committed_horizon(engine, "payout_events") == last_event


def test_a_restore_committed_after_a_later_event_still_releases_the_held_payout(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("out-of-order commits need concurrent writers: PostgreSQL (SQLite has one writer at a time)")
    held, other = make_payouts(engine, vault, tmp_path, [100_000, 5_000])
    go(engine, ScriptedBank(sends={held.key: [FROZEN]}), vault)
    assert status(engine, held.payout_id) is S.HELD

    slow = engine.connect()
    slow_tx = slow.begin()
    try:
        _restore_event(slow, held.merchant.id, SEND_AT + timedelta(hours=1))  # id N, not committed yet
        with engine.begin() as conn:
            _restore_event(conn, other.merchant.id, SEND_AT + timedelta(hours=1))  # id N+1, committed
        started = time.monotonic()
        first = release_for_card_events(engine, SEND_AT + timedelta(hours=2))  # N in flight: waits, reads nothing
        waited = time.monotonic() - started
    finally:
        slow_tx.commit()
        slow.close()
    assert first.events == 0
    assert first.released == 0
    assert waited >= 0.4  # it waited for the writer (lock_timeout 500 ms) instead of reading past it

    second = release_for_card_events(engine, SEND_AT + timedelta(hours=3))
    # the two restores, and the two card events the frozen answer wrote (status_changed, marked_unusable)
    assert second.events == 4
    assert second.released == 1
    assert status(engine, held.payout_id) is S.RELEASED


def test_a_reader_waiting_for_a_short_writer_reads_its_event_in_the_same_cycle(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrent writers: PostgreSQL")
    (held,) = make_payouts(engine, vault, tmp_path, [70_000])
    go(engine, ScriptedBank(sends={held.key: [FROZEN]}), vault)
    slow = engine.connect()
    slow_tx = slow.begin()
    _restore_event(slow, held.merchant.id, SEND_AT + timedelta(hours=1))
    timer = threading.Timer(0.15, lambda: (slow_tx.commit(), slow.close()))  # commits while the reader waits
    timer.start()
    try:
        got = release_for_card_events(engine, SEND_AT + timedelta(hours=2))
    finally:
        timer.join()
    assert got.released == 1
    assert status(engine, held.payout_id) is S.RELEASED


def test_a_needs_review_event_committed_late_still_opens_its_case(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("out-of-order commits need concurrent writers: PostgreSQL")
    a, b = make_payouts(engine, vault, tmp_path, [1000, 2000])
    open_auto_cases(engine, SEND_AT, tz="Asia/Shanghai")  # the scan is up to date

    def to_review(conn: object, pid: int) -> None:
        for target in (S.SUBMITTED, S.FAILED, S.NEEDS_REVIEW):
            repo.change_status(conn, [repo.StatusChange(pid, target, "人工复核 review")],  # type: ignore[arg-type]
                               SEND_AT + timedelta(hours=2))

    slow = engine.connect()
    slow_tx = slow.begin()
    try:
        to_review(slow, a.payout_id)  # its event id is the smaller one, committed last
        with engine.begin() as conn:
            to_review(conn, b.payout_id)
        first = open_auto_cases(engine, SEND_AT + timedelta(hours=3), tz="Asia/Shanghai")
        assert sum(first.opened.values()) == 0
    finally:
        slow_tx.commit()
        slow.close()
    second = open_auto_cases(engine, SEND_AT + timedelta(hours=4), tz="Asia/Shanghai")
    assert second.opened["needs_review"] == 2
