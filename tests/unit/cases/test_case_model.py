"""Case statuses, transitions and SLA computation (cases/model.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.cases import model as m
from settleguard.cases.model import CaseStatus as C
from settleguard.cases.model import Priority as P
from settleguard.settlement.calendar import is_business_day

BEIJING = "Asia/Shanghai"  # the configured business zone (config.Settings.timezone), passed in
SH = ZoneInfo(BEIJING)


def test_closed_is_final_and_only_reached_from_resolved() -> None:
    assert m.TRANSITIONS[C.CLOSED] == frozenset()
    assert m.sources(C.CLOSED) == {C.RESOLVED}
    for s in (C.OPEN, C.WAITING_BANK, C.WAITING_MERCHANT):
        with pytest.raises(m.IllegalCaseTransition):
            m.check_transition(s, C.CLOSED)


def test_every_status_can_reach_closed_through_resolved() -> None:
    for s in C:
        if s is C.CLOSED:
            continue
        seen, todo = {s}, [s]
        while todo:
            for nxt in m.TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert C.CLOSED in seen, s


def test_waiting_statuses_and_reopen() -> None:
    assert m.check_transition(C.OPEN, C.WAITING_BANK) is C.WAITING_BANK
    assert m.check_transition(C.WAITING_BANK, C.WAITING_MERCHANT) is C.WAITING_MERCHANT
    assert m.check_transition(C.RESOLVED, C.OPEN) is C.OPEN
    with pytest.raises(m.IllegalCaseTransition):
        m.check_transition(C.CLOSED, C.OPEN)
    with pytest.raises(m.IllegalCaseTransition):
        m.check_transition(C.OPEN, C.OPEN)


def test_risk_p1_is_four_hours_around_the_clock() -> None:
    sat_night = datetime(2026, 11, 21, 22, 0, tzinfo=SH)  # Saturday
    assert m.sla_due(sat_night, m.RISK, P.P1, BEIJING) == sat_night + timedelta(hours=4)


def test_returns_p2_is_one_business_day() -> None:
    fri = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
    assert m.sla_due(fri, m.RETURNED, P.P2, BEIJING) == datetime(2026, 11, 23, 10, 0, tzinfo=SH)  # Monday
    wed = datetime(2026, 11, 18, 16, 30, tzinfo=SH)
    assert m.sla_due(wed, m.RETURNED, P.P2, BEIJING) == datetime(2026, 11, 19, 16, 30, tzinfo=SH)


def test_business_days_skip_national_day_and_count_make_up_saturday() -> None:
    # 2026: National Day holiday 1-7 Oct; Saturday 10 Oct is a make-up workday (调休).
    sep30 = datetime(2026, 9, 30, 9, 0, tzinfo=SH)
    assert m.add_business_days(sep30, 1, BEIJING) == datetime(2026, 10, 8, 9, 0, tzinfo=SH)
    assert is_business_day(date(2026, 10, 10))
    oct9 = datetime(2026, 10, 9, 9, 0, tzinfo=SH)
    assert m.add_business_days(oct9, 1, BEIJING) == datetime(2026, 10, 10, 9, 0, tzinfo=SH)


def test_priority_fallback_and_category_override() -> None:
    assert m.sla_for("card_info_error", P.P3) == m.Sla(business_days=2)
    assert m.sla_for("card_info_error", P.P4) == m.Sla(business_days=5)
    assert m.sla_for(m.RISK, P.P2) == m.Sla(hours=8)
    assert m.sla_for(m.REPEATED_FAILURES, P.P3) == m.Sla(business_days=2)


def test_due_time_is_returned_in_the_callers_zone_and_naive_is_refused() -> None:
    utc = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Shanghai
    due = m.sla_due(utc, m.NEEDS_REVIEW, P.P2, BEIJING)
    assert due.tzinfo is UTC
    assert due == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        m.add_business_days(datetime(2026, 11, 20, 10, 0), 1, BEIJING)  # noqa: DTZ001 - naive on purpose


def test_overdue_only_while_active() -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
    past = now - timedelta(minutes=1)
    assert m.is_overdue(C.WAITING_BANK, past, now)
    assert not m.is_overdue(C.RESOLVED, past, now)
    assert not m.is_overdue(C.OPEN, now + timedelta(minutes=1), now)


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)),  # noqa: DTZ001
       st.integers(min_value=1, max_value=10))
def test_business_day_due_lands_on_a_business_day_after_exactly_n_of_them(naive: datetime, n: int) -> None:
    start = naive.replace(tzinfo=SH)
    due = m.add_business_days(start, n, BEIJING)
    local = due.astimezone(SH)
    assert is_business_day(local.date())
    assert local.time() == start.time()
    counted = sum(1 for k in range(1, (local.date() - start.date()).days + 1)
                  if is_business_day(start.date() + timedelta(days=k)))
    assert counted == n


def test_dedupe_key_is_bounded() -> None:
    assert m.dedupe_key("returned", "P1", "I0") == "returned:P1:I0"
    assert len(m.dedupe_key("x", "y" * 300)) == 128
