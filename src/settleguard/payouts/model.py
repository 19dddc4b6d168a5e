"""Payout statuses and the one transition table that governs them. Pure.

Nothing else in settleguard changes a payout's status: repositories check every update
against :data:`TRANSITIONS` (``sources(target)``) in the UPDATE's WHERE clause.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta


class PayoutStatus(enum.StrEnum):
    CREATED = "created"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RESULT_UNKNOWN = "result_unknown"
    INQUIRY = "inquiry"
    RETRY_SCHEDULED = "retry_scheduled"
    HELD = "held"
    NEEDS_REVIEW = "needs_review"
    SPLIT = "split"
    RETURNED = "returned"
    RELEASED = "released"
    CANCELLED = "cancelled"


S = PayoutStatus
TRANSITIONS: Mapping[PayoutStatus, frozenset[PayoutStatus]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.SUCCEEDED, S.FAILED, S.RESULT_UNKNOWN}),
    S.RESULT_UNKNOWN: frozenset({S.INQUIRY, S.CANCELLED}),
    S.INQUIRY: frozenset({S.SUCCEEDED, S.FAILED, S.RESULT_UNKNOWN}),
    S.FAILED: frozenset({S.RETRY_SCHEDULED, S.HELD, S.NEEDS_REVIEW, S.SPLIT}),
    S.RETRY_SCHEDULED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUCCEEDED: frozenset({S.RETURNED}),
    S.RETURNED: frozenset({S.HELD}),
    S.HELD: frozenset({S.RELEASED, S.CANCELLED}),
    S.RELEASED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.NEEDS_REVIEW: frozenset({S.HELD, S.RETRY_SCHEDULED, S.CANCELLED}),
    S.SPLIT: frozenset(),
    S.CANCELLED: frozenset(),
}
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# Money of a payout in these statuses sits in payout_in_transit.
IN_TRANSIT = frozenset({S.SUBMITTED, S.RESULT_UNKNOWN, S.INQUIRY, S.FAILED, S.RETRY_SCHEDULED, S.RELEASED,
                        S.NEEDS_REVIEW})
MAX_SEND_ATTEMPTS = 5


class IllegalTransition(ValueError):
    """A status change the table does not allow."""


def check_transition(current: PayoutStatus, target: PayoutStatus) -> PayoutStatus:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"payout cannot go from {current} to {target}")
    return target


def sources(target: PayoutStatus) -> frozenset[PayoutStatus]:
    """Every status from which ``target`` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def idempotency_key(cycle_day_yyyymmdd: str, merchant_id: int) -> str:
    """The key sent to the bank (EndToEndId, at most 35 characters) for a cycle's payout."""
    return f"SG{cycle_day_yyyymmdd}M{merchant_id}"


def retry_at(now: datetime, attempt: int, base: timedelta = timedelta(minutes=10),
             cap: timedelta = timedelta(hours=6)) -> datetime:
    """When to resend after the ``attempt``-th definite, retryable failure (exponential, capped).

    Jitter and bank business days come with the payout-lifecycle work; the delay here is
    deterministic so that runs are reproducible.
    """
    exponent = max(0, attempt - 1)
    if exponent >= (cap // base).bit_length():  # 2**exponent * base would pass the cap (or overflow)
        return now + cap
    delay: timedelta = min(cap, base * (2**exponent))
    return now + delay
