"""What to do with a bank's answer: one pure decision per outcome and diagnosis.

The diagnosis (settleguard.diagnosis) names the failure's category; this module turns the
category, the attempt number and the payout's amount into a :class:`Plan`:

=========================  =================================================================
category                   plan
=========================  =================================================================
(bank said succeeded)      confirm
result_unknown, duplicate  inquire: result_unknown, no resend until an inquiry says failed
system_or_network_fault    retry: exponential backoff, full jitter, cap, bank business days;
                           after ``max_attempts`` sends, needs_review
verification_failed        retry likewise (the channel must sign in again) and alert ops
insufficient_funds         retry after ``funding_delay`` and alert treasury (备付金不足)
limit_exceeded             split into parts no larger than the channel's single-payment limit
                           when it is known and smaller than the amount; else retry in the
                           next window (next bank business day)
card_info_error,           hold (挂账): the merchant must fix the card; released on re-binding
card_status_abnormal,
risk_or_compliance_block   hold, never retried automatically
transaction_data_error,    needs_review
unknown
=========================  =================================================================

A bank that says "failed" with a code meaning "duplicate" or "processing" is *not* taken as a
failure: the plan is inquire, because resending could pay twice.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from settleguard.config import DEFAULT_TIMEZONE
from settleguard.settlement.calendar import business_day_on_or_after, is_business_day


class Action(enum.StrEnum):
    CONFIRM = "confirm"
    INQUIRE = "inquire"
    RETRY = "retry"
    HOLD = "hold"
    REVIEW = "review"
    SPLIT = "split"


INQUIRE_CATEGORIES = frozenset({"result_unknown", "duplicate"})
HOLD_CATEGORIES = frozenset({"card_info_error", "card_status_abnormal", "risk_or_compliance_block"})
RETRY_CATEGORIES = frozenset({"system_or_network_fault", "verification_failed", "insufficient_funds",
                              "limit_exceeded"})
# Held for these reasons, a payout is released by a re-bound card or a restored card status;
# a risk hold needs an operator.
CARD_HOLDS = frozenset({"card_info_error", "card_status_abnormal", "no_card"})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for retryable failures.

    Attributes:
        base: delay ceiling of the first retry; doubles per attempt up to ``cap``.
        cap: largest delay ceiling.
        min_delay: never sooner than this (full jitter can draw 0).
        max_attempts: sends per instruction before the payout goes to needs_review.
        funding_delay: wait after "insufficient funds" for treasury to top up the account.
        opens_at: local hour at which a retry pushed off a non-business day is due.
        timezone: the banks' time zone.
    """

    base: timedelta = timedelta(minutes=10)
    cap: timedelta = timedelta(hours=6)
    min_delay: timedelta = timedelta(seconds=30)
    max_attempts: int = 5
    funding_delay: timedelta = timedelta(minutes=30)
    opens_at: int = 9
    timezone: str = DEFAULT_TIMEZONE  # the composition root passes config.Settings.timezone


DEFAULT_POLICY = RetryPolicy()


def _unit(key: str, attempt: int) -> float:
    """A number in [0, 1) fixed by the key and attempt: reproducible jitter."""
    digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def on_business_day(at: datetime, policy: RetryPolicy = DEFAULT_POLICY) -> datetime:
    """``at`` if it falls on a bank business day (local time), else the next one at ``opens_at``."""
    tz = ZoneInfo(policy.timezone)
    local = at.astimezone(tz)
    if is_business_day(local.date()):
        return at
    day = business_day_on_or_after(local.date())
    return datetime.combine(day, time(policy.opens_at), tz).astimezone(at.tzinfo)


def retry_at(now: datetime, attempt: int, key: str, policy: RetryPolicy = DEFAULT_POLICY) -> datetime:
    """When to resend after the ``attempt``-th failed send (1-based).

    Full jitter: a delay drawn uniformly from [0, min(cap, base * 2**(attempt-1))), at least
    ``min_delay``, drawn from the key and attempt so that runs are reproducible; moved to the
    next bank business day when it would fall on a weekend or holiday.
    """
    exponent = max(0, attempt - 1)
    if exponent >= (policy.cap // policy.base).bit_length():
        ceiling = policy.cap
    else:
        ceiling = min(policy.cap, policy.base * (2**exponent))
    delay = max(policy.min_delay, ceiling * _unit(key, attempt))
    return on_business_day(now + delay, policy)


def split_amounts(total_fen: int, limit_fen: int) -> tuple[int, ...]:
    """Parts no larger than ``limit_fen`` that sum exactly to ``total_fen``, as even as possible."""
    if total_fen <= 0 or limit_fen <= 0:
        raise ValueError("total and limit must be positive")
    n = -(-total_fen // limit_fen)
    q, r = divmod(total_fen, n)
    return tuple(q + 1 if i < r else q for i in range(n))


@dataclass(frozen=True)
class Plan:
    """What to do with one answer.

    Attributes:
        action: see :class:`Action`.
        category: the diagnosis category the plan was made from.
        next_attempt_at: for retry.
        parts: for split, the part amounts.
        alert: for insufficient funds and sign-in failures, who to alert ("treasury", "ops").
        alert_day: the banks' local calendar day of the alert (alerts are deduplicated per
            local day; ``now`` is in UTC, whose date differs before 08:00 in Shanghai).
        exhausted: a retry that ran out of attempts (the plan is then review).
    """

    action: Action
    category: str
    next_attempt_at: datetime | None = None
    parts: tuple[int, ...] = ()
    alert: str | None = None
    exhausted: bool = False
    alert_day: date | None = None


def plan(*, succeeded: bool, unknown: bool, category: str, attempt: int, amount_fen: int,
         single_limit_fen: int | None, key: str, now: datetime, inquiry: bool = False,
         resend_safe: bool = False, policy: RetryPolicy = DEFAULT_POLICY) -> Plan:
    """Decide what to do with an answer (see the module docstring).

    ``attempt`` is the number of sends of the current instruction so far (the one answered
    included); ``single_limit_fen`` is the channel's single-payment limit, if known.
    ``inquiry`` says the answer is to a status inquiry; ``resend_safe`` that the channel
    states the instruction was definitely not executed (e.g. Allinpay 1002 "无法查询到该交易，
    可以重发" to an inquiry). Only an inquiry's definite answer can clear a resend: a send
    answered "busy" or "duplicate" is inquired about first.
    """
    if succeeded:
        return Plan(Action.CONFIRM, category)
    if unknown:
        return Plan(Action.INQUIRE, category)
    if inquiry and resend_safe:
        category = "system_or_network_fault" if category in INQUIRE_CATEGORIES | {"unknown",
                                                                                "transaction_data_error"} else category
    elif category in INQUIRE_CATEGORIES:
        # A failed inquiry that still reads "processing" or "duplicate" is for a person to look at.
        return Plan(Action.REVIEW if inquiry else Action.INQUIRE, category)
    if category in HOLD_CATEGORIES:
        return Plan(Action.HOLD, category)
    if category == "limit_exceeded" and single_limit_fen is not None and amount_fen > single_limit_fen:
        return Plan(Action.SPLIT, category, parts=split_amounts(amount_fen, single_limit_fen))
    if category not in RETRY_CATEGORIES:
        return Plan(Action.REVIEW, category)
    if attempt >= policy.max_attempts:
        return Plan(Action.REVIEW, category, exhausted=True)
    alert = {"insufficient_funds": "treasury", "verification_failed": "ops"}.get(category)
    if category == "insufficient_funds":
        at = on_business_day(now + policy.funding_delay, policy)
    elif category == "limit_exceeded":  # a daily limit: try again in the next window
        tz = ZoneInfo(policy.timezone)
        tomorrow = now.astimezone(tz).date() + timedelta(days=1)
        at = on_business_day(datetime.combine(tomorrow, time(policy.opens_at), tz), policy)
    else:
        at = retry_at(now, attempt, key, policy)
    alert_day = now.astimezone(ZoneInfo(policy.timezone)).date() if alert else None
    return Plan(Action.RETRY, category, next_attempt_at=at, alert=alert, alert_day=alert_day)
