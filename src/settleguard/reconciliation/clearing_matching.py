"""Clearing reconciliation, pure: the card network's clearing lines (INN) against our POS transactions.

中文：清算对账（纯函数，无 I/O）。把银联清算明细与我方导入的 POS 交易按“商户号 + 终端号 + 系统跟踪号”
在同一清算日内逐笔核对：
- 长款 ``clearing_long``：银联有、我方无；
- 短款 ``clearing_short``：我方有、银联无；
- 金额不符 ``clearing_amount_mismatch``、手续费不符 ``clearing_fee_mismatch``；
- 汇总不符 ``clearing_total_mismatch``：RD 汇总表的笔数 / 借贷金额 / 手续费 / 清算净额与明细不符。

Key: (merchant code, terminal, STAN) inside one clearing day (the network's day window). A transaction of ours
without a STAN is paired, after the keyed pass, with a left-over line of the same merchant, terminal and amount
whose time is within ``FALLBACK_SECONDS`` (nearest first). Several lines or transactions under one key pair in
time order; the rest are long / short.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

FALLBACK_SECONDS = 180  # a transaction without STAN pairs with a line this close in time (same amount)
KEY_PREFIX = "clearing:"  # every clearing break's natural key starts with it (bank runs leave them alone)


class ClearingBreakType(StrEnum):
    LONG = "clearing_long"  # 长款: in the network, not ours
    SHORT = "clearing_short"  # 短款: ours, not the network's
    AMOUNT = "clearing_amount_mismatch"
    FEE = "clearing_fee_mismatch"
    TOTAL = "clearing_total_mismatch"  # the RD summary disagrees with the detail


@dataclass(frozen=True, slots=True)
class NetworkLine:
    id: int
    merchant_code: str
    terminal_no: str
    stan: str
    sent_at: datetime
    amount_fen: int  # unsigned, as the file gives it
    fee_fen: int  # + the merchant pays (D), - returned (C)
    settle_fen: int  # + owed to the merchant (C), - (D)
    net_fen: int
    txn_code: str = ""
    account_masked: str = ""


@dataclass(frozen=True, slots=True)
class OurTxn:
    merchant_no: str
    terminal_no: str
    external_ref: str
    stan: str | None
    rrn: str | None
    occurred_at: datetime
    amount_fen: int  # unsigned; kind gives the sign
    fee_fen: int  # signed as stored: + charged to the merchant
    kind: int
    merchant_id: int
    cycle_date: date | None = None  # our business day (the transaction's key with merchant_id, external_ref)


@dataclass(frozen=True, slots=True)
class Summary:
    merchant_code: str
    txn_count: int
    debit_fen: int
    credit_fen: int
    fee_fen: int
    net_fen: int


@dataclass(frozen=True, slots=True)
class ClearingBreak:
    key: str
    type: ClearingBreakType
    amount_fen: int
    end_to_end_id: str | None  # our external_ref
    bank_ref: str | None  # merchant/terminal/STAN as the network wrote it
    booking_date: date
    detail: dict[str, Any]


@dataclass
class ClearingPlan:
    matched: int = 0
    breaks: list[ClearingBreak] = field(default_factory=list)

    def by_type(self) -> dict[str, int]:
        out = {str(t): 0 for t in ClearingBreakType}
        for b in self.breaks:
            out[str(b.type)] += 1
        return out


def _ref(line: NetworkLine) -> str:
    return f"{line.merchant_code}/{line.terminal_no or '-'}/{line.stan}"


def _line_detail(line: NetworkLine) -> dict[str, Any]:
    return {"clearing_line_id": line.id, "merchant_code": line.merchant_code, "terminal_no": line.terminal_no,
            "stan": line.stan, "txn_code": line.txn_code, "sent_at": line.sent_at.isoformat(),
            "account_masked": line.account_masked, "network_amount_fen": line.amount_fen,
            "network_fee_fen": line.fee_fen, "network_net_fen": line.net_fen}


def _our_detail(txn: OurTxn) -> dict[str, Any]:
    return {"merchant_no": txn.merchant_no, "merchant_id": txn.merchant_id, "terminal_no": txn.terminal_no,
            "external_ref": txn.external_ref, "stan": txn.stan, "rrn": txn.rrn, "kind": txn.kind,
            "occurred_at": txn.occurred_at.isoformat(), "our_amount_fen": txn.amount_fen, "our_fee_fen": txn.fee_fen,
            "cycle_date": None if txn.cycle_date is None else txn.cycle_date.isoformat()}


def plan(day: date, lines: Sequence[NetworkLine], ours: Sequence[OurTxn],
         summaries: Iterable[Summary] = (), owners: dict[int, str] | None = None) -> ClearingPlan:
    """Pair lines with transactions and list every break of clearing day ``day`` (see the module docstring).

    ``owners``: line id -> the merchant id in its INN file's name, so that an RD summary under that id is
    checked against the whole file (the ACP merchant is the acquirer itself) rather than one 商户代码."""
    out = ClearingPlan()
    prefix = f"{KEY_PREFIX}{day.isoformat()}:"
    by_key: dict[tuple[str, str, str], list[NetworkLine]] = defaultdict(list)
    for ln in sorted(lines, key=lambda x: (x.sent_at, x.id)):
        by_key[(ln.merchant_code, ln.terminal_no, ln.stan)].append(ln)
    pairs: list[tuple[NetworkLine, OurTxn]] = []
    unkeyed: list[OurTxn] = []
    for txn in sorted(ours, key=lambda x: (x.occurred_at, x.external_ref)):
        if not txn.stan:
            unkeyed.append(txn)
            continue
        bucket = by_key.get((txn.merchant_no, txn.terminal_no, txn.stan))
        if bucket:
            pairs.append((bucket.pop(0), txn))
        else:
            out.breaks.append(_short(prefix, day, txn))
    left: dict[tuple[str, str, int], list[NetworkLine]] = defaultdict(list)
    for bucket in by_key.values():
        for ln in bucket:
            left[(ln.merchant_code, ln.terminal_no, ln.amount_fen)].append(ln)
    for txn in unkeyed:  # no STAN on our side: same merchant, terminal and amount, nearest time within the limit
        cands = left.get((txn.merchant_no, txn.terminal_no, txn.amount_fen), [])
        best = min(cands, key=lambda x: abs((x.sent_at - txn.occurred_at).total_seconds()), default=None)
        if best is not None and abs((best.sent_at - txn.occurred_at).total_seconds()) <= FALLBACK_SECONDS:
            cands.remove(best)
            pairs.append((best, txn))
        else:
            out.breaks.append(_short(prefix, day, txn))
    for rest in left.values():
        for ln in rest:
            out.breaks.append(ClearingBreak(
                key=f"{prefix}long:{ln.id}", type=ClearingBreakType.LONG, amount_fen=ln.amount_fen, end_to_end_id=None,
                bank_ref=_ref(ln), booking_date=day, detail=_line_detail(ln)))
    for ln, txn in pairs:
        out.matched += 1
        detail = {**_line_detail(ln), **_our_detail(txn)}
        if ln.amount_fen != txn.amount_fen:
            out.breaks.append(ClearingBreak(
                key=f"{prefix}amount:{ln.id}", type=ClearingBreakType.AMOUNT, amount_fen=ln.amount_fen - txn.amount_fen,
                end_to_end_id=txn.external_ref, bank_ref=_ref(ln), booking_date=day, detail=detail))
        if ln.fee_fen != txn.fee_fen:
            out.breaks.append(ClearingBreak(
                key=f"{prefix}fee:{ln.id}", type=ClearingBreakType.FEE, amount_fen=ln.fee_fen - txn.fee_fen,
                end_to_end_id=txn.external_ref, bank_ref=_ref(ln), booking_date=day, detail=detail))
    out.breaks += totals_breaks(prefix, day, lines, summaries, owners or {})
    return out


def _short(prefix: str, day: date, txn: OurTxn) -> ClearingBreak:
    return ClearingBreak(key=f"{prefix}short:{txn.merchant_id}:{txn.external_ref}", type=ClearingBreakType.SHORT,
                         amount_fen=txn.amount_fen, end_to_end_id=txn.external_ref,
                         bank_ref=f"{txn.merchant_no}/{txn.terminal_no}/{txn.stan or '-'}", booking_date=day,
                         detail=_our_detail(txn))


@dataclass(frozen=True, slots=True)
class Totals:
    txn_count: int = 0
    debit_fen: int = 0
    credit_fen: int = 0
    fee_fen: int = 0
    net_fen: int = 0

    def add(self, ln: NetworkLine) -> Totals:
        credit = ln.settle_fen >= 0
        return Totals(self.txn_count + 1, self.debit_fen + (0 if credit else ln.amount_fen),
                      self.credit_fen + (ln.amount_fen if credit else 0), self.fee_fen + ln.fee_fen,
                      self.net_fen + ln.net_fen)


def detail_totals(lines: Iterable[NetworkLine]) -> Totals:
    """Count, debit and credit amounts (by the sign of the settlement amount), fees and net of ``lines``."""
    t = Totals()
    for ln in lines:
        t = t.add(ln)
    return t


def totals_breaks(prefix: str, day: date, lines: Sequence[NetworkLine], summaries: Iterable[Summary],
                  owners: dict[int, str]) -> list[ClearingBreak]:
    """One ``clearing_total_mismatch`` per RD summary whose figures differ from the INN lines it covers: those
    of its 商户代码, or all lines of INN files named with that code (the acquirer's own ACP merchant id)."""
    out = []
    by_code: dict[str, list[NetworkLine]] = {}  # one pass over the lines (a summary per merchant × every line
    by_owner: dict[str, list[NetworkLine]] = {}  # was quadratic: minutes for the 2,000-merchant demo)
    for ln in lines:
        by_code.setdefault(ln.merchant_code, []).append(ln)
        owner = owners.get(ln.id)
        if owner is not None and owner != ln.merchant_code:
            by_owner.setdefault(owner, []).append(ln)
    for s in summaries:
        own = by_code.get(s.merchant_code, []) + by_owner.get(s.merchant_code, [])
        got = detail_totals(own)
        stated = Totals(s.txn_count, s.debit_fen, s.credit_fen, s.fee_fen, s.net_fen)
        if got == stated:
            continue
        diffs = {name: {"summary": getattr(stated, name), "detail": getattr(got, name)}
                 for name in ("txn_count", "debit_fen", "credit_fen", "fee_fen", "net_fen")
                 if getattr(stated, name) != getattr(got, name)}
        first = next(iter(diffs))
        amount = 0 if first == "txn_count" else diffs[first]["summary"] - diffs[first]["detail"]
        out.append(ClearingBreak(key=f"{prefix}total:{s.merchant_code}", type=ClearingBreakType.TOTAL,
                                 amount_fen=amount, end_to_end_id=None, bank_ref=s.merchant_code, booking_date=day,
                                 detail={"merchant_code": s.merchant_code, "differences": diffs}))
    return out
