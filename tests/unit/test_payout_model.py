"""The payout transition table and idempotency keys (payouts/model.py); the retry schedule is in
test_payout_policy.py."""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from settleguard.payouts.model import (
    FINAL,
    IN_TRANSIT,
    TRANSITIONS,
    IllegalTransition,
    PayoutStatus,
    check_transition,
    idempotency_key,
    sources,
)

S = PayoutStatus
ALL = list(PayoutStatus)
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def reachable_from(start: PayoutStatus) -> set[PayoutStatus]:
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in TRANSITIONS[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_status_has_a_row_in_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(PayoutStatus)


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_only_the_transitions_in_the_table_are_allowed(current: PayoutStatus, target: PayoutStatus) -> None:
    if target in TRANSITIONS[current]:
        assert check_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition, match=f"from {current} to {target}"):
            check_transition(current, target)


@pytest.mark.parametrize("final", sorted(FINAL))
def test_final_statuses_have_no_exits(final: PayoutStatus) -> None:
    assert TRANSITIONS[final] == frozenset()
    for target in ALL:
        with pytest.raises(IllegalTransition):
            check_transition(final, target)


def test_split_and_cancelled_are_the_final_statuses() -> None:
    assert FINAL == {S.SPLIT, S.CANCELLED}


def test_every_status_is_reachable_from_created() -> None:
    assert reachable_from(S.CREATED) == set(PayoutStatus)


@pytest.mark.parametrize("status", ALL)
def test_a_final_status_is_reachable_from_every_status(status: PayoutStatus) -> None:
    assert reachable_from(status) & FINAL


@pytest.mark.parametrize("target", ALL)
def test_sources_is_the_inverse_of_the_transition_table(target: PayoutStatus) -> None:
    assert sources(target) == {s for s in ALL if target in TRANSITIONS[s]}
    for s in sources(target):
        check_transition(s, target)


def test_created_has_no_sources_so_nothing_turns_back_into_a_fresh_payout() -> None:
    assert sources(S.CREATED) == frozenset()


# The rules that keep money safe (architecture.md), stated independently of the table.
@pytest.mark.parametrize(("current", "target", "why"), [
    (S.RESULT_UNKNOWN, S.SUBMITTED, "an unknown outcome must be inquired about, never resent blind"),
    (S.RESULT_UNKNOWN, S.RETRY_SCHEDULED, "an unknown outcome must be inquired about, never retried blind"),
    (S.RESULT_UNKNOWN, S.CANCELLED, "the bank may have paid: inquire before anyone cancels"),
    (S.INQUIRY, S.CANCELLED, "the bank may have paid: inquire before anyone cancels"),
    (S.SUCCEEDED, S.SUBMITTED, "a paid payout is never sent again"),
    (S.SUCCEEDED, S.FAILED, "success is only undone by a bank return"),
    (S.HELD, S.SUBMITTED, "held funds go out only after an explicit release"),
    (S.CREATED, S.SUCCEEDED, "nothing is paid without being submitted"),
    (S.FAILED, S.SUBMITTED, "a failure is resent only through a scheduled retry or a release"),
    (S.INQUIRY, S.SUBMITTED, "an inquiry must answer before anything is resent"),
])
def test_money_safety_rules_hold(current: PayoutStatus, target: PayoutStatus, why: str) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


def test_a_status_whose_money_is_with_the_bank_or_held_is_not_counted_in_transit() -> None:
    assert not IN_TRANSIT & {S.CREATED, S.SUCCEEDED, S.HELD, S.RETURNED, S.CANCELLED, S.SPLIT}


class PayoutWalk(RuleBasedStateMachine):
    """A random walk over attempted status changes: only the table's transitions succeed."""

    def __init__(self) -> None:
        super().__init__()
        self.status = S.CREATED
        self.path = [S.CREATED]

    @rule(to=st.sampled_from(ALL))
    def attempt(self, to: PayoutStatus) -> None:
        before = self.status
        if to in TRANSITIONS[before]:
            self.status = check_transition(before, to)
            self.path.append(to)
        else:
            with pytest.raises(IllegalTransition):
                check_transition(before, to)
            assert self.status is before

    @rule()
    def take_an_allowed_step(self) -> None:
        options = sorted(TRANSITIONS[self.status])
        if options:
            self.attempt(options[len(self.path) % len(options)])

    @invariant()
    def the_path_only_uses_allowed_steps(self) -> None:
        for a, b in zip(self.path, self.path[1:], strict=False):
            assert b in TRANSITIONS[a]

    @invariant()
    def a_final_status_is_never_left(self) -> None:
        finals = [i for i, s in enumerate(self.path) if s in FINAL]
        if finals:
            assert finals[0] == len(self.path) - 1


TestPayoutWalk = PayoutWalk.TestCase
TestPayoutWalk.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)


def test_random_walks_over_the_table_visit_every_status() -> None:
    rng = random.Random(20261120)
    visited: set[PayoutStatus] = set()
    for _ in range(400):
        s = S.CREATED
        visited.add(s)
        for _ in range(20):
            options = sorted(TRANSITIONS[s])
            if not options:
                break
            s = check_transition(s, rng.choice(options))
            visited.add(s)
    assert visited == set(PayoutStatus)


days = st.dates(min_value=date(2000, 1, 1), max_value=date(9999, 12, 31))
merchant_ids = st.integers(1, 2**31 - 1)  # merchants.id is a 32-bit INTEGER


@given(days, merchant_ids)
def test_idempotency_keys_fit_an_end_to_end_id(day: date, merchant_id: int) -> None:
    key = idempotency_key(day.strftime("%Y%m%d"), merchant_id)
    assert len(key) <= 35
    assert key.isascii()
    assert key.isalnum()


@given(days, merchant_ids)
def test_idempotency_key_has_the_settlement_sql_layout(day: date, merchant_id: int) -> None:
    # settlement/engine.py builds it in SQL as 'SG' || yyyymmdd || 'M' || CAST(merchant_id AS VARCHAR).
    assert idempotency_key(day.strftime("%Y%m%d"), merchant_id) == f"SG{day:%Y%m%d}M{merchant_id}"


@given(st.tuples(days, merchant_ids), st.tuples(days, merchant_ids))
def test_different_cycles_or_merchants_never_share_a_key(a: tuple[date, int], b: tuple[date, int]) -> None:
    ka = idempotency_key(a[0].strftime("%Y%m%d"), a[1])
    kb = idempotency_key(b[0].strftime("%Y%m%d"), b[1])
    assert (ka == kb) == (a == b)
