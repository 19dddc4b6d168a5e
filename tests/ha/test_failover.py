"""Failover: two ``settleguard worker`` processes pay through an HTTP bank against a PostgreSQL primary with a
streaming standby; the primary dies mid-cycle (``pg_ctl stop -m immediate``), the standby is promoted, and the
workers, whose URL names both servers (``host=…&host=…&target_session_attrs=read-write``), reconnect to it and
finish. Afterwards, by the bank's own records and the new primary's tables:

- every payout is final (succeeded: this bank has no faults of its own);
- the bank paid every instruction at most once, and every key it paid is succeeded in the database with the
  amount the bank paid;
- ``settleguard ledger check`` and ``settleguard audit verify`` pass on the new primary.

Synchronous replication (the production shape, docs/operations.md 故障切换 Failover): no committed write is
lost, so every payment request the bank received has its send attempt recorded on the new primary (recorded
before sending, payouts/service.py). Asynchronous, with the standby lagging (cut off from the primary while the
workers pay on, then the primary dies): the commits it never received are lost — the bank got requests the new
primary has no attempt for — and the bank's idempotency key (SG<date>M<id>) and inquire-before-resend keep every
payout paid once all the same: the same key sent again gets the bank's first answer.

The pair is built by tests/ha/pg_pair.py (skipped, with the reason, where PostgreSQL's server binaries are
missing; under CI=true a pair that cannot start fails the test). ``make test-ha`` runs this directory alone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from pg_pair import PairError, PgPair, free_port, pg_pair, unavailable_reason
from sqlalchemy import create_engine, func, select, update

from factories import Txn, write_csv
from settleguard.cards.vault import load_vault
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.demo import to_new_merchant
from settleguard.imports.transactions import import_transactions
from settleguard.merchants.repository import add_merchants
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, CutOffs, TxnKind
from settleguard.sim.generator import generate_merchants

pytestmark = pytest.mark.slow

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)  # a Wednesday: T+1 payouts are due on the 19th, long past on any clock this runs on
MERCHANTS = 160
SEED = 20261207
BANK = Path(__file__).with_name("ha_bank.py")
FINAL = {"succeeded", "held", "needs_review", "split"}
CI = os.environ.get("CI", "").lower() == "true"


def started_pair(sync: bool) -> Iterator[PgPair]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no PostgreSQL pair here: {reason}")
    try:
        with pg_pair(sync=sync) as pair:
            yield pair
    except PairError as exc:
        if CI:
            pytest.fail(f"CI=true: the PostgreSQL primary/standby pair did not start:\n{exc}")
        pytest.skip(f"the PostgreSQL primary/standby pair did not start: {str(exc).splitlines()[0]}")


@pytest.fixture(params=["sync", "async"])
def pair(request: pytest.FixtureRequest) -> Iterator[PgPair]:
    yield from started_pair(request.param == "sync")


# ------------------------------------------------------------------------------------------ the rig


def seed(pair: PgPair, work: Path, merchants: int = MERCHANTS) -> dict[str, int]:
    """Merchants, a day of sales and its settlement on the primary: one payout per merchant, due. Returns
    idempotency key -> amount."""
    engine = open_engine(pair.primary_url)
    vault = load_vault(None, work / "ha.key")
    now = datetime.now(UTC)
    sims = generate_merchants(merchants, SEED)
    with engine.begin() as conn:
        add_merchants(conn, [to_new_merchant(m) for m in sims], vault, now - timedelta(days=60))
    rng = random.Random(SEED)
    rows = [Txn(f"H{i:09d}", m.merchant_no, m.terminal_nos[0], datetime.combine(DAY, dtime(10 + i % 10, i % 60), TZ),
                TxnKind.SALE, CardType.DEBIT, rng.randint(10_000, 3_000_000)) for i, m in enumerate(sims)]
    import_transactions(engine, write_csv(work / "txns.csv", rows), cutoffs=CutOffs(timezone="Asia/Shanghai"),
                        now=now)
    settle(engine, DAY, now)
    with engine.begin() as conn:  # cards checked last week: the first cycles pay instead of inquiring cards
        conn.execute(update(t.settlement_accounts).values(card_status="normal",
                                                          last_status_check_at=now - timedelta(days=7)))
    with engine.connect() as conn:
        payouts = {str(k): int(a) for k, a in conn.execute(select(t.payouts.c.idempotency_key,
                                                                  t.payouts.c.amount_fen))}
    engine.dispose()
    return payouts


def start_bank(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (work / "bank.out").open("wb")
    proc = subprocess.Popen([sys.executable, str(BANK), "--port", str(port), "--state", str(work / "book.jsonl"),
                             "--requests", str(work / "requests.jsonl")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (work / "bank.out").read_text()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the bank did not start"
        time.sleep(0.1)


def worker_env(pair: PgPair, work: Path, bank_url: str) -> dict[str, str]:
    return {**os.environ, "SETTLEGUARD_DB": pair.multi_host_url, "SETTLEGUARD_KEY_FILE": str(work / "ha.key"),
            "SETTLEGUARD_CHANNEL": "http", "SETTLEGUARD_BANK_URL": bank_url,
            # a payout its worker left submitted when the database went away is inquired about after 2 s
            "SETTLEGUARD_WORKER_STALE_SECONDS": "2", "SETTLEGUARD_NOTIFY_CYCLE_SECONDS": "1", "COLUMNS": "160"}


def lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def statuses(url: str) -> Counter[str]:
    eng = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with eng.connect() as conn:
            return Counter({str(s): int(n) for s, n in conn.execute(
                select(t.payouts.c.status, func.count()).group_by(t.payouts.c.status))})
    finally:
        eng.dispose()


def cli(url: str, work: Path, *args: str) -> Any:
    """The command as an operator runs it, in this process (a subprocess costs seconds of start-up)."""
    from typer.testing import CliRunner

    from settleguard.cli.main import app

    return CliRunner().invoke(app, ["--db", url, *args], env={"SETTLEGUARD_KEY_FILE": str(work / "ha.key"),
                                                              "COLUMNS": "160"})


# ------------------------------------------------------------------------------------------ the test


def test_workers_survive_a_primary_crash_and_promotion_without_losing_or_doubling_a_payout(
    pair: PgPair, tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    amounts = seed(pair, tmp_path)
    with psycopg.connect(pair.dsn(pair.primary_port), autocommit=True) as c:
        c.execute("CREATE TABLE ha_canary (at timestamptz NOT NULL)")  # not settleguard's: the test's marker
    seeded = time.monotonic()
    pair.wait_replayed()
    bank, bank_url = start_bank(tmp_path)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(2):
            with (tmp_path / f"worker-{i}.log").open("wb") as log:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "settleguard", "worker", "--interval", "0.2", "--json"], cwd=tmp_path,
                    env=worker_env(pair, tmp_path, bank_url), stdout=log, stderr=subprocess.STDOUT))

        # mid-cycle: once the bank has had a third of the payments, the primary dies
        deadline = time.monotonic() + 180  # generous: a loaded CI machine starts a worker in 5-30 s
        while len(lines(tmp_path / "requests.jsonl")) < len(amounts) // 3:
            assert all(w.poll() is None for w in workers), "a worker died before the failover"
            assert time.monotonic() < deadline, "the workers did not start paying"
            time.sleep(0.05)
        asked_before = len(lines(tmp_path / "requests.jsonl"))
        if not pair.sync:
            # asynchronous and lagging: the standby stops receiving while the workers go on paying, so the
            # primary dies with commits the standby never got (claims, attempts, answers of paid payouts)
            pair.detach_standby()
            while len(lines(tmp_path / "requests.jsonl")) < asked_before + 15:
                assert time.monotonic() < deadline, "the workers stopped paying"
                time.sleep(0.05)
        with psycopg.connect(pair.dsn(pair.primary_port), autocommit=True) as c:
            c.execute("INSERT INTO ha_canary VALUES (now())")  # committed: the last thing before the crash
        paid_at_crash = len([e for e in lines(tmp_path / "book.jsonl") if int(e["paid_fen"]) > 0])
        crashed = time.monotonic()
        paying = crashed - seeded
        pair.crash_primary()
        time.sleep(1.0)  # the time it takes to notice: the workers meanwhile fail to connect and retry
        pair.promote()
        promoted = time.monotonic()
        new_primary = pair.standby_url
        at_promotion = statuses(new_primary)
        with psycopg.connect(pair.dsn(pair.standby_port), autocommit=True) as c:
            canary = c.execute("SELECT count(*) FROM ha_canary").fetchone()[0]  # type: ignore[index]

        resumed = None
        deadline = time.monotonic() + 180
        while True:
            now_st = statuses(new_primary)
            if resumed is None and now_st != at_promotion:
                resumed = time.monotonic()
            if sum(n for s, n in now_st.items() if s in FINAL) == len(amounts):
                break
            assert all(w.poll() is None for w in workers), "a worker died after the failover"
            assert time.monotonic() < deadline, f"payouts not final 180 s after promotion: {dict(now_st)}"
            time.sleep(0.2)
        done = time.monotonic()
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        bank.terminate()
        bank.wait(timeout=30)
    logs = "\n".join((tmp_path / f"worker-{i}.log").read_text(errors="replace")[-2000:] for i in range(2))

    # the bank's own records
    book = lines(tmp_path / "book.jsonl")
    paid = Counter(e["key"] for e in book if int(e["paid_fen"]) > 0)
    paid_fen = {e["key"]: int(e["paid_fen"]) for e in book if int(e["paid_fen"]) > 0}
    requested = Counter(str(e["key"]) for e in lines(tmp_path / "requests.jsonl"))
    assert [k for k, n in paid.items() if n > 1] == [], "the bank paid an instruction twice"

    eng = create_engine(new_primary)
    with eng.connect() as conn:
        db = {str(k): (str(s), int(a)) for k, s, a in conn.execute(
            select(t.payouts.c.idempotency_key, t.payouts.c.status, t.payouts.c.amount_fen))}
        sends = Counter(str(k) for (k,) in conn.execute(
            select(t.payout_attempts.c.idempotency_key).where(t.payout_attempts.c.kind == "send")))
        inquiries = int(conn.execute(select(func.count()).select_from(t.payout_attempts)
                                     .where(t.payout_attempts.c.kind == "inquiry")).scalar_one())
    eng.dispose()
    assert Counter(s for s, _ in db.values()) == Counter({"succeeded": len(amounts)}), logs
    assert set(paid) == set(db), "every payout paid by the bank, every paid key succeeded in the database"
    assert all(paid_fen[k] == db[k][1] == amounts[k] for k in paid)
    # a request the bank got with no send attempt on record: a commit the failover lost
    lost = {k: n - sends[k] for k, n in requested.items() if n > sends[k]}
    resent = sum(1 for n in requested.values() if n > 1)
    if pair.sync:  # nothing committed is lost: the canary and every attempt recorded before its request
        assert canary == 1, "a commit acknowledged by a synchronous pair was lost"
        assert lost == {}, f"synchronous standby lost recorded attempts: {lost}"
    else:  # commits were lost (the canary and the answers after the cut); every payout was still paid once
        assert canary == 0, "the lagging standby lost nothing: the test did not test the asynchronous case"

    check = cli(new_primary, tmp_path, "ledger", "check", "--json")
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["ok"] is True, check.output
    audit = cli(new_primary, tmp_path, "audit", "verify")
    assert audit.exit_code == 0, audit.output

    mode = "sync" if pair.sync else "async"
    print(f"\n[ha {mode}] canary kept={canary} bank paid at crash={paid_at_crash} "
          f"succeeded on the new primary at promotion={at_promotion.get('succeeded', 0)} "
          f"submitted then={at_promotion.get('submitted', 0)} inquiries={inquiries} ")
    print(f"[ha {mode}] payouts={len(amounts)} requests before crash={asked_before} "
          f"crash->promoted={promoted - crashed:.2f}s promoted->first write={((resumed or done) - promoted):.2f}s "
          f"promoted->all final={done - promoted:.2f}s resent keys={resent} attempts lost={sum(lost.values())} "
          f"seed={seeded - t0:.1f}s start+pay a third={paying:.1f}s total={time.monotonic() - t0:.1f}s")
