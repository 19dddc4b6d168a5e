"""Payout statuses and the one transition table that governs them. Pure.

Nothing else in settleguard changes a payout's status: repositories check every update
against :data:`TRANSITIONS` (``sources(target)``) in the UPDATE's WHERE clause.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


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
# each status in Chinese, the words people read in the CLI, the console, the portal and evidence bundles
STATUS_ZH: Mapping[PayoutStatus, str] = {
    S.CREATED: "待出款", S.SUBMITTED: "已提交银行", S.SUCCEEDED: "出款成功", S.FAILED: "失败", S.RESULT_UNKNOWN: "结果未明",
    S.INQUIRY: "查询中", S.RETRY_SCHEDULED: "等待重试", S.HELD: "挂账", S.NEEDS_REVIEW: "待复核", S.SPLIT: "已拆分",
    S.RETURNED: "退票", S.RELEASED: "已放行待出款", S.CANCELLED: "已撤销",
}
TRANSITIONS: Mapping[PayoutStatus, frozenset[PayoutStatus]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.SUCCEEDED, S.FAILED, S.RESULT_UNKNOWN}),
    # No cancel while the outcome is unknown: the bank may have paid (inquire first).
    S.RESULT_UNKNOWN: frozenset({S.INQUIRY}),
    S.INQUIRY: frozenset({S.SUCCEEDED, S.FAILED, S.RESULT_UNKNOWN}),
    S.FAILED: frozenset({S.RETRY_SCHEDULED, S.HELD, S.NEEDS_REVIEW, S.SPLIT}),
    S.RETRY_SCHEDULED: frozenset({S.SUBMITTED, S.CANCELLED}),
    # Reconciliation found no booked debit for a payout recorded paid (ledger_only): inquire again, never resend.
    S.SUCCEEDED: frozenset({S.RETURNED, S.RESULT_UNKNOWN}),
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
# An operator may cancel a payout in these statuses; its money moves to merchant_held from
# wherever it is (ledger.cancel), so that nothing pays it again without a decision.
CANCELLABLE = frozenset(s for s, targets in TRANSITIONS.items() if S.CANCELLED in targets)


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
    """The key of a cycle's payout (EndToEndId, at most 35 characters)."""
    return f"SG{cycle_day_yyyymmdd}M{merchant_id}"


def instruction_key(payout_key: str, instruction_no: int) -> str:
    """The key sent to the bank for the payout's ``instruction_no``-th instruction.

    The first instruction uses the payout's key; a release after a hold pays the current card
    with a new instruction, under a new key (``R1``, ``R2``, ...), so the bank can never take
    it for a resend of the old one.
    """
    return payout_key if instruction_no == 0 else f"{payout_key}R{instruction_no}"


def part_key(payout_key: str, part_no: int) -> str:
    """The key of the ``part_no``-th part (1-based) of a split payout."""
    return f"{payout_key}S{part_no}"
