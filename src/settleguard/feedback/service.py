"""Use cases of guidance feedback: record a merchant's or a staff member's verdict on the guidance shown for a
payout (the console's payout and case pages, the portal's guidance groups), and the report per failure category
and rule (console /guidance-feedback, ``settleguard feedback report``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from settleguard.feedback import repository as repo
from settleguard.feedback.model import (
    MAX_REASON,
    SOURCES,
    FeedbackRefused,
    RuleStats,
    clean_reason,
    failures_of,
    rule_stats,
)
from settleguard.masking import mask_card_numbers
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.details import current_reason
from settleguard.payouts.model import PayoutStatus


def give(engine: Engine, payout_id: int, *, helpful: bool, reason: str, source: str, actor: str, now: datetime,
         merchant_scope: int | None = None) -> int:
    """Record feedback on the guidance of the payout's current reason (its category and rule are read here, not
    taken from the form). ``merchant_scope``: a merchant user's merchant; another merchant's payout is refused as
    if it did not exist. The reason is bounded and its card numbers masked before it is stored."""
    if source not in SOURCES:
        raise ValueError(source)
    # masked before and after the cut: a number cut in half at the end is never left in clear
    text = mask_card_numbers(clean_reason(mask_card_numbers(reason[: 4 * MAX_REASON])))
    with engine.begin() as conn:
        p = repo.payout(conn, payout_id)
        if p is None or (merchant_scope is not None and int(p["merchant_id"]) != merchant_scope):
            raise FeedbackRefused(f"出款 {payout_id} 不存在", f"no payout {payout_id}")
        found = current_reason(conn, payout_id, PayoutStatus(p["status"]), payout_repo.history(conn, payout_id)[1])
        if found is None:
            raise FeedbackRefused(f"出款 {payout_id} 当前没有处理建议，无法评价",
                                  f"payout {payout_id} shows no guidance to mark")
        return repo.add(conn, payout_id=payout_id, merchant_id=int(p["merchant_id"]), category=found.category.value,
                        rule_id=str(found.rule)[:64], helpful=helpful, reason=text, source=source, actor=actor,
                        now=now)


def report(engine: Engine) -> list[RuleStats]:
    with engine.connect() as conn:
        failures = failures_of(repo.first_failures(conn), repo.payments(conn))
        return rule_stats(failures, repo.counts(conn), repo.latest_reasons(conn))
