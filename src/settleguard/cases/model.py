"""Case statuses, transitions, priorities, SLA and contact vocabularies. Pure (no I/O).

A case (工单) moves through::

    open ⇄ waiting_bank ⇄ waiting_merchant → resolved → closed
                                     ↖ (reopen) ↙

``resolved`` needs a resolution text; ``closed`` is final and only follows ``resolved``.
The SLA due time is computed once, when the case is opened, from its category and priority
(:func:`sla_due`); hours run around the clock, business days follow the China calendar
(settlement.calendar, with 调休) at the same local clock time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from settleguard.settlement.calendar import is_business_day


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    WAITING_BANK = "waiting_bank"
    WAITING_MERCHANT = "waiting_merchant"
    RESOLVED = "resolved"
    CLOSED = "closed"


C = CaseStatus
TRANSITIONS: Mapping[CaseStatus, frozenset[CaseStatus]] = {
    C.OPEN: frozenset({C.WAITING_BANK, C.WAITING_MERCHANT, C.RESOLVED}),
    C.WAITING_BANK: frozenset({C.OPEN, C.WAITING_MERCHANT, C.RESOLVED}),
    C.WAITING_MERCHANT: frozenset({C.OPEN, C.WAITING_BANK, C.RESOLVED}),
    C.RESOLVED: frozenset({C.OPEN, C.CLOSED}),  # reopen, or close for good
    C.CLOSED: frozenset(),
}
# Cases still being worked on: they count against the SLA and block a second repeated-failure case.
ACTIVE = frozenset({C.OPEN, C.WAITING_BANK, C.WAITING_MERCHANT})

STATUS_ZH: Mapping[CaseStatus, str] = {
    C.OPEN: "处理中", C.WAITING_BANK: "等待银行", C.WAITING_MERCHANT: "等待商户", C.RESOLVED: "已解决",
    C.CLOSED: "已关闭",
}


class IllegalCaseTransition(ValueError):
    """A status change the table does not allow."""


def check_transition(current: CaseStatus, target: CaseStatus) -> CaseStatus:
    if target not in TRANSITIONS[current]:
        raise IllegalCaseTransition(f"case cannot go from {current} to {target}")
    return target


def sources(target: CaseStatus) -> frozenset[CaseStatus]:
    """Every status from which ``target`` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


class Priority(enum.StrEnum):
    P1 = "p1"  # urgent: money blocked by risk / compliance
    P2 = "p2"
    P3 = "p3"
    P4 = "p4"


class Party(enum.StrEnum):
    BANK_SUPPORT = "bank_support"
    PLATFORM_HOTLINE = "platform_hotline"
    MERCHANT = "merchant"


class Method(enum.StrEnum):
    PHONE = "phone"
    ONLINE = "online"
    ON_SITE = "on_site"


PARTY_ZH: Mapping[Party, str] = {Party.BANK_SUPPORT: "银行客服", Party.PLATFORM_HOTLINE: "支付平台热线",
                                 Party.MERCHANT: "商户"}
METHOD_ZH: Mapping[Method, str] = {Method.PHONE: "电话", Method.ONLINE: "在线", Method.ON_SITE: "现场"}

# Case categories beyond the failure taxonomy's (shared/design/failure-taxonomy.md).
RETURNED = "returned"  # 退票: the bank paid, then sent the money back
REPEATED_FAILURES = "repeated_failures"  # one merchant's payouts keep failing
NEEDS_REVIEW = "needs_review"  # a payout waits for an operator's decision
RISK = "risk_or_compliance_block"
UNKNOWN_REFERENCE = "unknown_reference"  # a bank file names instructions we never sent (payouts.files)
FILE_ANSWER_OVERDUE = "file_answer_overdue"  # a payout sent in a file has no final answer (cases.overdue)
CATEGORY_ZH: Mapping[str, str] = {
    RETURNED: "退票", REPEATED_FAILURES: "连续失败", NEEDS_REVIEW: "待复核", RISK: "风控或合规拦截",
    UNKNOWN_REFERENCE: "银行文件含未知参考号", FILE_ANSWER_OVERDUE: "文件出款超期未回执",
    "card_info_error": "银行卡信息错误", "card_status_abnormal": "银行卡状态异常",
    "system_or_network_fault": "系统或网络故障", "limit_exceeded": "超出限额", "verification_failed": "签到或验证失败",
    "insufficient_funds": "余额不足", "transaction_data_error": "交易信息错误", "duplicate": "重复交易",
    "result_unknown": "结果未明", "unknown": "原因不明", "complaint": "商户投诉", "other": "其他",
}
# The priority an automatically opened case gets.
DEFAULT_PRIORITY: Mapping[str, Priority] = {
    RISK: Priority.P1, RETURNED: Priority.P2, NEEDS_REVIEW: Priority.P2, REPEATED_FAILURES: Priority.P3,
    UNKNOWN_REFERENCE: Priority.P2, FILE_ANSWER_OVERDUE: Priority.P2,
}


@dataclass(frozen=True)
class Sla:
    """How long a case may take: ``hours`` around the clock, or ``business_days`` on the China calendar."""

    hours: int = 0
    business_days: int = 0

    def describe(self) -> str:
        if self.hours:
            return f"{self.hours} 小时 hours"
        return f"{self.business_days} 个工作日 business day{'s' if self.business_days != 1 else ''}"


# By priority, unless the category has its own row in CATEGORY_SLA.
PRIORITY_SLA: Mapping[Priority, Sla] = {
    Priority.P1: Sla(hours=4), Priority.P2: Sla(business_days=1), Priority.P3: Sla(business_days=2),
    Priority.P4: Sla(business_days=5),
}
CATEGORY_SLA: Mapping[tuple[str, Priority], Sla] = {
    (RISK, Priority.P1): Sla(hours=4),
    (RISK, Priority.P2): Sla(hours=8),
    (RETURNED, Priority.P1): Sla(hours=4),
    (RETURNED, Priority.P2): Sla(business_days=1),
    (NEEDS_REVIEW, Priority.P2): Sla(business_days=1),
    (REPEATED_FAILURES, Priority.P3): Sla(business_days=2),
}


def sla_for(category: str, priority: Priority) -> Sla:
    return CATEGORY_SLA.get((category, priority), PRIORITY_SLA[priority])


def add_business_days(start: datetime, days: int, tz: str) -> datetime:
    """``start`` moved ``days`` business days later, same local clock time. A start on a non-business day
    counts from that day as if it were the previous business day's evening: Saturday 10:00 + 1 → Monday
    10:00, Friday 10:00 + 1 → Monday 10:00 (China calendar, make-up workdays count)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if days < 0:
        raise ValueError("days must be >= 0")
    local = start.astimezone(ZoneInfo(tz))
    d = local.date()
    n = 0
    while n < days:
        d += timedelta(days=1)
        if is_business_day(d):
            n += 1
    return datetime.combine(d, local.timetz()).astimezone(start.tzinfo)


def sla_due(created_at: datetime, category: str, priority: Priority, tz: str) -> datetime:
    """When a case opened at ``created_at`` is due."""
    sla = sla_for(category, priority)
    if sla.hours:
        return created_at + timedelta(hours=sla.hours)
    return add_business_days(created_at, sla.business_days, tz)


def is_overdue(status: CaseStatus, sla_due_at: datetime, now: datetime) -> bool:
    return status in ACTIVE and sla_due_at < now


# Repeated failures: this many failed attempts of one merchant's payouts within the window open a case.
REPEATED_FAILURE_THRESHOLD = 3
REPEATED_FAILURE_WINDOW = timedelta(days=7)


def dedupe_key(cause: str, *parts: object) -> str:
    """The unique key of an automatically opened case: one case per cause (at most 128 characters)."""
    return ":".join([cause, *(str(p) for p in parts)])[:128]
