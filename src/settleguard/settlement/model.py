"""Settlement domain: transaction kinds, card types, cycles, cut-offs and fee schedules. Pure.

Rules (documented in docs/settlement.md):

- A sale adds its amount; a void (撤销) and a reversal (冲正) cancel a sale and give its fee
  back (the fee is computed on the cancelled amount and charged negative); a refund (退货)
  returns the amount but not the fee (退货不退手续费).
- net = sales - voids - refunds - reversals - fees. A merchant whose payable balance is not
  positive after a cycle gets no payout; the balance carries into the next cycle.
- The business day (cycle date) of a transaction is its local date in the business time
  zone, moved to the next day when the local time is at or after the cycle's cut-off hour.
- T+1: a cycle's value (payout) date is the next China business day after the cycle date.
  D+0: the value date is the cycle date itself, any day of the week.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from settleguard.money import fee_fen
from settleguard.settlement.calendar import next_business_day


class TxnKind(enum.IntEnum):
    SALE = 1  # 消费
    VOID = 2  # 撤销
    REFUND = 3  # 退货
    REVERSAL = 4  # 冲正

    @property
    def label(self) -> str:
        return self.name.lower()


class CardType(enum.IntEnum):
    DEBIT = 1  # 借记卡
    CREDIT = 2  # 信用卡
    QR = 3  # 扫码 (UnionPay QR, Alipay, WeChat Pay)

    @property
    def label(self) -> str:
        return self.name.lower()


KIND_ALIASES: Mapping[str, TxnKind] = {
    "sale": TxnKind.SALE, "消费": TxnKind.SALE,
    "void": TxnKind.VOID, "撤销": TxnKind.VOID, "消费撤销": TxnKind.VOID,
    "refund": TxnKind.REFUND, "退货": TxnKind.REFUND,
    "reversal": TxnKind.REVERSAL, "冲正": TxnKind.REVERSAL,
}
CARD_ALIASES: Mapping[str, CardType] = {
    "debit": CardType.DEBIT, "借记卡": CardType.DEBIT, "dc": CardType.DEBIT,
    "credit": CardType.CREDIT, "信用卡": CardType.CREDIT, "贷记卡": CardType.CREDIT, "cc": CardType.CREDIT,
    "qr": CardType.QR, "扫码": CardType.QR,
}


class Cycle(enum.StrEnum):
    T1 = "T1"
    D0 = "D0"


@dataclass(frozen=True)
class CutOffs:
    """Cut-over hours (日切) per cycle, 0..24 in the business time zone; 24 means midnight. ``timezone`` is
    that zone (config.Settings.timezone, passed in by the composition root: no default here)."""

    t1_hour: int = 23
    d0_hour: int = 22
    timezone: str = field(kw_only=True)

    def hour(self, cycle: Cycle) -> int:
        return self.t1_hour if cycle is Cycle.T1 else self.d0_hour


def cycle_date(occurred_at: datetime, cycle: Cycle, cutoffs: CutOffs) -> date:
    """The business day a transaction belongs to."""
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    local = occurred_at.astimezone(ZoneInfo(cutoffs.timezone))
    hour = cutoffs.hour(cycle)
    if hour < 24 and local.hour >= hour:
        return local.date() + timedelta(days=1)
    return local.date()


def value_date(cycle_day: date, cycle: Cycle) -> date:
    """The day the cycle's money is paid to the merchant."""
    if cycle is Cycle.T1:
        return next_business_day(cycle_day)
    return cycle_day


@dataclass(frozen=True)
class FeeRate:
    """A rate for one card type.

    Attributes:
        rate_ppm: parts per million (0.6% = 6000).
        cap_fen: per-transaction cap in fen, or None for no cap.
    """

    rate_ppm: int
    cap_fen: int | None = None


@dataclass(frozen=True)
class FeeSchedule:
    code: str
    name_zh: str
    name_en: str
    rates: Mapping[CardType, FeeRate]

    def fee(self, kind: TxnKind, card_type: CardType, amount_fen: int) -> int:
        """Signed fee for one transaction (see the module rules)."""
        r = self.rates[card_type]
        base = fee_fen(amount_fen, r.rate_ppm, r.cap_fen)
        if kind is TxnKind.SALE:
            return base
        if kind in (TxnKind.VOID, TxnKind.REVERSAL):
            return -base
        return 0


STANDARD = FeeSchedule(
    code="standard",
    name_zh="标准费率（借记卡0.5%封顶20元，信用卡0.6%，扫码0.38%）",
    name_en="Standard (debit 0.5% capped at 20 yuan, credit 0.6%, QR 0.38%)",
    rates={
        CardType.DEBIT: FeeRate(5000, 2000),
        CardType.CREDIT: FeeRate(6000),
        CardType.QR: FeeRate(3800),
    },
)
SMALL_MICRO = FeeSchedule(
    code="small_micro",
    name_zh="小微优惠费率（借记卡0.45%封顶18元，信用卡0.55%，扫码0.3%）",
    name_en="Small and micro (debit 0.45% capped at 18 yuan, credit 0.55%, QR 0.3%)",
    rates={
        CardType.DEBIT: FeeRate(4500, 1800),
        CardType.CREDIT: FeeRate(5500),
        CardType.QR: FeeRate(3000),
    },
)
DEFAULT_SCHEDULES = (STANDARD, SMALL_MICRO)


@dataclass(frozen=True)
class CycleTotals:
    """What one merchant's cycle adds up to (all fen)."""

    txn_count: int
    sale_fen: int
    void_fen: int
    refund_fen: int
    reversal_fen: int
    fee_fen: int

    @property
    def net_fen(self) -> int:
        return self.sale_fen - self.void_fen - self.refund_fen - self.reversal_fen - self.fee_fen


def totals(rows: list[tuple[TxnKind, CardType, int]], schedule: FeeSchedule) -> CycleTotals:
    """Reference (slow, pure) computation of one merchant's cycle; the engine must agree."""
    sums = {k: 0 for k in TxnKind}
    fee = 0
    for kind, card, amount in rows:
        sums[kind] += amount
        fee += schedule.fee(kind, card, amount)
    return CycleTotals(len(rows), sums[TxnKind.SALE], sums[TxnKind.VOID], sums[TxnKind.REFUND],
                       sums[TxnKind.REVERSAL], fee)
