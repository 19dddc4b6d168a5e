"""Ledger entries balance, the entry factories post to the documented accounts, and check_position
names what is wrong (ledger/model.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from settleguard.ledger.model import (
    Account,
    Entry,
    EntryKind,
    MerchantPosition,
    Posting,
    UnbalancedEntry,
    check_position,
    confirm,
    hold,
    release,
    returned,
    submit,
    unbalanced,
)

accounts = st.sampled_from(list(Account))
amounts = st.integers(-(10**13), 10**13)
postings = st.builds(Posting, accounts, st.one_of(st.none(), st.integers(1, 10**6)), amounts)


@given(st.lists(postings, min_size=2, max_size=6))
def test_an_entry_whose_postings_do_not_sum_to_zero_is_refused(ps: list[Posting]) -> None:
    total = sum(p.amount_fen for p in ps)
    assume(total != 0)
    with pytest.raises(UnbalancedEntry, match=f"sum to {total} fen"):
        Entry(EntryKind.SETTLEMENT, "x", tuple(ps))


@given(st.lists(postings, min_size=1, max_size=5))
def test_an_entry_whose_postings_sum_to_zero_is_accepted(ps: list[Posting]) -> None:
    balancing = Posting(Account.CLEARING_RECEIVABLE, None, -sum(p.amount_fen for p in ps))
    e = Entry(EntryKind.SETTLEMENT, "x", (*ps, balancing))
    assert sum(p.amount_fen for p in e.postings) == 0


@given(st.lists(st.builds(Posting, accounts, st.none(), st.just(0)), max_size=1))
def test_an_entry_needs_at_least_two_postings_even_when_they_balance(ps: list[Posting]) -> None:
    with pytest.raises(UnbalancedEntry, match="at least two postings"):
        Entry(EntryKind.SUBMIT, "x", tuple(ps))


Factory = Callable[[int, int, int], Entry]
# (factory, kind, debited account, credited account) as written in architecture.md.
FACTORIES: list[tuple[Factory, EntryKind, Account, Account]] = [
    (submit, EntryKind.SUBMIT, Account.MERCHANT_PAYABLE, Account.PAYOUT_IN_TRANSIT),
    (confirm, EntryKind.CONFIRM, Account.PAYOUT_IN_TRANSIT, Account.BANK_PROVISIONS),
    (hold, EntryKind.HOLD, Account.PAYOUT_IN_TRANSIT, Account.MERCHANT_HELD),
    (release, EntryKind.RELEASE, Account.MERCHANT_HELD, Account.PAYOUT_IN_TRANSIT),
    (returned, EntryKind.RETURN, Account.BANK_PROVISIONS, Account.MERCHANT_HELD),
]
factory_ids = [f[1].value for f in FACTORIES]


@pytest.mark.parametrize(("factory", "kind", "debit", "credit"), FACTORIES, ids=factory_ids)
@given(merchant_id=st.integers(1, 2**31 - 1), payout_id=st.integers(1, 2**31 - 1), amount=st.integers(1, 10**13))
def test_factory_entries_balance_and_move_money_between_the_documented_accounts(
    factory: Factory, kind: EntryKind, debit: Account, credit: Account, merchant_id: int, payout_id: int,
    amount: int,
) -> None:
    e = factory(merchant_id, payout_id, amount)
    assert e.kind is kind
    assert sum(p.amount_fen for p in e.postings) == 0
    assert {(p.account, p.amount_fen) for p in e.postings} == {(debit, amount), (credit, -amount)}
    assert all(p.merchant_id == merchant_id for p in e.postings)
    assert (e.merchant_id, e.payout_id) == (merchant_id, payout_id)
    assert e.memo


@pytest.mark.parametrize(("factory", "kind", "debit", "credit"), FACTORIES, ids=factory_ids)
@pytest.mark.parametrize("amount", [0, -1, -10_000])
def test_factory_entries_refuse_amounts_that_are_not_positive(
    factory: Factory, kind: EntryKind, debit: Account, credit: Account, amount: int,
) -> None:
    with pytest.raises(ValueError, match="positive"):
        factory(7, 9, amount)


def test_a_payout_that_fails_then_is_released_and_paid_leaves_only_what_was_paid() -> None:
    balance: dict[Account, int] = {a: 0 for a in Account}
    for e in (submit(1, 1, 500), hold(1, 1, 500), release(1, 1, 500), confirm(1, 1, 500)):
        for p in e.postings:
            balance[p.account] += p.amount_fen
    assert balance[Account.MERCHANT_PAYABLE] == 500  # the debit that settles the settlement's credit
    assert balance[Account.BANK_PROVISIONS] == -500
    assert balance[Account.PAYOUT_IN_TRANSIT] == balance[Account.MERCHANT_HELD] == 0


positions = st.builds(
    lambda m, paid, held, transit, payable: MerchantPosition(
        merchant_id=m, settled_net_fen=paid + held + transit + payable, paid_fen=paid, held_fen=held,
        in_transit_fen=transit, payable_fen=payable, paid_ledger_fen=paid,
        settled_ledger_fen=paid + held + transit + payable),
    st.integers(1, 10**6), st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10**12),
    st.integers(-(10**12), 10**12),
)


@given(positions)
def test_a_consistent_position_has_no_problems(p: MerchantPosition) -> None:
    assert check_position(p) == []


SUM = ("merchant_payable", "merchant_held", "payout_in_transit")
PAID = ("bank_provisions",)
SETTLED = ("merchant_payable",)


@pytest.mark.parametrize(("field", "expected"), [
    ("settled_net_fen", [SUM, SETTLED]),
    ("paid_fen", [SUM, PAID]),
    ("held_fen", [SUM]),
    ("in_transit_fen", [SUM]),
    ("payable_fen", [SUM]),
    ("paid_ledger_fen", [PAID]),
    ("settled_ledger_fen", [SETTLED]),
])
@given(p=positions, delta=st.integers(-(10**9), 10**9).filter(bool))
def test_check_position_catches_each_kind_of_mismatch_and_names_the_accounts(
    field: str, expected: list[tuple[str, ...]], p: MerchantPosition, delta: int,
) -> None:
    bad = dataclasses.replace(p, **{field: getattr(p, field) + delta})
    problems = check_position(bad)
    m = p.merchant_id
    assert [pr.accounts for pr in problems] == [tuple(f"{a}:{m}" for a in accts) for accts in expected]
    assert all(f"merchant {m}" in pr.message for pr in problems)


@given(positions, st.integers(-(10**9), 10**9).filter(bool))
def test_the_invariant_problem_says_by_how_much_it_is_off(p: MerchantPosition, delta: int) -> None:
    bad = dataclasses.replace(p, held_fen=p.held_fen + delta)
    (problem,) = check_position(bad)
    assert f"off by {-delta} fen" in problem.message


def test_an_unbalanced_entry_problem_names_the_entry_its_accounts_and_the_total() -> None:
    pr = unbalanced(42, ["merchant_payable:7", "fee_income"], 3)
    assert pr.accounts == ("merchant_payable:7", "fee_income")
    assert "entry 42" in pr.message
    assert "3 fen" in pr.message
