"""When a business day's transactions may be archived (detached): pure rules over facts the repository reads.

A day is archivable when it is settled (a finished settlement run, every merchant with transactions that day
has its settlement) and reconciled (a finished clearing reconciliation of the day, no open break of the day's
clearing or of a payout of its cycle, no payout of its cycle still in transit). See docs/operations.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DayFacts:
    day: date
    settlement_run_finished: bool
    unsettled_merchants: int  # merchants with transactions that day and no settlement of it
    clearing_run_finished: bool
    open_breaks: int  # open recon breaks of the day's clearing or of payouts of its cycle
    payouts_in_transit: int
    has_rows: bool = True  # False: an empty partition (an import that failed after making it) is always archivable


@dataclass(frozen=True)
class Reason:
    zh: str
    en: str


def refusals(f: DayFacts) -> list[Reason]:
    """Why ``f.day`` may not be detached yet; empty when it may."""
    d = f.day.isoformat()
    out: list[Reason] = []
    if not f.has_rows:
        return out
    if not f.settlement_run_finished:
        out.append(Reason(f"{d} 尚未完成结算（settleguard settle --date {d}）",
                          f"{d} has no finished settlement run (settleguard settle --date {d})"))
    if f.unsettled_merchants:
        out.append(Reason(f"{d} 有 {f.unsettled_merchants} 个商户的交易未结算",
                          f"{d}: {f.unsettled_merchants} merchant(s) have transactions not settled"))
    if not f.clearing_run_finished:
        out.append(Reason(f"{d} 尚未完成清算对账（settleguard recon clearing --date {d}）",
                          f"{d} has no finished clearing reconciliation (settleguard recon clearing --date {d})"))
    if f.open_breaks:
        out.append(Reason(f"{d} 有 {f.open_breaks} 笔未结的对账差错", f"{d}: {f.open_breaks} open reconciliation break(s)"))
    if f.payouts_in_transit:
        out.append(Reason(f"{d} 有 {f.payouts_in_transit} 笔出款仍在途",
                          f"{d}: {f.payouts_in_transit} payout(s) of the cycle still in transit"))
    return out
