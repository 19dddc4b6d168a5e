"""After ``recon run``: the balance proof against the ledger's settlement account (bank_provisions), ``ledger
check`` failing on an unexplained difference, ledger_only payouts back to inquiry (never resent), reversals held
as returns, aged breaks opening one case each (reconciliation/followup.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select, update
from test_payout_send import (
    VALUE_DAY,
    Due,
    ScriptedBank,
    attempts,
    entries,
    events,
    make_payouts,
    run,
    status,
)
from typer.testing import CliRunner

from settleguard.bootstrap import Container
from settleguard.cards.vault import Vault
from settleguard.cases.service import SystemCases
from settleguard.channels.iso20022.reports import NotificationEntry, Reason
from settleguard.cli.main import app as cli
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.evidence.builder import build
from settleguard.ledger import repository as ledger_repo
from settleguard.payouts import files
from settleguard.payouts import repository as payouts_repo
from settleguard.payouts.model import PayoutStatus
from settleguard.reconciliation import repository as repo
from settleguard.reconciliation.breaks import run as recon_run
from settleguard.reconciliation.followup import dry_proof, follow_up
from settleguard.reconciliation.model import Balance, BankLine, Direction, EntryStatus, Source, Statement
from settleguard.worker import STEPS, cycle

S = PayoutStatus
TZ = "Asia/Shanghai"
BOOKED = VALUE_DAY  # Thursday 2026-11-19: the payouts' value date, booked the same day
RUN = date(2026, 11, 24)  # Tuesday: the 2-business-day window (to Monday 11-23) has passed
RUN_AT = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
PAN = "6217002710000684874"
OPENING = 50_000_000  # fen in the settlement account before the first statement
FUNDING = 3_000_000  # the card network's settlement funds credited that day (no key of ours)


def weekdays(d: date) -> bool:
    return d.weekday() < 5


class Stmt:
    """A camt.053-like statement built line by line; the closing balance is opening + booked lines - ``off``."""

    def __init__(self, sid: str, opening: int, day: date = BOOKED) -> None:
        self.sid, self.opening, self.day, self.lines = sid, opening, day, list[BankLine]()

    def add(self, fen: int, e2e: str | None = None, *, cd: Direction = Direction.DEBIT, rvsl: bool = False,
            sts: EntryStatus = EntryStatus.BOOKED, raw: str = "") -> Stmt:
        n = len(self.lines) + 1
        self.lines.append(BankLine(source=Source.CAMT053, statement_id=self.sid, entry_ref=f"{self.sid}-E{n}",
                                   amount_fen=fen, direction=cd, status=sts, booking_date=self.day,
                                   value_date=self.day, acct_svcr_ref=f"BANK-{self.sid}-{n}", end_to_end_id=e2e,
                                   reversal=rvsl, raw=raw or f"<Ntry><NtryRef>{self.sid}-E{n}</NtryRef></Ntry>"))
        return self

    @property
    def closing(self) -> int:
        return self.opening + sum(ln.signed_fen for ln in self.lines if ln.status is EntryStatus.BOOKED)

    def store(self, engine: Engine, off: int = 0) -> int:
        st_ = Statement(source=Source.CAMT053, statement_id=self.sid, account="110060001012345", lines=self.lines,
                        balances={"OPBD": Balance("OPBD", self.opening, self.day),
                                  "CLBD": Balance("CLBD", self.closing - off, self.day)})
        with engine.begin() as c:
            row = repo.insert_statement(c, st_, self.sid.encode().hex().ljust(64, "0")[:64], RUN_AT)
            repo.insert_lines(c, row, st_.account, self.lines)
        return self.closing - off


def paid(engine: Engine, vault: Vault, tmp_path: Path, amounts: list[int]) -> tuple[list[Due], ScriptedBank]:
    """Settled payouts, sent and paid through a scripted bank (submit + confirm entries in the ledger)."""
    dues = make_payouts(engine, vault, tmp_path, amounts)
    bank = ScriptedBank()
    run(engine, bank, vault)
    assert all(status(engine, d.payout_id) is S.SUCCEEDED for d in dues)
    return dues, bank


def open_breaks(engine: Engine) -> dict[tuple[str, int | None], dict[str, object]]:
    with engine.connect() as c:
        return {(str(b["type"]), b["payout_id"]): b for b in repo.breaks(c, status="open")}


def test_the_bank_balance_is_proved_against_the_ledger_and_breaks_explain_the_drift(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    """Four paid payouts: 1 booked, 2 booked twice, 3 never booked, 4 booked one fen more. The drift between the
    bank's closing balance and bank_provisions is explained exactly by those breaks; a later statement whose
    opening does not follow the last closing (a bank movement we never saw) leaves 7.00 unexplained, and
    ``ledger check`` then fails naming it, zh first."""
    (d1, d2, d3, d4), _ = paid(engine, vault, tmp_path, [10_000, 20_000, 30_000, 40_000])
    a1, a2, a3, a4 = (d.amount for d in (d1, d2, d3, d4))
    first = Stmt("S1", OPENING).add(FUNDING, cd=Direction.CREDIT).add(a1, d1.key).add(a2, d2.key).add(a2, d2.key)
    closing = first.add(a4 + 1, d4.key).add(a3, d3.key, sts=EntryStatus.PENDING).store(engine)
    res = recon_run(engine, RUN, now=RUN_AT, is_business_day=weekdays)
    proof = res.proof
    assert proof is not None
    assert proof.bank_closing_fen == closing
    assert proof.ledger_fen == OPENING + FUNDING - (a1 + a2 + a3 + a4)  # bank_provisions: the four paid
    assert proof.drift_fen == -a2 + a3 - 1
    got = {(i.type, i.payout_id): i.effect_fen for i in proof.breaks()}
    assert got == {("duplicate_debit", d2.payout_id): -a2, ("ledger_only", d3.payout_id): a3,
                   ("amount_mismatch", d4.payout_id): -1}
    assert all(i.break_id is not None for i in proof.breaks())
    assert proof.unexplained_fen == 0
    assert proof.ok
    with engine.connect() as c:
        stored = repo.proof_of_run(c, res.run_id)
        assert stored is not None
        assert stored["unexplained_fen"] == 0
        assert stored["drift_fen"] == proof.drift_fen
        assert dry_proof(c, is_business_day=weekdays) is not None
    runner = CliRunner()
    ok = runner.invoke(cli, ["--db", db_url, "ledger", "check"])
    assert ok.exit_code == 0, ok.output
    assert "全部由下列差错与在途出款解释" in ok.output
    # a second statement whose opening is 7.00 below the first's closing: a debit we never saw
    Stmt("S2", closing - 700, day=date(2026, 11, 20)).store(engine)
    bad = runner.invoke(cli, ["--db", db_url, "ledger", "check"])
    assert bad.exit_code == 1, bad.output
    assert "账实不符：未解释差额 -¥7.00" in bad.output, bad.output
    assert bad.output.index("账实不符") < bad.output.index("bank and ledger disagree")
    found = open_breaks(engine)
    for named in (("duplicate_debit", d2.payout_id), ("amount_mismatch", d4.payout_id)):
        assert f"差错 break #{found[named]['id']}" in bad.output  # the breaks that explain the rest
    assert "在途 in transit" in bad.output  # payout 3 as of the last statement (20 Nov): its window is still open
    data = json.loads(runner.invoke(cli, ["--db", db_url, "ledger", "check", "--json"]).stdout)
    assert data["ok"] is False
    assert data["bank_balance"]["unexplained_fen"] == -700
    # recon run shows the proof next to the breaks, then follows up: payout 3 (now past its window) to inquiry
    out = runner.invoke(cli, ["--db", db_url, "recon", "run", "--date", RUN.isoformat()])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "账实核对 bank vs ledger" in text
    assert "未解释 unexplained -¥7.00 ✗" in text
    assert "账上已付、银行未记账 ledger only" in text
    assert "转查询 to inquiry 1" in text
    assert status(engine, d3.payout_id) is S.RESULT_UNKNOWN


def test_no_statement_imported_is_said_and_is_not_a_failure(db_url: str, engine: Engine) -> None:
    out = CliRunner().invoke(cli, ["--db", db_url, "ledger", "check"])
    assert out.exit_code == 0, out.output
    assert "未导入带余额的银行对账单" in out.output
    with engine.connect() as c:
        assert dry_proof(c) is None


def test_ledger_only_goes_back_to_inquiry_and_a_reversal_is_held_as_a_return(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    (d1, d2, d3), bank = paid(engine, vault, tmp_path, [10_000, 20_000, 30_000])
    s = Stmt("S1", OPENING).add(FUNDING, cd=Direction.CREDIT).add(d1.amount, d1.key).add(d3.amount, d3.key)
    s.add(d3.amount, d3.key, cd=Direction.CREDIT, rvsl=True).store(engine)
    recon_run(engine, RUN, now=RUN_AT, is_business_day=weekdays)
    found = open_breaks(engine)
    lo, rv = found[("ledger_only", d2.payout_id)], found[("reversal", d3.payout_id)]
    done = follow_up(engine, RUN_AT, tz=TZ)
    assert (done.inquiries, done.returns) == (1, 1)
    # ledger_only: back to inquiry, the confirm undone, the reason naming the break; nothing resent
    assert status(engine, d2.payout_id) is S.RESULT_UNKNOWN
    assert events(engine, d2.payout_id)[-1] == ("succeeded", "result_unknown")
    with engine.connect() as c:
        reason = c.execute(select(t.payout_events.c.reason).where(t.payout_events.c.payout_id == d2.payout_id)
                           .order_by(t.payout_events.c.id.desc()).limit(1)).scalar_one()
        assert f"#{lo['id']}" in reason
        assert "不重发" in reason
        assert ledger_repo.check(c) == []
    assert entries(engine, d2.payout_id)[-1] == "payout_unconfirm"
    # reversal: the returns path (succeeded -> returned -> held, return entry)
    assert status(engine, d3.payout_id) is S.HELD
    assert events(engine, d3.payout_id)[-2:] == [("succeeded", "returned"), ("returned", "held")]
    assert entries(engine, d3.payout_id)[-1] == "payout_return"
    assert f"#{rv['id']}" in str(attempts(engine, d3.payout_id)[-1]["message"])
    shown = CliRunner().invoke(cli, ["--db", db_url, "recon", "show", str(lo["id"])])
    assert "出款转查询 payout back to inquiry" in shown.output, shown.output
    # once per break
    again = follow_up(engine, RUN_AT, tz=TZ)
    assert (again.inquiries, again.returns) == (0, 0)
    # the next run: both breaks cleared, the ledger agrees with the bank
    recon_run(engine, RUN, now=RUN_AT, is_business_day=weekdays)
    assert set(open_breaks(engine)) == set()
    with engine.connect() as c:
        proof = dry_proof(c, RUN, is_business_day=weekdays)
    assert proof is not None
    assert proof.drift_fen == 0
    assert proof.ok
    # the next inquiry decides: the bank says paid -> succeeded again; never sent a second time
    run(engine, bank, vault)
    assert status(engine, d2.payout_id) is S.SUCCEEDED
    assert bank.keys_called(d2.key).count("send") == 1
    assert "inquire" in bank.keys_called(d2.key)
    # still never booked: the break is found again, but the follow-up does not send it to inquiry twice
    recon_run(engine, RUN, now=RUN_AT, is_business_day=weekdays)
    assert open_breaks(engine)[("ledger_only", d2.payout_id)]["id"] == lo["id"]
    assert follow_up(engine, RUN_AT, tz=TZ).inquiries == 0
    assert status(engine, d2.payout_id) is S.SUCCEEDED
    with engine.connect() as c:
        assert ledger_repo.check(c) == []
    # a return of payout 1 recorded (camt.054 returns path) before the bank's statement shows the credit back:
    # in transit the other way, not unexplained
    with engine.begin() as c:
        (p1,) = payouts_repo.by_ids(c, [d1.payout_id])
        back = NotificationEntry("N1", d1.key, d1.amount, "CRDT", False, "BOOK", RUN, RUN, None,
                                 Reason("AC04", None, "账户已销户"), 1)
        files._apply_returns(c, [(p1, back)], files.ImportSummary(Path("n.xml"), "camt.054", "-"), RUN_AT, TZ,
                             SystemCases(tz=TZ))
    assert status(engine, d1.payout_id) is S.HELD
    with engine.connect() as c:
        proof = dry_proof(c, RUN, is_business_day=weekdays)
    assert proof is not None
    assert proof.unexplained_fen == 0
    assert (d1.payout_id, -d1.amount) in {(i.payout_id, i.effect_fen) for i in proof.items if i.type == "in_transit"}


def test_an_aged_break_opens_one_case_with_its_lines_and_payout(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (d1,), _ = paid(engine, vault, tmp_path, [10_000])
    # amount off; a stranger's debit whose stored text carries a full card number (hostile: stored unmasked)
    Stmt("S1", OPENING).add(d1.amount + 5, d1.key).add(1_234, raw=f"<Ntry><AddtlNtryInf>{PAN}</AddtlNtryInf>").store(
        engine)
    recon_run(engine, RUN, now=RUN_AT, is_business_day=weekdays)
    mismatch = open_breaks(engine)[("amount_mismatch", d1.payout_id)]
    hours = Container(settings=Settings(db="sqlite://", recon_break_case_hours=30)).recon_case_hours
    assert hours == 30
    early = follow_up(engine, RUN_AT + timedelta(hours=29), tz=TZ, case_after_hours=hours)
    assert (early.cases, early.alerts) == (0, 0)
    late = RUN_AT + timedelta(hours=31)
    (recon_step,) = [s for s in STEPS if s.name == "recon"]
    summary = cycle(engine, ScriptedBank(), vault, None, as_of=RUN, now=late, steps=[recon_step],
                    recon_case_hours=hours)
    done = summary.steps["recon"]
    assert (done.cases, done.alerts) == (1, 1)  # type: ignore[attr-defined]
    for _ in range(2):  # once per break, whoever runs it again
        again = follow_up(engine, late + timedelta(hours=5), tz=TZ, case_after_hours=hours)
        assert (again.cases, again.alerts) == (0, 0)
    with engine.connect() as c:
        cases = c.execute(select(t.cases).where(t.cases.c.dedupe_key.like("recon_break:%"))).mappings().all()
        assert len(cases) == 1
        (case,) = cases
        assert case["category"] == "recon_break"
        assert case["merchant_id"] == d1.merchant.id
        assert case["dedupe_key"] == f"recon_break:{mismatch['id']}"
        linked = c.execute(select(t.case_payouts.c.payout_id).where(t.case_payouts.c.case_id == case["id"])).scalars()
        assert list(linked) == [d1.payout_id]
        alerts = c.execute(select(t.ops_alerts.c.message).where(t.ops_alerts.c.kind == "recon_break")).scalars().all()
        assert len(alerts) == 1
        assert PAN not in alerts[0]
        assert PAN[:6] in alerts[0]
        assert "¥12.34" in alerts[0]
    bundle = build(engine, int(case["id"]), late, tz=TZ)
    text = bundle.files["case.json"].decode()
    assert "S1-E1" in text
    assert d1.key in text
    assert "BANK-S1-1" in text
    assert "payouts.csv" in bundle.files


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fates=st.lists(st.sampled_from(["booked", "twice", "missing", "more", "less", "late", "reversal"]),
                      min_size=6, max_size=6),
       gap=st.sampled_from([0, 0, 1, -999]), strangers=st.lists(st.integers(1, 10_000), max_size=2))
def test_every_break_is_accounted_for_and_only_a_gap_is_unexplained(
        engine: Engine, vault: Vault, tmp_path_factory: pytest.TempPathFactory, fates: list[str], gap: int,
        strangers: list[int]) -> None:
    """Random paid payouts and statements with every kind of break: drift = the breaks' and in-transit
    payouts' effects exactly; a statement gap (an opening that does not follow the last closing) is all that is
    left unexplained."""
    global _PAID
    if _PAID is None or _PAID[0] is not engine:
        dues, _ = paid(engine, vault, tmp_path_factory.mktemp("p"), [1_000 * (i + 1) + 7 for i in range(6)])
        _PAID = (engine, dues)
    dues = _PAID[1]
    with engine.begin() as c:
        for table in (t.recon_breaks, t.recon_matches, t.recon_runs, t.recon_balance_proofs, t.bank_lines,
                      t.bank_statements):
            c.execute(delete(table))
        c.execute(update(t.payouts).values(value_date=BOOKED))
    s = Stmt("S1", OPENING).add(FUNDING, cd=Direction.CREDIT)
    late: list[Due] = []
    for d, fate in zip(dues, fates, strict=False):
        if fate in ("booked", "twice", "reversal"):
            s.add(d.amount, d.key)
        if fate == "twice":
            s.add(d.amount, d.key)
        if fate in ("more", "less"):
            s.add(d.amount + (3 if fate == "more" else -3), d.key)
        if fate == "reversal":
            s.add(d.amount, d.key, cd=Direction.CREDIT, rvsl=True)
        if fate == "late":  # paid on the run day: its window is still open (in transit)
            late.append(d)
    for fen in strangers:
        s.add(fen)
    with engine.begin() as c:
        for d in late:
            c.execute(update(t.payouts).where(t.payouts.c.id == d.payout_id).values(value_date=RUN))
    closing = s.store(engine)
    if gap:
        Stmt("S2", closing - gap, day=date(2026, 11, 20)).store(engine)
    res = recon_run(engine, RUN, now=RUN_AT, is_business_day=weekdays)
    proof = res.proof
    assert proof is not None
    assert proof.unexplained_fen == -gap, proof.as_dict()
    assert proof.in_transit_fen == sum(d.amount for d in late)
    missing = [d for d, f in zip(dues, fates, strict=False) if f == "missing"]
    assert {i.payout_id for i in proof.breaks() if i.type == "ledger_only"} == {d.payout_id for d in missing}
    assert sum(1 for i in proof.breaks() if i.type == "bank_only") == len(strangers)


_PAID: tuple[Engine, list[Due]] | None = None
