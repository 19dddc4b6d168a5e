"""Resolving reconciliation breaks with four eyes (reconciliation/resolve.py) on SQLite and PostgreSQL.

Real paid payouts (settled, sent through a scripted bank) and a camt.053-like statement with a duplicate debit,
an amount off by 5 fen, a reversal, a missing debit and a stranger's debit; ``recon run`` finds the breaks and
each is resolved: nothing moves until a second person approves, the proposer cannot approve, the money moves
once (ledger check holds), a later run that sees the bank's refund settles the receivable. Clearing breaks (长款,
短款) become adjustment transactions settled by the next settlement run. A hypothesis test drives random
sequences of propose / approve / reject against a model and checks that the ledger stays balanced and no break's
money moves twice."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select
from test_payout_send import ScriptedBank, make_payouts
from test_payout_send import run as send_all

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.ledger import repository as ledger_repo
from settleguard.reconciliation import repository as recon_repo
from settleguard.reconciliation import resolve
from settleguard.reconciliation.breaks import run as recon_run
from settleguard.reconciliation.model import Balance, BankLine, Direction, EntryStatus, Source, Statement
from settleguard.reconciliation.resolve import ResolutionRefused
from settleguard.settlement.engine import settle

TZ = "Asia/Shanghai"
BOOKED = date(2026, 11, 19)  # the payouts' value date (Thursday)
RUN_DAY = date(2026, 11, 25)
LATER = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
_serial = itertools.count(1)


def weekdays(d: date) -> bool:
    return d.weekday() < 5


def line(fen: int, e2e: str | None, *, cd: Direction = Direction.DEBIT, rvsl: bool = False,
         day: date = BOOKED) -> BankLine:
    n = next(_serial)
    return BankLine(source=Source.CAMT053, statement_id="S", entry_ref=f"E{n}", amount_fen=fen, direction=cd,
                    status=EntryStatus.BOOKED, booking_date=day, value_date=day, acct_svcr_ref=f"BANKREF{n}",
                    end_to_end_id=e2e, reversal=rvsl)


def store_statement(engine: Engine, lines: list[BankLine], statement_id: str, opening: int = 10**12) -> int:
    """Store a statement of ``lines`` (booked) from ``opening``; returns its closing balance."""
    booked = sum(ln.signed_fen for ln in lines)
    lines = [replace(ln, statement_id=statement_id) for ln in lines]
    st_ = Statement(source=Source.CAMT053, statement_id=statement_id, account="110060001012345", lines=lines,
                    balances={"OPBD": Balance("OPBD", opening, min(ln.booking_date or BOOKED for ln in lines)),
                              "CLBD": Balance("CLBD", opening + booked, max(ln.booking_date or BOOKED for ln in lines))})
    with engine.begin() as c:
        row = recon_repo.insert_statement(c, st_, f"{next(_serial):064d}", LATER)
        recon_repo.insert_lines(c, row, st_.account, lines)
    return opening + booked


@dataclass
class World:
    dup: Any
    mismatch: Any
    reversal: Any
    missing: Any
    breaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    closing: int = 0


def paid_world(engine: Engine, vault: Vault, tmp_path: Path) -> World:
    dues = make_payouts(engine, vault, tmp_path, [100_00, 200_00, 300_00, 400_00])
    send_all(engine, ScriptedBank(), vault)
    w = World(dup=dues[0], mismatch=dues[1], reversal=dues[2], missing=dues[3])
    w.closing = store_statement(engine, [
        line(w.dup.amount, w.dup.key), line(w.dup.amount, w.dup.key, day=BOOKED + timedelta(days=1)),
        line(w.mismatch.amount + 5, w.mismatch.key),
        line(w.reversal.amount, w.reversal.key),
        line(w.reversal.amount, w.reversal.key, cd=Direction.CREDIT, rvsl=True, day=BOOKED + timedelta(days=1)),
        line(777_77, None),
    ], "S1")
    recon_run(engine, RUN_DAY, now=LATER, is_business_day=weekdays)
    with engine.connect() as c:
        rows = recon_repo.breaks(c, status="open")
    by_payout = {(r["type"], r["payout_id"]): r for r in rows}
    w.breaks = {
        "dup": by_payout[("duplicate_debit", w.dup.payout_id)],
        "mismatch": by_payout[("amount_mismatch", w.mismatch.payout_id)],
        "reversal": by_payout[("reversal", w.reversal.payout_id)],
        "missing": by_payout[("ledger_only", w.missing.payout_id)],
        "stranger": next(r for r in rows if r["type"] == "bank_only"),
    }
    assert len(rows) == 5, rows
    return w


def check(engine: Engine, *, proof: bool = False) -> None:
    """``ledger check``: merchant positions, and with ``proof`` the balance proof against the bank's closing
    balance (reconciliation/followup.py): nothing left unexplained."""
    with engine.connect() as c:
        assert ledger_repo.check(c) == []
        if proof:
            from settleguard.reconciliation.followup import dry_proof

            got = dry_proof(c, is_business_day=weekdays)
            assert got is not None
            assert got.unexplained_fen == 0, got.as_dict()


def totals(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return ledger_repo.totals(c)


def entries_of_kind(engine: Engine, kind: str) -> list[dict[str, Any]]:
    e = t.ledger_entries
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(select(e).where(e.c.kind == kind).order_by(e.c.id))]


def break_status(engine: Engine, break_id: int) -> str:
    with engine.connect() as c:
        row = recon_repo.break_by_id(c, break_id)
    assert row is not None
    return str(row["status"])


def payout_status(engine: Engine, pid: int) -> str:
    with engine.connect() as c:
        return str(c.execute(select(t.payouts.c.status).where(t.payouts.c.id == pid)).scalar_one())


def audit_kinds(engine: Engine) -> list[tuple[str, str]]:
    a = t.audit_events
    with engine.connect() as c:
        return [(str(k), str(actor)) for k, actor in c.execute(
            select(a.c.kind, a.c.actor).where(a.c.kind.like("recon.%")).order_by(a.c.id))]


def refused(reason: str, fn: Any, *args: Any, **kw: Any) -> ResolutionRefused:
    with pytest.raises(ResolutionRefused) as got:
        fn(*args, **kw)
    assert got.value.reason == reason, (got.value.zh, got.value.en)
    assert got.value.zh
    assert got.value.en
    return got.value


def test_each_break_type_moves_money_once_after_a_second_person_approves(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    w = paid_world(engine, vault, tmp_path)
    b = w.breaks
    now = LATER + timedelta(hours=1)
    before = totals(engine)
    check(engine, proof=True)  # the open breaks explain the drift

    # maker: a note is required; nothing moves on a proposal
    refused("invalid", resolve.propose, engine, b["dup"]["id"], None, "   ", "alice", now)
    refused("invalid", resolve.propose, engine, b["dup"]["id"], "hold", "x", "alice", now)  # not for this type
    refused("invalid", resolve.propose, engine, b["dup"]["id"], None, "x", "  ", now)
    refused("not_found", resolve.propose, engine, 999_999, None, "x", "alice", now)
    card = "6222021234567890123"
    dup = resolve.propose(engine, b["dup"]["id"], None, f"银行重复扣款，已致电 客户卡 {card}", "alice", now)
    assert (dup.action, dup.status, dup.amount_fen) == ("bank_receivable", "proposed", w.dup.amount)
    assert card not in dup.note  # masked before storing
    refused("conflict", resolve.propose, engine, b["dup"]["id"], "write_off", "again", "carol", now)
    assert totals(engine) == before
    assert break_status(engine, b["dup"]["id"]) == "open"

    # checker: the proposer cannot approve (whatever the case or spacing of the name)
    e = refused("forbidden", resolve.approve, engine, dup.id, " ALICE ", now, tz=TZ)
    assert "不能批准" in e.zh
    assert "cannot approve" in e.en
    assert totals(engine) == before
    ok = resolve.approve(engine, dup.id, "bob", now, tz=TZ, note="同意")
    assert (ok.status, ok.decided_by, ok.receivable_status) == ("approved", "bob", "open")
    refused("conflict", resolve.approve, engine, dup.id, "carol", now, tz=TZ)  # never twice
    refused("conflict", resolve.reject, engine, dup.id, "carol", now)
    assert break_status(engine, b["dup"]["id"]) == "resolved"
    after = totals(engine)
    assert after["bank_receivable"] == -w.dup.amount  # a debit balance: the bank owes it
    assert after["bank_provisions"] - before["bank_provisions"] == w.dup.amount
    [entry] = entries_of_kind(engine, "recon_receivable")
    assert entry["id"] == ok.entry_id
    assert f"break #{b['dup']['id']}" in entry["memo"]
    check(engine, proof=True)

    # reject then propose again; amount_mismatch adjusts the difference (bank paid 5 fen more)
    e = refused("invalid", resolve.propose, engine, b["mismatch"]["id"], "note", "先记录", "alice", now)
    assert "账实核对" in e.zh
    assert "balance proof" in e.en
    first = resolve.propose(engine, b["mismatch"]["id"], "adjust", "先调整", "alice", now)
    rej = resolve.reject(engine, first.id, "bob", now, note="应调整差额")
    assert rej.status == "rejected"
    assert break_status(engine, b["mismatch"]["id"]) == "open"
    adj = resolve.approve(engine, resolve.propose(engine, b["mismatch"]["id"], "差额调整", "调整 5 分", "alice", now).id,
                          "bob", now, tz=TZ)
    assert adj.action == "adjust"
    assert adj.entry_id is not None
    assert totals(engine)["recon_adjustment"] == -5

    # reversal: held as for a return (succeeded -> returned -> held, payout_return entry, merchant notice)
    assert payout_status(engine, w.reversal.payout_id) == "succeeded"
    rv = resolve.approve(engine, resolve.propose(engine, b["reversal"]["id"], None, "银行冲正，挂账待查", "bob",
                                                 now).id, "alice", now, tz=TZ)
    assert payout_status(engine, w.reversal.payout_id) == "held"
    [ret] = entries_of_kind(engine, "payout_return")
    assert ret["payout_id"] == w.reversal.payout_id
    assert rv.entry_id == ret["id"]
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(t.notifications).where(
            t.notifications.c.merchant_id == w.reversal.merchant.id,
            t.notifications.c.kind == "returned")).scalar_one() == 1

    # ledger_only: a note only, no money, once follow-up sent the payout back to inquiry (before, the note would
    # leave the balance proof unexplained); bank_only: written off
    refused("invalid", resolve.propose, engine, b["missing"]["id"], "adjust", "x", "alice", now)
    refused("invalid", resolve.propose, engine, b["missing"]["id"], None, "已发起查询", "alice", now)
    from settleguard.reconciliation.followup import follow_up

    follow_up(engine, now, tz=TZ)
    assert payout_status(engine, w.missing.payout_id) == "result_unknown"
    n = resolve.approve(engine, resolve.propose(engine, b["missing"]["id"], None, "已发起查询", "alice", now).id,
                        "bob", now, tz=TZ)
    assert n.action == "note"
    assert n.entry_id is None
    wo = resolve.approve(engine, resolve.propose(engine, b["stranger"]["id"], "write_off", "无法追回，核销", "alice",
                                                 now).id, "bob", now, tz=TZ)
    assert totals(engine)["recon_loss"] == -777_77
    assert wo.entry_id is not None
    refused("conflict", resolve.propose, engine, b["stranger"]["id"], None, "again", "alice", now)  # resolved
    check(engine, proof=True)

    # a later statement books the bank's refund of the duplicate: the next run settles the receivable and the
    # refund line's own reversal break is resolved with it; nothing is reopened or moved twice
    store_statement(engine, [line(w.dup.amount, w.dup.key, cd=Direction.CREDIT, day=BOOKED + timedelta(days=4))],
                    "S2", opening=w.closing)
    recon_run(engine, RUN_DAY + timedelta(days=1), now=LATER + timedelta(days=1), is_business_day=weekdays)
    [settled] = [r for r in resolve.list_for_break(engine, b["dup"]["id"])]
    assert settled.receivable_status == "settled"
    assert settled.settled_line_id is not None
    assert totals(engine)["bank_receivable"] == 0
    assert totals(engine)["bank_provisions"] == (before["bank_provisions"] + 5 + 777_77 - w.reversal.amount
                                                 - w.missing.amount)  # follow-up undid its confirm
    with engine.connect() as c:
        open_now = recon_repo.breaks(c, status="open")
        refund_break = [r for r in recon_repo.breaks(c, type_="reversal") if r["bank_line_id"] == settled.settled_line_id]
    assert [r["type"] for r in open_now if r["payout_id"] == w.dup.payout_id] == []
    assert refund_break
    assert refund_break[0]["status"] == "resolved"
    recon_run(engine, RUN_DAY + timedelta(days=1), now=LATER + timedelta(days=1, hours=1), is_business_day=weekdays)
    assert len(entries_of_kind(engine, "recon_refund")) == 1
    assert len(entries_of_kind(engine, "recon_receivable")) == 1
    check(engine, proof=True)

    kinds = audit_kinds(engine)
    assert ("recon.resolution_proposed", "alice") in kinds
    assert ("recon.resolution_approved", "bob") in kinds
    assert ("recon.resolution_rejected", "bob") in kinds
    assert ("recon.receivable_settled", "system") in kinds
    from settleguard.audit import service as audit

    assert audit.verify(engine).ok  # the chain holds with every step in it


def add_break(engine: Engine, type_: str, amount: int | None, detail: dict[str, Any], payout_id: int | None = None,
              line_id: int | None = None) -> int:
    with engine.begin() as c:
        return int(c.execute(insert(t.recon_breaks).values(
            break_key=f"{type_}:test:{next(_serial)}", type=type_, status="open", amount_fen=amount,
            payout_id=payout_id, bank_line_id=line_id, opened_at=LATER, detail=detail, run_id=0,
            last_run_id=0).returning(t.recon_breaks.c.id)).scalar_one())


def test_clearing_breaks_become_adjustment_transactions_settled_in_the_next_cycle(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    dues = make_payouts(engine, vault, tmp_path, [500_00, 600_00])
    long_m, short_m = dues[0].merchant, dues[1].merchant
    with engine.connect() as c:
        orig = c.execute(select(t.transactions).where(t.transactions.c.merchant_id == short_m.id)).one()._mapping
    now = datetime.combine(date(2026, 11, 20), time(10), ZoneInfo(TZ))
    # the details as clearing_matching.py writes them: the network's line for a 长款, our transaction for a 短款
    long_id = add_break(engine, "clearing_long", 88_00, {
        "clearing_line_id": 1, "merchant_code": long_m.merchant_no, "terminal_no": long_m.terminal_no,
        "stan": "000123", "txn_code": "S22", "sent_at": "2026-11-19T20:15:00+08:00",
        "account_masked": "622202******1234", "network_amount_fen": 88_00, "network_fee_fen": 53,
        "network_net_fen": 88_00 - 53})
    short_id = add_break(engine, "clearing_short", int(orig["amount_fen"]), {
        "merchant_no": short_m.merchant_no, "merchant_id": short_m.id, "terminal_no": short_m.terminal_no,
        "external_ref": orig["external_ref"], "stan": None, "rrn": None, "kind": 1,
        "occurred_at": orig["occurred_at"].isoformat(), "our_amount_fen": int(orig["amount_fen"]),
        "our_fee_fen": int(orig["fee_fen"])})
    bad_id = add_break(engine, "clearing_long", 10_00, {"merchant_id": 987_654})
    refused("invalid", resolve.propose, engine, bad_id, None, "长款", "alice", now)  # unknown merchant
    hostile = add_break(engine, "clearing_long", 10_00, {"merchant_id": "1; DROP TABLE payouts",
                                                         "merchant_code": "8" * 5000, "network_fee_fen": True})
    refused("invalid", resolve.propose, engine, hostile, None, "长款", "alice", now)
    greedy = add_break(engine, "clearing_long", 10_00, {"merchant_id": long_m.id, "network_fee_fen": 10**9})
    refused("invalid", resolve.propose, engine, greedy, None, "手续费大于金额", "alice", now)

    lg = resolve.approve(engine, resolve.propose(engine, long_id, None, "长款补记", "alice", now).id, "bob", now,
                         tz=TZ)
    sh = resolve.approve(engine, resolve.propose(engine, short_id, None, "短款冲正", "alice", now).id, "bob", now,
                         tz=TZ)
    assert lg.txn_cycle_date == sh.txn_cycle_date == date(2026, 11, 20)
    assert lg.entry_id is None  # the money moves through the next settlement run, not a second path
    with engine.connect() as c:
        txns = {r.merchant_id: r for r in c.execute(select(t.transactions).where(
            t.transactions.c.external_ref.like("RA%")))}
    assert (txns[long_m.id].kind, txns[long_m.id].amount_fen, txns[long_m.id].fee_fen) == (1, 88_00, 53)
    assert txns[long_m.id].terminal_id is not None
    assert txns[long_m.id].card_type == 1
    assert (txns[short_m.id].kind, txns[short_m.id].fee_fen) == (4, -int(orig["fee_fen"]))
    settle(engine, date(2026, 11, 20), now + timedelta(days=1))
    with engine.connect() as c:
        nets = dict(c.execute(select(t.settlements.c.merchant_id, t.settlements.c.net_fen).where(
            t.settlements.c.cycle_date == date(2026, 11, 20))).all())
        payouts = dict(c.execute(select(t.payouts.c.merchant_id, t.payouts.c.amount_fen).where(
            t.payouts.c.cycle_date == date(2026, 11, 20))).all())
    assert nets[long_m.id] == 88_00 - 53
    assert payouts[long_m.id] == 88_00 - 53
    assert nets[short_m.id] == -(int(orig["amount_fen"]) - int(orig["fee_fen"]))  # netted, carried over
    assert short_m.id not in payouts
    check(engine)
    # approving again or proposing on the resolved break moves nothing more
    refused("conflict", resolve.approve, engine, lg.id, "carol", now, tz=TZ)
    refused("conflict", resolve.propose, engine, long_id, None, "again", "alice", now)
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(t.transactions).where(
            t.transactions.c.external_ref.like("RA%"))).scalar_one() == 2


# --- hypothesis: any sequence of propose / approve / reject ----------------------------------------------------

ACTORS = ["alice", "bob", "Alice"]
Op = tuple[str, int, int, int]
ops = st.lists(st.tuples(st.sampled_from(["propose", "propose", "approve", "approve", "reject"]), st.integers(0, 5),
                         st.integers(0, 2), st.integers(0, 3)), min_size=2, max_size=16)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=ops, amounts=st.lists(st.integers(-10**7, 10**7).filter(bool), min_size=4, max_size=4))
@example(sequence=[("propose", 0, 0, 0), ("approve", 0, 2, 0), ("approve", 0, 1, 0), ("approve", 0, 1, 0),
                   ("propose", 2, 1, 0), ("reject", 0, 1, 0), ("propose", 2, 0, 0), ("approve", 0, 1, 0),
                   ("propose", 1, 2, 1), ("approve", 0, 1, 0), ("propose", 3, 1, 2), ("approve", 0, 0, 0),
                   ("reject", 0, 0, 0), ("propose", 0, 1, 0)],
         amounts=[1, -2, 3, 4])
def test_any_sequence_keeps_the_ledger_balanced_and_never_moves_money_twice(
        engine: Engine, sequence: list[Op], amounts: list[int]) -> None:
    now = LATER
    kinds = ["duplicate_debit", "bank_only", "amount_mismatch", "ledger_only", "duplicate_debit", "amount_mismatch"]
    bids = [add_break(engine, k, abs(amounts[i % 4]) if k != "amount_mismatch" else amounts[i % 4], {})
            for i, k in enumerate(kinds)]
    live: dict[int, tuple[int, str]] = {}  # break index -> (resolution id, proposer) while proposed
    approved: dict[int, str] = {}  # break index -> action
    made: list[tuple[int, int]] = []  # (resolution id, break index)
    decided: set[int] = set()
    for op, bi, ai, ci in sequence:
        actor = ACTORS[ai]
        if op == "propose":
            allowed = resolve.actions_for(kinds[bi])
            action = allowed[ci % len(allowed)] if ci < 3 else "hold"  # hold: never for these types
            ok = (bi not in approved and bi not in live and action in allowed
                  and not (action == "note" and kinds[bi] != "ledger_only"))  # amounts are never 0 here
            try:
                r = resolve.propose(engine, bids[bi], action, f"note {ci}", actor, now)
            except ResolutionRefused:
                assert not ok
            else:
                assert ok
                live[bi] = (r.id, actor)
                made.append((r.id, bi))
        elif made:
            rid, bi = made[-1 - ci % len(made)]  # the latest first: usually still proposed
            proposed = rid not in decided
            proposer = live[bi][1] if proposed else ""
            try:
                if op == "approve":
                    resolve.approve(engine, rid, actor, now, tz=TZ)
                else:
                    resolve.reject(engine, rid, actor, now)
            except ResolutionRefused:
                assert not proposed or (op == "approve" and resolve.same_person(actor, proposer))
            else:
                assert proposed
                assert (op == "reject" or not resolve.same_person(actor, proposer))
                decided.add(rid)
                del live[bi]
                if op == "approve":
                    approved[bi] = str(resolve.get(engine, rid).action)  # type: ignore[union-attr]
        check(engine)
    event(f"approved: {min(len(approved), 3)}+, rejected: {min(len(decided) - len(approved), 2)}+")
    # money moved exactly once for each approved money action, never for anything else
    e = t.ledger_entries
    with engine.connect() as c:
        for i, bid in enumerate(bids):
            n = c.execute(select(func.count()).select_from(e).where(
                e.c.memo.like(f"%break #{bid} resolution #%"))).scalar_one()
            assert n == (1 if approved.get(i) in resolve.MOVES_MONEY else 0), (i, approved)
            assert break_status(engine, bid) == ("resolved" if i in approved else "open")
    want_receivable = sum(abs(amounts[i % 4]) for i, a in approved.items() if a == "bank_receivable")
    lp = t.ledger_postings
    with engine.connect() as c:
        mine = c.execute(select(func.coalesce(func.sum(lp.c.amount_fen), 0)).where(
            lp.c.account == "bank_receivable", lp.c.entry_id.in_(select(t.recon_resolutions.c.entry_id).where(
                t.recon_resolutions.c.break_id.in_(bids))))).scalar_one()
    assert int(mine) == want_receivable  # a debit balance: what the bank owes for the approved receivables


def test_racing_approvals_and_proposals_move_money_once(engine: Engine) -> None:
    """Two checkers approve the same proposal at once, two makers propose for one break at once: one wins."""
    from concurrent.futures import ThreadPoolExecutor

    bid = add_break(engine, "duplicate_debit", 12_34, {})
    res = resolve.propose(engine, bid, None, "重复扣款", "alice", LATER)

    def approve_as(who: str) -> str:
        try:
            resolve.approve(engine, res.id, who, LATER, tz=TZ)
        except ResolutionRefused as exc:
            return exc.reason
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        got = sorted(pool.map(approve_as, ["bob", "carol", "dave", "erin"]))
    assert got == ["conflict", "conflict", "conflict", "ok"]
    assert len(entries_of_kind(engine, "recon_receivable")) == 1
    check(engine)

    other = add_break(engine, "bank_only", 56_78, {})

    def propose_as(who: str) -> str:
        try:
            resolve.propose(engine, other, "write_off", f"by {who}", who, LATER)
        except ResolutionRefused as exc:
            return exc.reason
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        got = sorted(pool.map(propose_as, ["a1", "a2", "a3", "a4"]))
    assert got == ["conflict", "conflict", "conflict", "ok"]
    assert [r.status for r in resolve.list_for_break(engine, other)] == ["proposed"]


def test_hostile_input_is_refused_or_masked_and_changes_nothing(engine: Engine) -> None:
    bid = add_break(engine, "bank_only", 9_99, {"merchant_id": "1; DROP TABLE payouts"})
    for actor in ("", "x" * 65, "bob\x1b[31m", "bob\nalice"):
        refused("invalid", resolve.propose, engine, bid, None, "note", actor, LATER)
    refused("invalid", resolve.propose, engine, bid, None, "长" * 2001, "alice", LATER)
    refused("invalid", resolve.propose, engine, bid, "[bold]x' OR 1=1 --", "note", "alice", LATER)
    refused("invalid", resolve.propose, engine, bid, "refund_matched", "note", "alice", LATER)  # system only
    assert resolve.list_for_break(engine, bid) == []
    r = resolve.propose(engine, bid, None, "卡号 6222 0212 3456 7890 123 <script>alert(1)</script>", "alice", LATER)
    assert "6222 0212 3456 7890 123" not in r.note
    assert "<script>" in r.note
    with engine.connect() as c:
        payload = c.execute(select(t.audit_events.c.payload).where(
            t.audit_events.c.kind == "recon.resolution_proposed")).scalars().all()
    assert payload
    assert all("6222 0212 3456 7890 123" not in str(p) for p in payload)
    refused("not_found", resolve.approve, engine, 10**9, "bob", LATER, tz=TZ)
    refused("not_found", resolve.reject, engine, 10**9, "bob", LATER)


def test_a_refund_booked_before_the_approval_settles_the_receivable_at_once_and_is_never_held(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    """The bank refunds the duplicate before anyone approved: its credit is first a reversal break someone may
    propose to hold; approving the receivable settles it with that credit and withdraws the hold proposal."""
    w = paid_world(engine, vault, tmp_path)
    store_statement(engine, [line(w.dup.amount, w.dup.key, cd=Direction.CREDIT, day=BOOKED + timedelta(days=2))],
                    "S2", opening=w.closing)
    recon_run(engine, RUN_DAY, now=LATER, is_business_day=weekdays)
    with engine.connect() as c:
        [credit] = [r for r in recon_repo.breaks(c, type_="reversal", status="open") if r["payout_id"] == w.dup.payout_id]
    now = LATER + timedelta(hours=1)
    dup = resolve.propose(engine, w.breaks["dup"]["id"], None, "重复扣款", "alice", now)
    hold = resolve.propose(engine, credit["id"], "hold", "按退票挂账？", "carol", now)
    resolve.approve(engine, dup.id, "bob", now, tz=TZ)
    [settled] = resolve.list_for_break(engine, w.breaks["dup"]["id"])
    assert settled.receivable_status == "settled"
    assert settled.settled_line_id == credit["bank_line_id"]
    assert [(r.id, r.status, r.decided_by) for r in resolve.list_for_break(engine, credit["id"])] == [
        (hold.id, "rejected", "system"), (hold.id + 1, "approved", "system")]
    refused("conflict", resolve.approve, engine, hold.id, "bob", now, tz=TZ)
    assert payout_status(engine, w.dup.payout_id) == "succeeded"  # a refund is not a return: nothing held
    assert totals(engine)["bank_receivable"] == 0
    assert len(entries_of_kind(engine, "recon_refund")) == 1
    assert entries_of_kind(engine, "payout_return") == []
    check(engine, proof=True)
