"""The pure matcher: every rule matches what it should, and every break type is named for what it is."""

from __future__ import annotations

from datetime import date

from settleguard.reconciliation.matching import (
    BreakType,
    Line,
    Payout,
    Plan,
    Rule,
    StatementBalance,
    creditor_account,
    masked_tail,
    plan,
)

MON = date(2026, 11, 30)
RUN = date(2026, 12, 4)  # Friday: a window of 2 business days from Monday has passed


def payout(pid: int, fen: int, status: str = "succeeded", batch: str | None = None, card: str | None = None) -> Payout:
    return Payout(id=pid, amount_fen=fen, status=status, value_date=MON, keys=frozenset({f"SG20261130M{pid}"}),
                  batch_ids=frozenset({batch} if batch else set()), account_masked=card)


def line(lid: int, fen: int, e2e: str | None = None, *, cd: str = "DBIT", sts: str = "BOOK", day: date = MON,
         rvsl: bool = False, pmt: str | None = None, count: int | None = None, card: str | None = None) -> Line:
    return Line(id=lid, amount_fen=fen, direction=cd, status=sts, booking_date=day, end_to_end_id=e2e,
                pmt_inf_id=pmt, batch_count=count, reversal=rvsl, bank_ref=f"REF{lid}", account_masked=card)


def kinds(p: Plan) -> list[tuple[str, int | None]]:
    return sorted(((str(b.type), b.payout_id) for b in p.breaks), key=lambda k: (k[0], k[1] or 0))


def test_one_line_per_payout_by_end_to_end_id_is_a_clean_match() -> None:
    got = plan([line(1, 100, "SG20261130M1"), line(2, 250, "SG20261130M2")], [payout(1, 100), payout(2, 250)], [],
               run_date=RUN)
    assert got.breaks == []
    assert {(m.line_id, m.payout_id, m.rule) for m in got.matches} == {(1, 1, Rule.E2E), (2, 2, Rule.E2E)}


def test_several_lines_under_one_key_summing_to_the_payout_match_many_to_one() -> None:
    got = plan([line(1, 60, "SG20261130M1"), line(2, 40, "SG20261130M1")], [payout(1, 100)], [], run_date=RUN)
    assert got.breaks == []
    assert {m.rule for m in got.matches} == {Rule.E2E_SPLIT}


def test_a_batch_line_matches_its_payouts_when_count_and_total_agree() -> None:
    pays = [payout(1, 100, batch="SGB1"), payout(2, 200, batch="SGB1")]
    good = plan([line(1, 300, pmt="SGB1", count=2)], pays, [], run_date=RUN)
    assert good.breaks == []
    assert len(good.matches) == 2
    bad = plan([line(1, 300, pmt="SGB1", count=3)], pays, [], run_date=RUN)
    assert kinds(bad) == [("amount_mismatch", None)]
    assert bad.matches == []
    short = plan([line(1, 299, pmt="SGB1", count=2)], pays, [], run_date=RUN)
    assert kinds(short) == [("amount_mismatch", None)]


def test_a_line_without_our_key_matches_by_amount_card_and_date_within_the_window() -> None:
    card = "622848******0018"
    got = plan([line(1, 100, card="6228480000000018", day=date(2026, 12, 2))], [payout(1, 100, card=card)], [],
               run_date=RUN)
    assert got.breaks == []
    assert [m.rule for m in got.matches] == [Rule.AMOUNT_DATE]
    late = plan([line(1, 100, day=date(2026, 12, 3))], [payout(1, 100)], [], run_date=RUN)  # 3 business days
    assert kinds(late) == [("bank_only", None), ("ledger_only", 1)]
    other_card = plan([line(1, 100, card="6228480000009999")], [payout(1, 100, card=card)], [], run_date=RUN)
    assert kinds(other_card) == [("bank_only", None), ("ledger_only", 1)]


def test_every_break_type_is_named() -> None:
    pays = [payout(1, 100), payout(2, 200), payout(3, 300), payout(4, 400), payout(5, 500), payout(6, 600, "failed")]
    lines = [line(1, 201, "SG20261130M2"),  # amount_mismatch
             line(2, 300, "SG20261130M3"), line(3, 300, "SG20261130M3", day=date(2026, 12, 1)),  # duplicate_debit
             line(4, 400, "SG20261130M4"), line(5, 400, "SG20261130M4", cd="CRDT", rvsl=True),  # reversal
             line(6, 500, "SG20261130M5", sts="PDNG"),  # pending never closes: ledger_only
             line(7, 600, "SG20261130M6"),  # debited for a payout we do not record as paid: bank_only
             line(8, 77, "XYZ"), line(9, 88, sts="INFO")]  # bank_only; INFO ignored
    st = [StatementBalance(id=1, statement_id="S1", account="A", opening_fen=10_000, closing_fen=9_000,
                           booked_net_fen=-1_001, on=RUN)]
    got = plan(lines, pays, st, run_date=RUN)
    assert kinds(got) == [("amount_mismatch", 2), ("balance_drift", None), ("bank_only", None), ("bank_only", 6),
                          ("duplicate_debit", 3), ("ledger_only", 1), ("ledger_only", 5), ("reversal", 4)]
    assert got.drift_fen == -1
    assert {(m.line_id, m.payout_id) for m in got.matches} == {(2, 3), (4, 4)}
    assert len({b.key for b in got.breaks}) == len(got.breaks)


def test_a_payout_is_not_ledger_only_before_its_window_has_passed() -> None:
    assert plan([], [payout(1, 100)], [], run_date=date(2026, 12, 1)).breaks == []
    assert kinds(plan([], [payout(1, 100)], [], run_date=date(2026, 12, 2))) == [("ledger_only", 1)]
    assert plan([], [payout(1, 100)], [], run_date=date(2026, 12, 2), window_days=3).breaks == []


def test_masked_account_reading() -> None:
    assert masked_tail("622848*********0018") == masked_tail("6228480402564890018") == "6228480018"
    assert masked_tail("1234") is None
    assert creditor_account("<CdtrAcct><Id><Othr><Id>622848*********0018</Id></Othr></Id></CdtrAcct>") == "6228480018"
    assert BreakType("balance_drift") is BreakType.BALANCE_DRIFT
