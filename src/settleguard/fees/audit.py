"""The fee audit (费率稽核): recompute every transaction's fee from the contract in force on its business day and
report, per merchant, what was charged above or below it (to the fen, with the transactions), and each contract
whose fee schedule now charges other rates than were signed — a rate raised with no contract change behind it.

The transaction import fixes each fee when a row is imported (docs/settlement.md); a fee differs from its
contract when the schedule's rates were edited in place, when rows came from elsewhere, or when the data was
altered. Read-only; one business day at a time, vectorised (fees/model.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import Engine

from settleguard.fees import repository as repo
from settleguard.fees.compute import add_differences, fees, in_force, rate_tables
from settleguard.fees.model import (
    AuditRefused,
    ContractRates,
    MerchantAudit,
    RateDrift,
)

MAX_DAYS = 366
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class _Contracts:
    keys: np.ndarray           # merchant << 32 | effective day, sorted; position = contract index
    first: np.ndarray          # merchant id -> position of its first contract (-1 none)
    rate: np.ndarray
    cap: np.ndarray
    rate_now: np.ndarray       # what each contract's schedule charges today
    cap_now: np.ndarray
    rows: list[repo.ContractRow]
    signed: list[ContractRates]


def _contracts(rows: list[repo.ContractRow], now: dict[int, dict[str, int | None]]) -> _Contracts:
    signed = [ContractRates.of(r.rates if r.rates is not None else now[r.schedule_id]) for r in rows]
    keys = np.array([(r.merchant_id << 32) | (r.effective_from - _EPOCH).days for r in rows], dtype=np.int64)
    top = max((r.merchant_id for r in rows), default=0)
    first = np.full(top + 2, -1, dtype=np.int64)
    for i in range(len(rows) - 1, -1, -1):
        first[rows[i].merchant_id] = i
    rate, cap = rate_tables(signed)
    rate_now, cap_now = rate_tables([ContractRates.of(now[r.charged_schedule_id]) for r in rows])
    return _Contracts(keys, first, rate, cap, rate_now, cap_now, rows, signed)


def check_period(start: date, end: date) -> None:
    """Refuse a period that ends before it starts or is longer than :data:`MAX_DAYS`."""
    if end < start:
        raise AuditRefused(f"结束日期 {end} 早于开始日期 {start}", f"the end date {end} is before the start date {start}")
    if (end - start).days + 1 > MAX_DAYS:
        raise AuditRefused(f"一次最多稽核 {MAX_DAYS} 天（{start} 至 {end} 共 {(end - start).days + 1} 天）",
                           f"at most {MAX_DAYS} days at a time ({start} to {end} is {(end - start).days + 1} days)")


def run(engine: Engine, start: date, end: date, *, merchant_no: str | None = None,
        progress: Callable[[int, int], None] | None = None) -> list[MerchantAudit]:
    """The audit of business days ``start``..``end``: merchants with a finding, largest overcharge first."""
    check_period(start, end)
    with engine.connect() as conn:
        mid = None
        if merchant_no is not None:
            mid = repo.merchant_id(conn, merchant_no)
            if mid is None:
                raise AuditRefused(f"商户 {merchant_no[:40]} 不存在", f"no merchant {merchant_no[:40]!r}")
        rows = repo.contracts(conn)
        now = repo.rates_now(conn, [s for r in rows for s in (r.schedule_id, r.charged_schedule_id)])
        c = _contracts(rows, now)
        found: dict[int, MerchantAudit] = {}
        seen: dict[int, date] = {}
        days = repo.days_with_transactions(conn, start, end, mid)
        for n, day in enumerate(days, 1):
            cols = repo.day_columns(conn, day, mid)
            merchant = cols["merchant_id"]
            if not merchant.size:
                continue
            # a merchant without any contract row is not audited (none after migration 0019)
            lookup = np.where(merchant < len(c.first), merchant, 0)
            idx = in_force(c.keys, c.first, lookup, np.full(merchant.size, (day - _EPOCH).days, dtype=np.int64))
            has = idx >= 0
            contracted = fees(cols["amount_fen"], cols["kind"], cols["card_type"], np.maximum(idx, 0), c.rate, c.cap)
            contracted = np.where(has, contracted, cols["fee_fen"])
            add_differences(found, merchant, cols["fee_fen"], contracted, cols, day)
            at_now = fees(cols["amount_fen"], cols["kind"], cols["card_type"], np.maximum(idx, 0), c.rate_now,
                          c.cap_now)
            _first_days(seen, idx, has & (contracted != cols["fee_fen"]) & (at_now == cols["fee_fen"]), day)
            if progress:
                progress(n, len(days))
        _drifts(found, c, now, seen, mid, start, end)
        names = repo.merchant_names(conn, sorted(found))
    out = [a for a in found.values() if a.finding]
    for a in out:
        a.merchant_no, a.name = names.get(a.merchant_id, (str(a.merchant_id), ""))
    return sorted(out, key=lambda a: (-a.overcharged_fen, -a.undercharged_fen, a.merchant_no))


def _first_days(seen: dict[int, date], idx: np.ndarray, drifted: np.ndarray, day: date) -> None:
    """Remember, per contract, the first audited day on which one of its rows was charged at its schedule's new
    rates instead of the contract's."""
    for i in np.unique(idx[drifted]).tolist():
        seen.setdefault(int(i), day)


def _drifts(found: dict[int, MerchantAudit], c: _Contracts, now: dict[int, dict[str, int | None]],
            seen: dict[int, date], merchant: int | None, start: date, end: date) -> None:
    """A contract in force during the period whose schedule now charges other rates than it was signed with
    (a contract superseded before the period is not reported)."""
    for i, r in enumerate(c.rows):
        if merchant is not None and r.merchant_id != merchant:
            continue
        later = c.rows[i + 1] if i + 1 < len(c.rows) and c.rows[i + 1].merchant_id == r.merchant_id else None
        if (i > 0 and c.rows[i - 1].merchant_id == r.merchant_id and r.effective_from > end) or (
                later is not None and later.effective_from <= start):
            continue  # not in force on any day of the period (the first contract counts from before it)
        charged = ContractRates.of(now[r.charged_schedule_id])
        if charged != c.signed[i]:
            a = found.setdefault(r.merchant_id, MerchantAudit(r.merchant_id))
            a.drifts.append(RateDrift(r.effective_from, c.signed[i], charged, seen.get(i)))

