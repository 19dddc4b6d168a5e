"""web/model.py: who may do what (roles x actions x ownership), user and password checks, the login
rate limit's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.access.model import (
    PERMISSIONS,
    Action,
    Principal,
    Role,
    Verdict,
    decide,
    may,
    password_problems,
    retry_after,
    user_problems,
)

A, R = Action, Role
# The roles as issue 7 and docs/api.md state them, written out independently of PERMISSIONS.
EXPECTED = {
    R.OPERATOR: set(Action),
    R.SUPPORT: {A.READ, A.DIAGNOSE, A.METRICS, A.CASE_READ, A.CARD_CHECK, A.CASE_WORK, A.CASE_NOTE, A.RECON_READ,
                A.GUIDANCE_FEEDBACK},
    R.AUDITOR: {A.READ, A.DIAGNOSE, A.METRICS, A.CASE_READ, A.CARD_CHECK, A.RECON_READ},
    R.MERCHANT: {A.READ, A.CARD_CHECK, A.CARD_BIND, A.GUIDANCE_FEEDBACK},
}
WRITES = {A.CASE_WORK, A.CASE_NOTE, A.CARD_BIND, A.PAYOUT_RELEASE, A.PAYOUT_CANCEL, A.GUIDANCE_FEEDBACK}
merchant_ids = st.integers(min_value=1, max_value=50)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_the_permission_table_is_the_documented_one(role: Role, action: Action) -> None:
    assert may(role, action) is (action in EXPECTED[role])


@given(role=st.sampled_from([R.OPERATOR, R.SUPPORT, R.AUDITOR]), action=st.sampled_from(list(Action)),
       owner=st.none() | merchant_ids, scoped=st.booleans())
def test_staff_are_allowed_or_denied_by_role_alone_and_never_hidden_from(role: Role, action: Action,
                                                                         owner: int | None, scoped: bool) -> None:
    verdict = decide(role, action, user_merchant_id=None, owner_merchant_id=owner, scoped=scoped)
    assert verdict is (Verdict.ALLOW if action in EXPECTED[role] else Verdict.DENY)


@given(action=st.sampled_from(list(Action)), mine=merchant_ids, owner=st.none() | merchant_ids,
       scoped=st.booleans())
def test_a_merchant_user_reads_its_own_merchant_only_and_others_are_hidden(action: Action, mine: int,
                                                                          owner: int | None, scoped: bool) -> None:
    verdict = decide(R.MERCHANT, action, user_merchant_id=mine, owner_merchant_id=owner, scoped=scoped)
    if action not in EXPECTED[R.MERCHANT]:
        assert verdict is Verdict.DENY  # 403 whatever the resource: no existence is revealed
    elif scoped and owner != mine:
        assert verdict is Verdict.HIDE  # another merchant's, or none: 404 alike
    else:
        assert verdict is Verdict.ALLOW


@given(action=st.sampled_from(list(Action)), owner=st.none() | merchant_ids, scoped=st.booleans())
def test_a_merchant_user_without_a_merchant_is_refused_everything(action: Action, owner: int | None,
                                                                 scoped: bool) -> None:
    assert decide(R.MERCHANT, action, user_merchant_id=None, owner_merchant_id=owner, scoped=scoped) is Verdict.DENY


def test_auditors_write_nothing_and_only_operators_move_money() -> None:
    assert not WRITES & PERMISSIONS[R.AUDITOR]
    money = {A.PAYOUT_RELEASE, A.PAYOUT_CANCEL}
    assert [r for r in Role if money & PERMISSIONS[r]] == [R.OPERATOR]


@given(role=st.sampled_from(list(Role)), mid=merchant_ids)
def test_only_merchant_users_have_a_listing_scope(role: Role, mid: int) -> None:
    p = Principal(1, "u", role, mid if role is R.MERCHANT else None, "token")
    assert p.merchant_scope == (mid if role is R.MERCHANT else None)


@given(role=st.sampled_from(list(Role)), mid=merchant_ids, asked=st.one_of(st.none(), merchant_ids))
def test_a_listing_shows_staff_what_they_ask_and_a_merchant_user_only_its_own(role: Role, mid: int,
                                                                             asked: int | None) -> None:
    p = Principal(1, "u", role, mid if role is R.MERCHANT else None, "token")
    visible, merchant = p.list_scope(asked)
    if role is not R.MERCHANT:
        assert (visible, merchant) == (True, asked)
    else:
        assert merchant == mid
        assert visible == (asked is None or asked == mid)


@pytest.mark.parametrize(("username", "role", "has_merchant", "ok"), [
    ("alice", R.OPERATOR, False, True),
    ("shop.8981000@pos", R.MERCHANT, True, True),
    ("alice", R.MERCHANT, False, False),  # a merchant user needs its merchant
    ("alice", R.SUPPORT, True, False),  # staff belong to no merchant
    ("al", R.OPERATOR, False, False),  # too short
    ("-alice", R.OPERATOR, False, False),
    ("ali ce", R.OPERATOR, False, False),
    ("a" * 65, R.OPERATOR, False, False),
])
def test_user_checks(username: str, role: Role, has_merchant: bool, ok: bool) -> None:
    problems = user_problems(username, role, has_merchant)
    assert (problems == []) is ok
    assert all(zh and en for zh, en in problems)


@pytest.mark.parametrize(("password", "ok"), [
    ("correct-horse", True), ("short", False), ("alice12345", False), (" padded-password ", False),
])
def test_password_checks(password: str, ok: bool) -> None:
    assert (password_problems(password, "alice12345") == []) is ok


NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


@given(ages=st.lists(st.integers(min_value=0, max_value=3600), max_size=12), limit=st.integers(1, 6))
def test_retry_after_blocks_exactly_while_limit_failures_are_inside_the_window(ages: list[int], limit: int) -> None:
    recent = sorted((NOW - timedelta(seconds=a) for a in ages), reverse=True)
    wait = retry_after(recent, limit, WINDOW, NOW)
    inside = [at for at in recent if at > NOW - WINDOW]
    assert (wait is None) is (len(inside) < limit)
    if wait is not None:
        assert 1 <= wait <= WINDOW.total_seconds()
        assert retry_after(recent, limit, WINDOW, NOW + timedelta(seconds=wait)) is None
        if wait > 1:
            assert retry_after(recent, limit, WINDOW, NOW + timedelta(seconds=wait - 1)) is not None


def test_five_failures_within_fifteen_minutes_block_until_the_oldest_leaves() -> None:
    recent = [NOW - timedelta(minutes=m) for m in (0, 1, 2, 3, 10)]
    assert retry_after(recent, 5, WINDOW, NOW) == 5 * 60
    assert retry_after(recent[:4], 5, WINDOW, NOW) is None
