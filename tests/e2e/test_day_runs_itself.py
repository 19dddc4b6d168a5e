"""The day runs itself (issue 23 item 7, acceptance): a day's files dropped into the inbox and, with only
``settleguard worker`` running, the day is imported, settled, paid and reconciled; a file dropped twice changes
nothing; a malformed file lands in rejected/ with its reason beside it.

The business day is a past one (the latest whose payouts are due today, Beijing time), so its cut-off has passed
on the real clock the worker runs on. The simulated bank's seed is picked so that none of these payouts meets a
simulated fault (and the card verification seed so that every card is normal): every payout is paid at its
first send, and the bank statement (camt.053) is built from what the
simulated bank's journal says it executed, as the demo does (sim/bank_statement.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from factories import Txn, write_csv
from merchant_files import micro
from merchant_files import write_csv as write_merchants
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.channels.simulator import SimulatedBank
from settleguard.db import tables as t
from settleguard.payouts.model import idempotency_key
from settleguard.settlement.calendar import next_business_day
from settleguard.settlement.model import CardType, TxnKind
from settleguard.sim.bank_statement import Entry, Statement, camt053_xml

TZ = "Asia/Shanghai"
Z = ZoneInfo(TZ)
N = 4  # merchants
DEADLINE = 40.0  # seconds the worker gets for each stage


def business_day(today: date) -> date:
    """The latest day before ``today`` whose T+1 payouts are due by ``today`` (its cut-off long passed)."""
    d = today - timedelta(days=1)
    while next_business_day(d) > today:
        d -= timedelta(days=1)
    return d


def drop(directory: Path, name: str, data: bytes) -> Path:
    """Write a file into an inbox the way a sender should: a hidden name first, then renamed (atomic)."""
    tmp = directory / f".{name}"
    tmp.write_bytes(data)
    final = directory / name
    os.replace(tmp, final)
    return final


def wait_for(what: str, check: Callable[[], bool], worker: subprocess.Popen[str], timeout: float = DEADLINE) -> None:
    end = clock.monotonic() + timeout
    while clock.monotonic() < end:
        if check():
            return
        assert worker.poll() is None, f"the worker stopped: {worker.stderr.read() if worker.stderr else ''}"
        clock.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what}")


def quiet_seed(pans: dict[int, str], day: date) -> int:
    """A simulator seed under which no card fails and no first send of these payouts meets a blip."""
    for seed in range(1, 10_000):
        bank = SimulatedBank(seed)
        if all(bank.card_fault(pan) is None and bank.attempt_fault(idempotency_key(f"{day:%Y%m%d}", mid), 1) is None
               for mid, pan in pans.items()):
            return seed
    raise AssertionError("no quiet seed")


def normal_cards_seed(pans: list[str]) -> int:
    """A card verification seed under which every card is normal (the worker's card checks hold none)."""
    for seed in range(1, 10_000):
        verifier = SimulatedVerifier(seed)
        if all(verifier.status_of(pan) is CardStatus.NORMAL for pan in pans):
            return seed
    raise AssertionError("no seed with normal cards")


def test_the_day_runs_itself(tmp_path: Path) -> None:
    from settleguard.cli.main import app

    started = clock.monotonic()
    db_file = tmp_path / "day.db"
    db = f"sqlite:///{db_file}"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(tmp_path / "day.key"), "COLUMNS": "200",
           "SETTLEGUARD_INBOX_DIRS": json.dumps([str(inbox)]), "SETTLEGUARD_INBOX_QUIET_SECONDS": "0"}
    env.pop("SETTLEGUARD_CONFIG", None)

    # merchants onboarded (as the operator does, before the day)
    rows = [micro(i) for i in range(1, N + 1)]
    env["SETTLEGUARD_CARD_VERIFIER_SEED"] = str(normal_cards_seed([r["card_no"] for r in rows]))
    merchants_file = write_merchants(tmp_path / "merchants.csv", rows)
    onboarded = CliRunner().invoke(app, ["merchants", "import", str(merchants_file)], env=env)
    assert onboarded.exit_code == 0, onboarded.output
    engine = create_engine(db)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(t.merchants.c.merchant_no, t.merchants.c.id)).all())
    assert len(ids) == N

    today = datetime.now(UTC).astimezone(Z).date()
    day = business_day(today)
    value = next_business_day(day)
    seed = quiet_seed({int(ids[r["merchant_no"]]): r["card_no"] for r in rows}, day)
    env["SETTLEGUARD_SIM_SEED"] = str(seed)

    # the day's files: transactions (one sale per merchant), a malformed file
    sales = [Txn(f"R{day:%m%d}{i:06d}", r["merchant_no"], r["terminal_no"],
                 datetime.combine(day, time(12, i), Z), TxnKind.SALE, CardType.DEBIT, 100_000 + i * 1_000)
             for i, r in enumerate(rows, start=1)]
    txn_bytes = write_csv(tmp_path / "txns.csv", sales).read_bytes()
    drop(inbox, f"pos-{day:%Y%m%d}.csv", txn_bytes)
    drop(inbox, "garbled.csv", "这不是交易文件,也不是任何文件\n1,2\n".encode())

    worker = subprocess.Popen([sys.executable, "-m", "settleguard", "worker", "--interval", "0.5", "--json"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def count(table: object, *where: object) -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]

        def paid() -> bool:
            return count(t.payouts) == N and count(t.payouts, t.payouts.c.status == "succeeded") == N

        wait_for("imported, settled and paid", paid, worker)
        assert count(t.transactions) == N
        assert count(t.settlement_runs) == 1

        # the bank statement of the value date: what the simulated bank executed (its journal beside the database)
        executed = SimulatedBank(seed, state_path=Path(f"{db_file}.simbank.jsonl")).executed_keys()
        with engine.connect() as conn:
            payouts = conn.execute(select(t.payouts.c.idempotency_key, t.payouts.c.amount_fen)).all()
        assert {k for k, _ in payouts} <= executed
        total = sum(int(a) for _, a in payouts)
        entries = [Entry(f"F{value:%Y%m%d}", total, True, value, None, info="清算资金划入 settlement funds in"),
                   *(Entry(f"B{value:%m%d}N{n:05d}", int(a), False, value, str(k)) for n, (k, a) in
                     enumerate(sorted(payouts), start=1))]
        statement = Statement(value, f"STMT-E2E-{value:%Y%m%d}", 500_000_000, entries)
        drop(inbox, f"camt053-{value:%Y%m%d}.xml", camt053_xml(statement, tz=TZ).encode())

        def reconciled() -> bool:
            r = t.day_cycle_runs
            return count(r, r.c.action == "recon", r.c.status == "done") == 1

        wait_for("reconciled", reconciled, worker)
        with engine.connect() as conn:
            run = conn.execute(select(t.recon_runs.c.run_date, t.recon_runs.c.matched)).one()
            open_breaks = conn.execute(select(func.count()).select_from(t.recon_breaks)
                                       .where(t.recon_breaks.c.status == "open")).scalar_one()
        assert tuple(run) == (value, N)
        assert open_breaks == 0

        # the transaction file dropped again (another name, the same content): nothing changes
        before = {name: count(tbl) for name, tbl in (("transactions", t.transactions), ("imports", t.imports),
                                                     ("settlement_runs", t.settlement_runs), ("payouts", t.payouts),
                                                     ("attempts", t.payout_attempts), ("recon_runs", t.recon_runs))}
        drop(inbox, f"pos-{day:%Y%m%d}-again.csv", txn_bytes)
        f = t.inbox_files
        wait_for("the copy recognised", lambda: count(f, f.c.status == "duplicate") == 1, worker)
        clock.sleep(1.2)  # two more cycles
        after = {name: count(tbl) for name, tbl in (("transactions", t.transactions), ("imports", t.imports),
                                                    ("settlement_runs", t.settlement_runs), ("payouts", t.payouts),
                                                    ("attempts", t.payout_attempts), ("recon_runs", t.recon_runs))}
        assert after == before
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    with engine.connect() as conn:
        files = {r.name: (r.kind, r.status, r.reason_zh) for r in conn.execute(select(t.inbox_files))}
        runs = {(r.action, r.status) for r in conn.execute(select(t.day_cycle_runs.c.action, t.day_cycle_runs.c.status)
                                                            .where(t.day_cycle_runs.c.action.in_(("settle", "recon"))))}
    engine.dispose()
    assert files[f"pos-{day:%Y%m%d}.csv"][:2] == ("transactions", "done")
    assert files[f"pos-{day:%Y%m%d}-again.csv"][:2] == ("transactions", "duplicate")
    assert files[f"camt053-{value:%Y%m%d}.xml"][:2] == ("camt053", "done")
    assert files["garbled.csv"][1] == "rejected"
    assert files["garbled.csv"][2]
    assert runs == {("settle", "done"), ("recon", "done")}
    assert (inbox / "done" / f"pos-{day:%Y%m%d}.csv").is_file()
    assert (inbox / "rejected" / "garbled.csv").is_file()
    reasons = [p for p in (inbox / "rejected").iterdir() if p.name.startswith("garbled.csv") and p.name != "garbled.csv"]
    assert reasons, list((inbox / "rejected").iterdir())
    reason = reasons[0].read_text(encoding="utf-8")
    assert "garbled.csv" in reason
    assert not [p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")]  # every file was taken

    status = CliRunner().invoke(app, ["day", "status", "--date", day.isoformat(), "--json"], env=env)
    body = json.loads(status.output)
    assert body["settled"] is True
    assert {f["kind"]: f["state"] for f in body["files"]}["transactions"] == "arrived"
    assert clock.monotonic() - started < 90
