"""A merchant's history by business day and the failure trends per category and bank. Pure: the repository
hands in rows, this module puts them into days (in the business time zone the caller passes)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MAX_DAYS = 366  # the longest range a history or trend covers


class HistoryRefused(Exception):
    """Bad input a person typed (a range too long or backwards, an unknown merchant): zh and en."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def check_range(start: date, end: date) -> None:
    if end < start:
        raise HistoryRefused(f"结束日期 {end} 早于开始日期 {start}（--to 应不早于 --from）",
                             f"--to {end} is before --from {start}")
    if (end - start).days + 1 > MAX_DAYS:
        raise HistoryRefused(f"日期范围 {start}..{end} 超过 {MAX_DAYS} 天", f"the range {start}..{end} is longer than "
                             f"{MAX_DAYS} days")


def days_of(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def day_index(start: date, end: date, zone: ZoneInfo) -> Callable[[datetime], int | None]:
    """A function from an aware time to the index of its local day in ``start``..``end`` (None outside): a
    binary search over the days' starts in UTC (local midnights, DST included), about seven times faster than
    converting each time to the zone."""
    starts = [datetime.combine(d, time(0), zone).astimezone(UTC) for d in days_of(start, end + timedelta(days=1))]
    last = len(starts) - 1

    def index(at: datetime) -> int | None:
        i = bisect.bisect_right(starts, at if at.tzinfo is UTC else at.astimezone(UTC)) - 1
        return i if 0 <= i < last else None

    return index


def ppm(part: int, whole: int) -> int | None:
    """part ÷ whole in parts per million (rounded), None without a whole."""
    return None if not whole else round(part * 1_000_000 / whole)


@dataclass
class Day:
    """One business day of one merchant. Money in fen; ``fee_ppm`` = fees ÷ sales."""

    day: date
    sales: int = 0
    sale_fen: int = 0
    refunds: int = 0
    refund_fen: int = 0
    voids: int = 0  # voids and reversals
    void_fen: int = 0
    fee_fen: int = 0
    sends: int = 0  # finished send attempts (succeeded or failed) that day
    failures: int = 0
    failures_by_category: dict[str, int] = field(default_factory=dict)
    holds: int = 0  # payouts put on hold (挂账) that day
    hold_fen: int = 0
    risk_score: int | None = None
    risk_rules: list[str] = field(default_factory=list)

    @property
    def fee_ppm(self) -> int | None:
        return ppm(self.fee_fen, self.sale_fen)

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "sales": self.sales, "sale_fen": self.sale_fen, "refunds": self.refunds,
                "refund_fen": self.refund_fen, "voids": self.voids, "void_fen": self.void_fen, "fee_fen": self.fee_fen,
                "fee_ppm": self.fee_ppm, "sends": self.sends, "failures": self.failures,
                "failures_by_category": dict(sorted(self.failures_by_category.items())),
                "holds": self.holds, "hold_fen": self.hold_fen, "risk_score": self.risk_score,
                "risk_rules": list(self.risk_rules)}


@dataclass
class History:
    merchant_id: int
    merchant_no: str
    name: str
    start: date
    end: date
    days: list[Day]
    months: list[dict[str, Any]]  # fees/rates.MonthRate.as_dict(): contracted and effective rate by month and card
    has_risk: bool  # the risk tables exist (migration 0018): the anomaly column is shown

    @property
    def categories(self) -> list[str]:
        """Every failure category of the range, most failures first."""
        total: dict[str, int] = {}
        for d in self.days:
            for c, n in d.failures_by_category.items():
                total[c] = total.get(c, 0) + n
        return [c for c, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))]

    def totals(self) -> dict[str, int]:
        keys = ("sales", "sale_fen", "refunds", "refund_fen", "voids", "void_fen", "fee_fen", "sends", "failures",
                "holds", "hold_fen")
        return {k: sum(int(getattr(d, k)) for d in self.days) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"merchant_no": self.merchant_no, "name": self.name, "from": self.start.isoformat(),
                               "to": self.end.isoformat(), "totals": self.totals(),
                               "days": [d.as_dict() for d in self.days], "months": self.months,
                               "anomalies": self.has_risk}
        if not self.has_risk:
            for d in out["days"]:
                d.pop("risk_score"), d.pop("risk_rules")
        return out


# (kind code) of settlement.model.TxnKind, written out so that this model needs no other package
SALE, VOID, REFUND, REVERSAL = 1, 2, 3, 4


def build_days(start: date, end: date, zone: ZoneInfo, *,
               txns: Iterable[tuple[date, int, int, int, int]],
               attempts: Iterable[tuple[datetime, str, str | None]],
               holds: Iterable[tuple[datetime, int]],
               risk: Iterable[tuple[date, int, str]]) -> list[Day]:
    """The days ``start``..``end``: ``txns`` (cycle day, kind, count, amount, fee) per day and kind; ``attempts``
    (requested at, outcome, category) finished sends; ``holds`` (at, amount) payouts put on hold; ``risk``
    (cycle day, score, rules comma-separated). Times are bucketed by their local day in ``zone``."""
    by_day = {d: Day(d) for d in days_of(start, end)}
    listed = list(by_day.values())
    local = day_index(start, end, zone)
    for day, kind, n, fen, fee in txns:
        d = by_day.get(day)
        if d is None:
            continue
        d.fee_fen += fee
        if kind == SALE:
            d.sales, d.sale_fen = d.sales + n, d.sale_fen + fen
        elif kind == REFUND:
            d.refunds, d.refund_fen = d.refunds + n, d.refund_fen + fen
        else:
            d.voids, d.void_fen = d.voids + n, d.void_fen + fen
    for at, outcome, category in attempts:
        i = local(at)
        if i is None:
            continue
        d = listed[i]
        d.sends += 1
        if outcome == "failed":
            d.failures += 1
            key = category or "unknown"
            d.failures_by_category[key] = d.failures_by_category.get(key, 0) + 1
    for at, fen in holds:
        i = local(at)
        if i is not None:
            listed[i].holds, listed[i].hold_fen = listed[i].holds + 1, listed[i].hold_fen + fen
    for day, score, rules in risk:
        d = by_day.get(day)
        if d is not None:
            d.risk_score, d.risk_rules = score, [r for r in rules.split(",") if r]
    return list(by_day.values())


@dataclass
class Trends:
    """Finished sends and failures per local day, per category and per receiving bank, of all merchants."""

    start: date
    end: date
    days: list[date]
    sends: list[int]
    failures: list[int]
    by_category: dict[str, list[int]]  # category -> failures per day
    banks: dict[str, dict[str, Any]]  # bank code -> {"name", "sends": [...], "failures": [...]}

    def bank_trend(self, code: str) -> dict[str, Any]:
        """First half against second half of the range: the failure rate (ppm) of each and whether it rose."""
        b = self.banks[code]
        half = len(self.days) // 2
        s1, f1 = sum(b["sends"][:half]), sum(b["failures"][:half])
        s2, f2 = sum(b["sends"][half:]), sum(b["failures"][half:])
        first, second = ppm(f1, s1), ppm(f2, s2)
        worse = first is not None and second is not None and second > first
        return {"first_ppm": first, "second_ppm": second, "worse": worse}

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "days": [d.isoformat() for d in self.days], "sends": self.sends, "failures": self.failures,
                "by_category": self.by_category,
                "banks": {c: {**b, **self.bank_trend(c)} for c, b in self.banks.items()}}


def build_trends(start: date, end: date, zone: ZoneInfo,
                 attempts: Iterable[tuple[datetime, str, str | None, str | None, str | None]]) -> Trends:
    """``attempts``: (requested at, outcome, category, bank code, bank name) of finished sends."""
    days = days_of(start, end)
    local = day_index(start, end, zone)
    n = len(days)
    sends, failures = [0] * n, [0] * n
    by_category: dict[str, list[int]] = {}
    banks: dict[str, dict[str, Any]] = {}
    for at, outcome, category, bank_code, bank_name in attempts:
        i = local(at)
        if i is None:
            continue
        b = banks.setdefault(bank_code or "-", {"name": bank_name or "-", "sends": [0] * n, "failures": [0] * n})
        sends[i] += 1
        b["sends"][i] += 1
        if outcome == "failed":
            failures[i] += 1
            b["failures"][i] += 1
            by_category.setdefault(category or "unknown", [0] * n)[i] += 1
    ordered = dict(sorted(by_category.items(), key=lambda kv: (-sum(kv[1]), kv[0])))
    ranked = dict(sorted(banks.items(), key=lambda kv: (-sum(kv[1]["failures"]), kv[0])))
    return Trends(start, end, days, sends, failures, ordered, ranked)
