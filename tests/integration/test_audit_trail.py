"""The audit trail on SQLite and PostgreSQL: real operations give a verifying chain; tampering
with an audit row or a covered payout_event is found and named."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from test_payout_send import NOW, make_payouts

from settleguard.audit import service as audit
from settleguard.audit.model import Fault
from settleguard.cards.vault import Vault
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.payouts import release
from settleguard.payouts import repository as repo
from settleguard.payouts.model import PayoutStatus

A = t.audit_events


def operate(engine: Engine, vault: Vault, tmp_path: Path) -> list[int]:
    """A settlement run, a batch of status changes, an operator cancel, a configuration change."""
    audit.snapshot_config(engine, Settings(db="sqlite:///x.db", key="c2VjcmV0").model_dump(), NOW)
    dues = make_payouts(engine, vault, tmp_path, [10_000, 20_000, 30_000, 40_000])
    with engine.begin() as conn:
        repo.change_status(conn, [repo.StatusChange(d.payout_id, PayoutStatus.SUBMITTED, "sent") for d in dues[:3]],
                           NOW + timedelta(minutes=1))
    release.cancel(engine, dues[3].payout_id, "商户要求 merchant asked", "alice", NOW + timedelta(minutes=2))
    changed = audit.snapshot_config(engine, Settings(db="sqlite:///x.db", key="b3RoZXI=",
                                                     card_attempts_per_day=9).model_dump(), NOW)
    assert changed == audit.CONFIG_CHANGED
    return [d.payout_id for d in dues]


def kinds(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [k for k, in conn.execute(select(A.c.kind).order_by(A.c.id))]


def test_real_operations_verify_and_cover_everything(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    operate(engine, vault, tmp_path)
    got = kinds(engine)
    assert got[0] == "config_snapshot"
    assert got[-1] == "config_changed"
    assert "settlement.run" in got
    assert "operator.payout_cancel" in got
    assert got.count("payout.status") == 2  # one per change_status call, not one per payout
    v = audit.verify(engine)
    assert v.ok
    assert v.checked == len(got)
    with engine.connect() as conn:
        payloads = [p for p, in conn.execute(select(A.c.payload))]
        n_events = conn.execute(select(func.count()).select_from(t.payout_events)).scalar_one()
    assert not any("c2VjcmV0" in p or "b3RoZXI=" in p for p in payloads)  # never the key
    covered = sum(audit.model.covered(e)["count"] for e in _chain(engine) if audit.model.covered(e))  # type: ignore[index]
    assert covered == n_events  # every payout_event is under one audit event
    changed = [e for e in _chain(engine) if e.kind == "config_changed"][0].data()
    assert changed["changed"] == ["card_attempts_per_day"]


def _chain(engine: Engine) -> list[audit.model.Event]:
    from settleguard.audit import repository as arepo

    with engine.connect() as conn:
        return list(arepo.chain(conn))


def _problem(engine: Engine) -> tuple[int, Fault]:
    v = audit.verify(engine)
    assert v.problem is not None
    return v.problem.event_id, v.problem.fault


def test_editing_an_audit_row_is_found(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    operate(engine, vault, tmp_path)
    with engine.begin() as conn:
        conn.execute(update(A).where(A.c.id == 3).values(actor="mallory"))
    assert _problem(engine) == (3, Fault.EDITED)


def test_deleting_an_audit_row_is_found(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    operate(engine, vault, tmp_path)
    with engine.begin() as conn:
        conn.execute(delete(A).where(A.c.id == 2))
    assert _problem(engine) == (3, Fault.DELETED)


def test_swapping_two_audit_rows_is_found(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    operate(engine, vault, tmp_path)
    with engine.begin() as conn:
        rows = {r.id: r._mapping for r in conn.execute(select(A).where(A.c.id.in_([2, 4])))}
        conn.execute(delete(A).where(A.c.id.in_([2, 4])))
        conn.execute(A.insert(), [{**rows[4], "id": 2}, {**rows[2], "id": 4}])
    assert _problem(engine) == (2, Fault.REORDERED)


def test_editing_a_covered_payout_event_is_found(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    ids = operate(engine, vault, tmp_path)
    run = next(e for e in _chain(engine) if e.kind == "settlement.run")
    with engine.begin() as conn:
        conn.execute(update(t.payout_events).where(t.payout_events.c.payout_id == ids[1],
                                                   t.payout_events.c.from_status.is_(None)).values(reason="x"))
    assert _problem(engine) == (run.id, Fault.COVERED_ROWS)


def test_deleting_a_covered_payout_event_is_found(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    operate(engine, vault, tmp_path)
    batch = next(e for e in _chain(engine) if e.kind == "payout.status")
    first = audit.model.covered(batch)["ranges"][0][0]  # type: ignore[index]
    with engine.begin() as conn:
        conn.execute(delete(t.payout_events).where(t.payout_events.c.id == first))
    assert _problem(engine) == (batch.id, Fault.COVERED_ROWS)


def test_concurrent_appends_stay_linear_on_postgresql(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("two writers at once: PostgreSQL (SQLite serialises writers by its file lock)")
    engines = [open_engine(db_url), open_engine(db_url)]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(40):
                with engines[n].begin() as conn:
                    conn.execute(text("SELECT 1"))
                    audit.record(conn, f"w{n}", "test.append", ("writer", n), {"i": i}, NOW)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    v = audit.verify(engines[0])
    assert v.ok
    assert v.checked == 80
    for e in engines:
        e.dispose()


def test_an_event_joins_the_chain_on_commit_and_vanishes_on_rollback(engine: Engine) -> None:
    class Boom(Exception):
        pass

    def failing_change() -> None:
        with engine.begin() as conn:
            audit.record(conn, "op", "test.rolled_back", None, {"n": 1}, NOW)
            raise Boom

    with pytest.raises(Boom):
        failing_change()
    with engine.begin() as conn:
        audit.record(conn, "op", "test.kept", ("thing", 1), {"n": 2}, NOW)
        audit.record(conn, "op", "test.kept", ("thing", 2), {"n": 3}, NOW)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))  # a later transaction of the same pooled connection adds nothing
    assert kinds(engine) == ["test.kept", "test.kept"]
    assert audit.verify(engine).ok


def test_no_deadlock_with_a_row_lock_taken_after_recording(db_url: str) -> None:
    """A records then locks a row that B holds while B records: the append waits for commit, so
    neither waits for the other's audit lock while holding a row the other needs."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    eng = open_engine(db_url)
    wc = t.worker_cursors
    with eng.begin() as conn:
        conn.execute(wc.insert().values(name="x", last_id=0, updated_at=NOW))
    b_has_row = threading.Event()
    errors: list[BaseException] = []

    def a() -> None:
        try:
            with eng.begin() as conn:
                audit.record(conn, "a", "test.a", None, {}, NOW)
                b_has_row.wait(10)
                conn.execute(select(wc).where(wc.c.name == "x").with_for_update()).all()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def b() -> None:
        try:
            with eng.begin() as conn:
                conn.execute(select(wc).where(wc.c.name == "x").with_for_update()).all()
                b_has_row.set()
                audit.record(conn, "b", "test.b", None, {}, NOW)
                threading.Event().wait(1.5)  # past PostgreSQL's deadlock_timeout (1 s)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors
    assert sorted(kinds(eng)) == ["test.a", "test.b"]
    assert kinds(eng)[0] == "test.b"  # chain order is commit order
    assert audit.verify(eng).ok
    eng.dispose()


def test_the_covered_rows_digest_follows_the_documented_format(engine: Engine) -> None:
    """Same rows, same digest on both backends: the text docs/audit.md describes, hashed once."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from settleguard.audit import repository as arepo
    from settleguard.audit.model import sha256_text

    at = datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC)
    rows = [{"payout_id": i, "from_status": None if i % 2 else "submitted", "to_status": "created",
             "reason": f"原因 {i}|x", "created_at": at} for i in range(1, 50)]
    with engine.begin() as conn:
        conn.execute(insert(t.payout_events), rows)
    wanted = [i for i in range(1, 50) if i <= 10 or i >= 20]
    text_ = "\x1e".join("\x1f".join([str(i), str(i), "~" if i % 2 else "submitted", "created",
                                     str(len(f"原因 {i}|x")), f"原因 {i}|x", "2026-11-20 08:00:00.123456"])
                        for i in wanted)
    with engine.connect() as conn:
        got = arepo.digest(conn, "payout_events", [(1, 10), (20, 49)])
    assert (got.count, got.digest) == (len(wanted), sha256_text(text_))
