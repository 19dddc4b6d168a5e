"""``recon run`` on SQLite and PostgreSQL: random paid payouts and bank lines with injected breaks of every type;
every break is found with its type, no false break; a re-run changes nothing; a later booking clears a break;
and the CLI end to end from a camt.053 file to ``recon breaks --json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select
from tests.unit.reconciliation.camt_files import bal, batch, camt053, entry, tx, write
from typer.testing import CliRunner

from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.reconciliation import repository as repo
from settleguard.reconciliation.breaks import run
from settleguard.reconciliation.model import Balance, BankLine, Direction, EntryStatus, Source, Statement

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
VALUE = date(2026, 11, 30)  # Monday
RUN = date(2026, 12, 4)  # Friday: the 2-business-day window of Monday's payouts has passed
FATES = ["e2e", "split", "rule", "ledger_only", "pending", "amount_mismatch", "duplicate_debit", "reversal"]
EXPECTED = {"ledger_only": "ledger_only", "pending": "ledger_only", "amount_mismatch": "amount_mismatch",
            "duplicate_debit": "duplicate_debit", "reversal": "reversal"}


def weekdays(d: date) -> bool:
    return d.weekday() < 5


def key(pid: int) -> str:
    return f"SG20261130M{pid}"


@dataclass
class World:
    payouts: list[tuple[int, int, str | None]] = field(default_factory=list)  # id, fen, batch id
    lines: list[BankLine] = field(default_factory=list)
    expected: set[tuple[str, int | None]] = field(default_factory=set)
    bank_only: int = 0
    drift: int = 0

    def line(self, fen: int, e2e: str | None = None, *, cd: Direction = Direction.DEBIT,
             sts: EntryStatus = EntryStatus.BOOKED, rvsl: bool = False, day: date = VALUE + timedelta(days=1),
             pmt: str | None = None, count: int | None = None) -> None:
        n = len(self.lines) + 1
        self.lines.append(BankLine(source=Source.CAMT053, statement_id="S1", entry_ref=f"E{n}", amount_fen=fen,
                                   direction=cd, status=sts, booking_date=day, value_date=day, acct_svcr_ref=f"R{n}",
                                   end_to_end_id=e2e, pmt_inf_id=pmt, batch_count=count, reversal=rvsl))


def build(fates: list[str], batches: list[tuple[int, bool]], strangers: int, drift: int) -> World:
    """Amounts are distinct (id * 1000 + ...) so that no rule can pair a line with the wrong payout."""
    w = World()
    pid = 0
    for fate in fates:
        pid += 1
        fen = pid * 1000 + 7
        w.payouts.append((pid, fen, None))
        if fate == "e2e":
            w.line(fen, key(pid))
        elif fate == "split":
            w.line(fen - 400, key(pid))
            w.line(400, key(pid))
        elif fate == "rule":
            w.line(fen, None, day=VALUE + timedelta(days=2))
        elif fate == "pending":
            w.line(fen, key(pid), sts=EntryStatus.PENDING)
        elif fate == "amount_mismatch":
            w.line(fen + 1, key(pid))
        elif fate == "duplicate_debit":
            w.line(fen, key(pid))
            w.line(fen, key(pid), day=VALUE + timedelta(days=2))
        elif fate == "reversal":
            w.line(fen, key(pid))
            w.line(fen, key(pid), cd=Direction.CREDIT, rvsl=True, day=VALUE + timedelta(days=2))
        if fate in EXPECTED:
            w.expected.add((EXPECTED[fate], pid))
    for b, (size, good) in enumerate(batches, start=1):
        ids = []
        for _ in range(size):
            pid += 1
            ids.append(pid)
            w.payouts.append((pid, pid * 1000 + 7, f"SGB{b:020d}"))
        total = sum(pid * 1000 + 7 for pid in ids)
        w.line(total, pmt=f"SGB{b:020d}", count=size if good else size + 1)
        if not good:
            w.expected.add(("amount_mismatch", None))
    for s in range(strangers):
        w.line(900_000_000 + s, "NOT-OURS" if s % 2 else None)
        w.bank_only += 1
    w.drift = drift
    if drift:
        w.expected.add(("balance_drift", None))
    return w


def reset(engine: Engine) -> None:
    with engine.begin() as c:
        for table in (t.recon_breaks, t.recon_matches, t.recon_runs, t.bank_lines, t.bank_statements,
                      t.payout_attempts, t.payouts):
            c.execute(delete(table))


def store(engine: Engine, w: World) -> None:
    with engine.begin() as c:
        for pid, fen, b in w.payouts:
            c.execute(insert(t.payouts).values(
                id=pid, merchant_id=pid, cycle_date=VALUE, value_date=VALUE, amount_fen=fen, currency="CNY",
                status="succeeded", idempotency_key=key(pid), attempt_count=1, created_at=NOW, updated_at=NOW))
            c.execute(insert(t.payout_attempts).values(
                payout_id=pid, attempt_no=1, kind="send", idempotency_key=key(pid), channel="simulator",
                amount_fen=fen, requested_at=NOW, outcome="succeeded", batch_ref=None if b is None else f"MSG|{b}"))
        booked = sum(ln.signed_fen for ln in w.lines if ln.status is EntryStatus.BOOKED)
        stmt = Statement(source=Source.CAMT053, statement_id="S1", account="110060001012345", lines=w.lines,
                         balances={"OPBD": Balance("OPBD", 10**12, VALUE),
                                   "CLBD": Balance("CLBD", 10**12 + booked - w.drift, RUN)})
        row = repo.insert_statement(c, stmt, "f" * 64, NOW)
        repo.insert_lines(c, row, stmt.account, w.lines)


def found(engine: Engine) -> tuple[set[tuple[str, int | None]], int, int]:
    with engine.connect() as c:
        rows = repo.breaks(c, status="open")
    other = {(str(r["type"]), r["payout_id"]) for r in rows if r["type"] != "bank_only"}
    return other, sum(r["type"] == "bank_only" for r in rows), len(rows)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fates=st.lists(st.sampled_from(FATES), max_size=10),
       batches=st.lists(st.tuples(st.integers(1, 3), st.booleans()), max_size=2),
       strangers=st.integers(0, 2), drift=st.sampled_from([0, 0, 1, -250]))
def test_every_injected_break_is_found_with_its_type_and_no_other(
        engine: Engine, fates: list[str], batches: list[tuple[int, bool]], strangers: int, drift: int) -> None:
    reset(engine)
    w = build(fates, batches, strangers, drift)
    store(engine, w)
    first = run(engine, RUN, now=NOW, is_business_day=weekdays)
    other, bank_only, total = found(engine)
    assert other == w.expected
    assert bank_only == w.bank_only
    assert total == len(w.expected) + w.bank_only + sum(not good for _, good in batches) - (
        1 if any(not good for _, good in batches) else 0)
    assert first.drift_fen == w.drift
    # a re-run of the same date changes nothing: no duplicate break, no duplicate match
    with engine.connect() as c:
        matches = c.execute(select(func.count()).select_from(t.recon_matches)).scalar_one()
    again = run(engine, RUN, now=NOW + timedelta(hours=1), is_business_day=weekdays)
    assert found(engine) == (other, bank_only, total)
    assert again.opened == 0
    assert again.cleared == 0
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(t.recon_matches)).scalar_one() == matches


def test_a_later_statement_booking_the_missing_line_clears_the_break(engine: Engine) -> None:
    w = build(["ledger_only", "e2e"], [], 0, 0)
    store(engine, w)
    run(engine, RUN, now=NOW, is_business_day=weekdays)
    assert found(engine)[0] == {("ledger_only", 1)}
    late = BankLine(source=Source.CAMT053, statement_id="S2", entry_ref="L1", amount_fen=1007,
                    direction=Direction.DEBIT, status=EntryStatus.BOOKED, booking_date=RUN + timedelta(days=3),
                    value_date=None, end_to_end_id=key(1))
    with engine.begin() as c:
        row = repo.insert_statement(c, Statement(Source.CAMT053, "S2", "110060001012345", [late]), "e" * 64, NOW)
        repo.insert_lines(c, row, "110060001012345", [late])
    res = run(engine, RUN + timedelta(days=3), now=NOW + timedelta(days=3), is_business_day=weekdays)
    assert res.cleared == 1
    with engine.connect() as c:
        (brk,) = repo.breaks(c)
    assert brk["status"] == "cleared"
    assert brk["cleared_at"] is not None


def test_recon_run_and_breaks_json_after_importing_a_camt053(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """Five paid payouts; the bank's camt.053 pays 1 and 2 (2 as a batch of its own), pays 3 one fen short,
    pays 4 twice, never books 5, and debits a stranger."""
    w = World()
    for pid in range(1, 6):
        w.payouts.append((pid, pid * 10_000, "SGB00000000000000000002" if pid == 2 else None))
    store_payouts_only(engine, w)
    body = "\n".join([
        entry("E1", "100.00", day="2026-12-01", details="<NtryDtls>" + tx(key(1)) + "</NtryDtls>"),
        entry("E2", "200.00", day="2026-12-01", details=batch("SGB00000000000000000002", 1, "200.00")),
        entry("E3", "299.99", day="2026-12-01", details="<NtryDtls>" + tx(key(3)) + "</NtryDtls>"),
        entry("E4", "400.00", day="2026-12-01", details="<NtryDtls>" + tx(key(4)) + "</NtryDtls>"),
        entry("E5", "400.00", day="2026-12-02", details="<NtryDtls>" + tx(key(4)) + "</NtryDtls>"),
        entry("E6", "12.34", day="2026-12-02", acct_ref="BANK-SERIAL-6"),
        entry("E7", "500.00", sts="PDNG", day="2026-12-02", details="<NtryDtls>" + tx(key(5)) + "</NtryDtls>"),
    ])
    # 10000 - (100 + 200 + 299.99 + 400 + 400 + 12.34) = 8587.67
    path = write(tmp_path, camt053(body, balances=bal("OPBD", "10000.00") + bal("CLBD", "8587.67", day="2026-12-02")))
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db_url, "recon", "import", str(path)]).exit_code == 0
    out = runner.invoke(cli, ["--db", db_url, "recon", "run", "--date", "2026-12-04"])
    assert out.exit_code == 0, out.output
    assert "已匹配 matched 3" in out.output
    assert "银行重复扣款 duplicate debit：1" in out.output
    assert out.output.index("金额不符") < out.output.index("amount mismatch")
    listed = runner.invoke(cli, ["--db", db_url, "recon", "breaks", "--json"])
    assert listed.exit_code == 0, listed.output
    got = json.loads(listed.stdout)
    assert sorted((b["type"], b["payout_id"]) for b in got if b["payout_id"]) == [
        ("amount_mismatch", 3), ("duplicate_debit", 4), ("ledger_only", 5)]
    (stranger,) = [b for b in got if b["type"] == "bank_only"]
    assert stranger["amount_fen"] == 1234
    assert stranger["bank_ref"] == "BANK-SERIAL-6"
    assert stranger["end_to_end_id"] is None
    assert stranger["booking_date"] == "2026-12-02"
    assert {"id", "type", "status", "amount_fen", "end_to_end_id", "bank_ref", "booking_date", "payout_id"} <= set(
        got[0])
    only = runner.invoke(cli, ["--db", db_url, "recon", "breaks", "--type", "账上已付、银行未记账", "--json"])
    assert [b["payout_id"] for b in json.loads(only.stdout)] == [5]
    shown = runner.invoke(cli, ["--db", db_url, "recon", "show", str(stranger["id"])])
    assert shown.exit_code == 0, shown.output
    assert "银行一侧 bank side" in shown.output
    assert "BANK-SERIAL-6" in shown.output
    again = runner.invoke(cli, ["--db", db_url, "recon", "run", "--date", "2026-12-04", "--json"])
    assert json.loads(again.stdout)["opened"] == 0
    assert len(json.loads(runner.invoke(cli, ["--db", db_url, "recon", "breaks", "--json"]).stdout)) == len(got)
    for bad in (["run", "--date", "2026-13-01"], ["breaks", "--status", "gone"], ["show", "abc"],
                ["run", "--date", "2026-12-04", "--window-days", "-1"]):
        res = runner.invoke(cli, ["--db", db_url, "recon", *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert "错误" in res.output
        assert "Error" in res.output


def store_payouts_only(engine: Engine, w: World) -> None:
    with engine.begin() as c:
        for pid, fen, b in w.payouts:
            c.execute(insert(t.payouts).values(
                id=pid, merchant_id=pid, cycle_date=VALUE, value_date=VALUE, amount_fen=fen, currency="CNY",
                status="succeeded", idempotency_key=key(pid), attempt_count=1, created_at=NOW, updated_at=NOW))
            c.execute(insert(t.payout_attempts).values(
                payout_id=pid, attempt_no=1, kind="send", idempotency_key=key(pid), channel="simulator",
                amount_fen=fen, requested_at=NOW, outcome="succeeded", batch_ref=None if b is None else f"MSG|{b}"))
