"""What a payout does with each answer, the retry schedule, splitting, and the circuit breaker
(payouts/policy.py, payouts/circuit.py). Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import Category
from settleguard.payouts.circuit import BreakerPolicy, Circuit, CircuitState
from settleguard.payouts.policy import (
    DEFAULT_POLICY,
    Action,
    RetryPolicy,
    on_business_day,
    plan,
    retry_at,
    split_amounts,
)
from settleguard.settlement.calendar import is_business_day

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=SH)  # a Friday
CATEGORIES = [c.value for c in Category]


def decide(category: str, *, attempt: int = 1, amount: int = 100_000, limit: int | None = None,
           succeeded: bool = False, unknown: bool = False, inquiry: bool = False, resend_safe: bool = False):  # type: ignore[no-untyped-def]
    return plan(succeeded=succeeded, unknown=unknown, category=category, attempt=attempt, amount_fen=amount,
                single_limit_fen=limit, key="SG20261120M7", now=NOW, inquiry=inquiry, resend_safe=resend_safe)


@pytest.mark.parametrize(("category", "action"), [
    ("card_info_error", Action.HOLD),
    ("card_status_abnormal", Action.HOLD),
    ("risk_or_compliance_block", Action.HOLD),
    ("system_or_network_fault", Action.RETRY),
    ("verification_failed", Action.RETRY),
    ("insufficient_funds", Action.RETRY),
    ("limit_exceeded", Action.RETRY),  # no known limit: next window
    ("transaction_data_error", Action.REVIEW),
    ("unknown", Action.REVIEW),
    ("result_unknown", Action.INQUIRE),
    ("duplicate", Action.INQUIRE),
])
def test_each_category_of_a_failed_send_has_its_decision(category: str, action: Action) -> None:
    assert decide(category).action is action


def test_every_taxonomy_category_has_a_decision() -> None:
    for category in CATEGORIES:
        assert decide(category).action in Action


@pytest.mark.parametrize("category", CATEGORIES)
def test_an_unknown_outcome_is_always_inquired_whatever_the_text_says(category: str) -> None:
    assert decide(category, unknown=True).action is Action.INQUIRE


@pytest.mark.parametrize("category", ["result_unknown", "duplicate"])
def test_processing_or_duplicate_never_leads_to_a_resend_without_an_inquiry(category: str) -> None:
    for attempt in range(1, 10):
        assert decide(category, attempt=attempt).action is Action.INQUIRE
        assert decide(category, attempt=attempt, limit=1).action is Action.INQUIRE


def test_an_inquiry_that_says_not_received_clears_a_resend() -> None:
    p = decide("result_unknown", inquiry=True, resend_safe=True)
    assert (p.action, p.category) == (Action.RETRY, "system_or_network_fault")


def test_an_inquiry_that_still_says_processing_goes_to_a_person() -> None:
    assert decide("result_unknown", inquiry=True).action is Action.REVIEW


def test_an_inquiry_that_replays_a_card_failure_holds() -> None:
    assert decide("card_info_error", inquiry=True).action is Action.HOLD


def test_a_success_is_confirmed() -> None:
    assert decide("unknown", succeeded=True).action is Action.CONFIRM


def test_retries_run_out_into_review() -> None:
    p = decide("system_or_network_fault", attempt=DEFAULT_POLICY.max_attempts)
    assert (p.action, p.exhausted) == (Action.REVIEW, True)
    assert decide("system_or_network_fault", attempt=DEFAULT_POLICY.max_attempts - 1).action is Action.RETRY


def test_insufficient_funds_alerts_treasury_and_waits_for_funding() -> None:
    p = decide("insufficient_funds")
    assert p.alert == "treasury"
    assert p.next_attempt_at == NOW + DEFAULT_POLICY.funding_delay


def test_a_limit_with_a_known_single_payment_limit_splits_exactly() -> None:
    p = decide("limit_exceeded", amount=12_345_678, limit=5_000_000)
    assert p.action is Action.SPLIT
    assert sum(p.parts) == 12_345_678
    assert max(p.parts) <= 5_000_000
    assert len(p.parts) == 3


def test_a_limit_below_the_amount_is_not_split_when_the_amount_fits() -> None:
    assert decide("limit_exceeded", amount=100, limit=5_000_000).action is Action.RETRY  # a daily limit


def test_a_daily_limit_is_retried_in_the_next_window_on_a_business_day() -> None:
    p = decide("limit_exceeded")  # Friday -> Monday 09:00
    assert p.next_attempt_at == datetime(2026, 11, 23, 9, 0, tzinfo=SH)


@given(st.integers(1, 10**12), st.integers(1, 1000))
def test_split_parts_sum_exactly_and_respect_the_limit(total: int, n_parts: int) -> None:
    limit = max(1, -(-total // n_parts))  # at most n_parts parts
    parts = split_amounts(total, limit)
    assert sum(parts) == total
    assert all(0 < x <= limit for x in parts)
    assert max(parts) - min(parts) <= 1
    assert len(parts) == -(-total // limit)


def test_split_refuses_non_positive_amounts() -> None:
    with pytest.raises(ValueError, match="positive"):
        split_amounts(0, 10)
    with pytest.raises(ValueError, match="positive"):
        split_amounts(10, 0)


@given(st.integers(1, 40), st.text(min_size=1, max_size=20))
def test_retry_delay_is_full_jitter_within_the_capped_exponential(attempt: int, key: str) -> None:
    now = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)  # Wednesday 11:00 in Shanghai
    at = retry_at(now, attempt, key)
    ceiling = min(DEFAULT_POLICY.cap, DEFAULT_POLICY.base * 2 ** min(attempt - 1, 20))
    assert now + DEFAULT_POLICY.min_delay <= at
    if is_business_day((now + ceiling).astimezone(SH).date()):
        assert at <= now + ceiling
    assert at == retry_at(now, attempt, key)  # reproducible


def test_jitter_spreads_retries_of_many_payouts() -> None:
    delays = {retry_at(NOW, 3, f"SG20261120M{i}") - NOW for i in range(200)}
    assert len(delays) > 150
    assert min(delays) < timedelta(minutes=10) < max(delays) <= timedelta(minutes=40)


def test_a_retry_falling_on_a_holiday_moves_to_the_next_business_day_at_opening() -> None:
    policy = RetryPolicy(base=timedelta(days=2), cap=timedelta(days=2), min_delay=timedelta(days=1, hours=1))
    friday_evening = datetime(2026, 11, 20, 20, 0, tzinfo=SH)
    at = retry_at(friday_evening, 1, "k", policy).astimezone(SH)
    assert at.date() == date(2026, 11, 23)
    assert at.hour == policy.opens_at


def test_national_day_holidays_are_skipped() -> None:
    at = on_business_day(datetime(2026, 10, 2, 12, 0, tzinfo=SH)).astimezone(SH)
    assert at.date() > date(2026, 10, 2)
    assert is_business_day(at.date())


# --- circuit breaker ----------------------------------------------------------------------------

BP = BreakerPolicy(threshold=3, window=timedelta(minutes=5), cool_down=timedelta(minutes=10))


def test_faults_within_the_window_open_the_circuit() -> None:
    c = Circuit("ICBC")
    for i in range(3):
        assert c.allows(NOW, BP) == -1
        c = c.record(i, True, NOW + timedelta(minutes=i), BP)
    assert c.state is CircuitState.OPEN
    assert c.allows(NOW + timedelta(minutes=5), BP) == 0


def test_faults_spread_beyond_the_window_do_not_open_it() -> None:
    c = Circuit("ICBC")
    for i in range(10):
        c = c.record(i, True, NOW + timedelta(minutes=6 * i), BP)
    assert c.state is CircuitState.CLOSED


def test_card_problems_do_not_count_against_the_bank() -> None:
    c = Circuit("ICBC")
    for i in range(50):
        c = c.record(i, False, NOW, BP)
    assert c == Circuit("ICBC")


def test_after_the_cool_down_one_probe_closes_the_circuit_on_success() -> None:
    c = Circuit("ICBC", CircuitState.OPEN, 3, NOW, NOW)
    assert c.allows(NOW + timedelta(minutes=9), BP) == 0
    assert c.allows(NOW + timedelta(minutes=10), BP) == 1
    c = c.probe(42, NOW + timedelta(minutes=10))
    assert c.allows(NOW + timedelta(minutes=10), BP) == 0  # only the probe is in flight
    assert c.record(7, False, NOW, BP) == c  # another payout's answer does not decide
    assert c.record(42, False, NOW + timedelta(minutes=11), BP) == Circuit("ICBC")


def test_a_probe_that_never_answers_is_given_up_after_a_cool_down_and_another_payout_probes() -> None:
    sent = NOW + timedelta(minutes=10)
    c = Circuit("ICBC", CircuitState.OPEN, 3, NOW, NOW).probe(42, sent)
    assert c.allows(sent + timedelta(minutes=9, seconds=59), BP) == 0
    assert c.allows(sent + timedelta(minutes=10), BP) == 1
    c = c.probe(43, sent + timedelta(minutes=10))
    assert c.record(42, True, sent + timedelta(minutes=11), BP) == c  # the lost probe's late answer
    assert c.record(43, False, sent + timedelta(minutes=11), BP) == Circuit("ICBC")


def test_a_failed_probe_opens_the_circuit_for_another_cool_down() -> None:
    c = Circuit("ICBC", CircuitState.OPEN, 3, NOW, NOW).probe(42, NOW + timedelta(minutes=10))
    later = NOW + timedelta(minutes=11)
    c = c.record(42, True, later, BP)
    assert (c.state, c.opened_at) == (CircuitState.OPEN, later)
    assert c.allows(later + timedelta(minutes=9), BP) == 0


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 600)), max_size=60))
def test_the_breaker_only_ever_takes_known_states_and_opens_only_on_faults(events: list[tuple[bool, int]]) -> None:
    c = Circuit("ICBC")
    t = NOW
    for i, (fault, dt) in enumerate(events):
        t += timedelta(seconds=dt)
        if c.allows(t, BP) == 1:
            c = c.probe(i, t)
        before = c
        c = c.record(i, fault, t, BP)
        assert c.state in CircuitState
        if c.state is CircuitState.OPEN and before.state is not CircuitState.OPEN:
            assert fault
