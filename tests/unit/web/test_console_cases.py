"""Pure helpers of the console's case actions (web/console/routes_cases.py): the status changes a case page
offers, who a case may be assigned to, and the contact time typed on the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.access.model import Role
from settleguard.access.repository import UserRow
from settleguard.cases.model import TRANSITIONS, CaseStatus, check_transition
from settleguard.cases.service import CaseActionRefused, may_be_assigned
from settleguard.web.console.routes_cases import allowed_targets, contact_time

SH = ZoneInfo("Asia/Shanghai")
NAIVE = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))  # noqa: DTZ001 (typed times)


@pytest.mark.parametrize("status", list(CaseStatus))
def test_the_page_offers_exactly_the_transitions_of_the_model(status: CaseStatus) -> None:
    offered = allowed_targets(str(status))
    assert set(offered) == {str(s) for s in TRANSITIONS[status]}
    assert len(offered) == len(set(offered))
    for target in offered:
        check_transition(status, CaseStatus(target))
    assert (offered == []) is (status is CaseStatus.CLOSED)


def _user(role: Role, disabled: bool = False) -> UserRow:
    return UserRow(1, "someone", str(role), 7 if role is Role.MERCHANT else None, None, "", disabled,
                   datetime(2026, 11, 1, tzinfo=UTC))


@pytest.mark.parametrize(("user", "ok"), [
    (_user(Role.OPERATOR), True), (_user(Role.SUPPORT), True), (_user(Role.AUDITOR), False),
    (_user(Role.MERCHANT), False), (_user(Role.OPERATOR, disabled=True), False), (None, False)])
def test_cases_go_to_enabled_operators_and_support_only(user: UserRow | None, ok: bool) -> None:
    assert may_be_assigned(user) is ok


@given(NAIVE.map(lambda d: d.replace(second=0, microsecond=0)))
def test_a_typed_contact_time_is_china_time(local: datetime) -> None:
    got = contact_time(local.isoformat(timespec="minutes"))
    assert got is not None
    assert got.utcoffset() == SH.utcoffset(local)
    assert got.replace(tzinfo=None) == local


@given(NAIVE, st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_a_contact_time_with_an_offset_keeps_it(at: datetime, minutes: int) -> None:
    aware = at.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    assert contact_time(aware.isoformat()) == aware


@pytest.mark.parametrize("text", ["", "   "])
def test_no_contact_time_means_now(text: str) -> None:
    assert contact_time(text) is None


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T10:00", "10:30", "2026/11/20 10:30"])
def test_what_is_not_a_time_is_refused_in_both_languages(text: str) -> None:
    with pytest.raises(CaseActionRefused) as exc:
        contact_time(text)
    assert "联系时间" in exc.value.zh
    assert "contact time" in exc.value.en
