"""Feedback on a diagnosis's guidance and, per failure category and rule, what followed: how often the guidance was
marked helpful, how often the payout was paid after failing under the rule (a fix), and how long recovery took.
Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

MAX_REASON = 500  # characters of a reason kept (after masking card numbers)
SOURCES = ("merchant", "staff")


class FeedbackRefused(Exception):
    """Feedback that cannot be recorded (no such payout, no guidance shown for it): zh and en."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def clean_reason(text: str) -> str:
    """A reason as typed, bounded: control characters dropped (tab and newline become spaces), whitespace
    collapsed, cut to :data:`MAX_REASON` characters. Card numbers are masked by the caller (masking.py)."""
    kept = "".join(" " if c in "\t\r\n" else c for c in text[: MAX_REASON * 4] if c in "\t\r\n" or c.isprintable())
    return " ".join(kept.split())[:MAX_REASON]


@dataclass(frozen=True)
class Failure:
    """A payout that failed under a rule: when it first did, and when (if ever) it was paid after that."""

    payout_id: int
    category: str
    rule_id: str
    failed_at: datetime
    paid_at: datetime | None

    @property
    def fixed(self) -> bool:
        return self.paid_at is not None and self.paid_at >= self.failed_at

    @property
    def recovery_hours(self) -> float | None:
        if not self.fixed or self.paid_at is None:
            return None
        return (self.paid_at - self.failed_at).total_seconds() / 3600


@dataclass(frozen=True)
class RuleStats:
    category: str
    rule_id: str
    feedback: int
    helpful: int
    failed_payouts: int
    fixed: int
    median_recovery_hours: float | None
    reasons: tuple[str, ...]  # the latest reasons given (masked), newest first

    @property
    def helpful_share(self) -> float | None:
        return None if not self.feedback else self.helpful / self.feedback

    @property
    def fixed_share(self) -> float | None:
        return None if not self.failed_payouts else self.fixed / self.failed_payouts

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "rule_id": self.rule_id, "feedback": self.feedback, "helpful": self.helpful,
                "not_helpful": self.feedback - self.helpful, "helpful_share": self.helpful_share,
                "failed_payouts": self.failed_payouts, "fixed": self.fixed, "fixed_share": self.fixed_share,
                "median_recovery_hours": self.median_recovery_hours, "reasons": list(self.reasons)}


def failures_of(first_failures: Iterable[tuple[int, str, str, datetime]],
                successes: dict[int, list[datetime]]) -> list[Failure]:
    """``first_failures``: (payout, category, rule, first failure under it); ``successes``: payout -> the times it
    (or one of its split parts) was paid. The fix is the first payment at or after the failure."""
    out = []
    for pid, category, rule, at in first_failures:
        after = [s for s in successes.get(pid, []) if s >= at]
        out.append(Failure(pid, category, rule, at, min(after) if after else None))
    return out


def rule_stats(failures: Iterable[Failure], feedback: Iterable[tuple[str, str, int, int]],
               reasons: dict[tuple[str, str], list[str]]) -> list[RuleStats]:
    """Per (category, rule): ``feedback`` rows are (category, rule, feedback count, helpful count)."""
    fails: dict[tuple[str, str], list[Failure]] = {}
    for f in failures:
        fails.setdefault((f.category, f.rule_id), []).append(f)
    marks = {(c, r): (n, h) for c, r, n, h in feedback}
    out = []
    for key in sorted(set(fails) | set(marks)):
        fs = fails.get(key, [])
        hours = [h for f in fs if (h := f.recovery_hours) is not None]
        n, h = marks.get(key, (0, 0))
        out.append(RuleStats(key[0], key[1], n, h, len(fs), sum(f.fixed for f in fs),
                             None if not hours else round(median(hours), 2), tuple(reasons.get(key, []))))
    return sorted(out, key=lambda s: (-s.failed_payouts - s.feedback, s.category, s.rule_id))
