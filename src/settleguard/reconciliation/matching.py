"""Match booked bank lines to payouts and name every break: a pure plan from two lists (no I/O, no clock).

中文：对账匹配。输入是银行流水行与出款（含其指令号 EndToEndId、批次号 PmtInfId、收款卡号掩码），
输出是匹配结果与差错（break）清单。先按 EndToEndId（我们的指令号）匹配，再按批次号（一条批量
记账对多笔出款，笔数与金额须一致），最后对没有我们指令号的流水按规则匹配（金额相等、收款卡号掩码
前 6 后 4 相等、记账日在出款日起 N 个工作日内）。只有已记账（BOOK）的流水能结清匹配；未决（PDNG）
从不结清，仅供参考（INFO）忽略。本模块不移动资金、不改出款状态（见 docs/reconciliation.md）。

Break types (exactly these): ``bank_only``, ``ledger_only``, ``amount_mismatch``, ``duplicate_debit``,
``reversal``, ``balance_drift``. Each break has a natural ``key`` (type + subject) so that storing the plan
again updates the same break instead of adding one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

DEFAULT_WINDOW_DAYS = 2  # business days between the payout's value date and the bank's booking date
NOT_PROVIDED = "NOTPROVIDED"  # ISO 20022 placeholder for "no EndToEndId"
PAID = frozenset({"succeeded", "returned"})  # payout statuses under which the bank must have booked a debit
_MASKED = re.compile(r"([0-9]{6})[0-9*]*?([0-9]{4})(?![0-9])")
_CDTR_ACCT = re.compile(r"<CdtrAcct>(.*?)</CdtrAcct>", re.S)


class BreakType(StrEnum):
    BANK_ONLY = "bank_only"
    LEDGER_ONLY = "ledger_only"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE_DEBIT = "duplicate_debit"
    REVERSAL = "reversal"
    BALANCE_DRIFT = "balance_drift"


class Rule(StrEnum):
    E2E = "e2e"  # one booked debit under the payout's instruction key
    E2E_SPLIT = "e2e_split"  # several booked debits under one key summing to the payout (many-to-one)
    BATCH = "batch"  # one batch booking (PmtInfId) for all payouts of that batch (one-to-many)
    AMOUNT_DATE = "amount_date"  # no key of ours: amount, masked account and booking date within the window


@dataclass(frozen=True, slots=True)
class Line:
    """A bank line as the matcher needs it (bank_lines row)."""

    id: int
    amount_fen: int
    direction: str  # DBIT | CRDT
    status: str  # BOOK | PDNG | INFO
    booking_date: date | None
    end_to_end_id: str | None = None
    pmt_inf_id: str | None = None
    batch_count: int | None = None
    reversal: bool = False
    bank_ref: str | None = None  # AcctSvcrRef, else the bank's serial (entry ref)
    account_masked: str | None = None  # the counterparty (creditor) account, first 6 + last 4, if the bank gave it


@dataclass(frozen=True, slots=True)
class Payout:
    """A payout as the matcher needs it: its instruction keys (EndToEndIds sent) and batch ids (PmtInfIds)."""

    id: int
    amount_fen: int
    status: str
    value_date: date
    keys: frozenset[str] = frozenset()
    batch_ids: frozenset[str] = frozenset()
    account_masked: str | None = None
    attempt_of_key: tuple[tuple[str, int], ...] = ()  # (instruction key, attempt id) of the sends
    returns: int = 0  # times the payout was returned after success (退票 recorded: payout_events -> returned)

    @property
    def debits_expected(self) -> int:
        """Booked debits the bank owes us for this payout: one per payment (a return, then a new payment)."""
        return max(1 if self.status in PAID else 0, self.returns + (1 if self.status == "succeeded" else 0))

    def attempt_id(self, key: str | None) -> int | None:
        for k, aid in reversed(self.attempt_of_key):  # the latest send under that key
            if k == key:
                return aid
        return None


@dataclass(frozen=True, slots=True)
class StatementBalance:
    """A statement's proof: opening + booked entries - closing (None where a balance is missing)."""

    id: int
    statement_id: str
    account: str
    opening_fen: int | None
    closing_fen: int | None
    booked_net_fen: int  # credits minus debits of its booked lines
    on: date | None

    @property
    def drift_fen(self) -> int | None:
        if self.opening_fen is None or self.closing_fen is None:
            return None
        return self.opening_fen + self.booked_net_fen - self.closing_fen


@dataclass(frozen=True, slots=True)
class Match:
    line_id: int
    payout_id: int
    rule: Rule
    amount_fen: int
    attempt_id: int | None = None


@dataclass(frozen=True, slots=True)
class Break:
    key: str
    type: BreakType
    amount_fen: int | None
    payout_id: int | None = None
    line_id: int | None = None
    end_to_end_id: str | None = None
    bank_ref: str | None = None
    booking_date: date | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    matches: list[Match] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    lines_considered: int = 0
    drift_fen: int = 0  # sum of the statements' drifts (0 when every statement proves itself)
    # (payout, fen) not yet booked, not a break: paid within its window (+), or returned with no credit back yet (-)
    in_transit: list[tuple[int, int]] = field(default_factory=list)

    def by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {str(t): 0 for t in BreakType}
        for b in self.breaks:
            counts[str(b.type)] += 1
        return counts


def masked_tail(text: str | None) -> str | None:
    """First 6 and last 4 digits of an account number, masked or not (``622848******0018`` -> ``6228480018``)."""
    if not text:
        return None
    m = _MASKED.search(text.replace(" ", ""))
    return None if m is None else m.group(1) + m.group(2)


def creditor_account(raw: str) -> str | None:
    """The creditor account a camt entry names (CdtrAcct), as first 6 + last 4 digits, or None."""
    m = _CDTR_ACCT.search(raw or "")
    return None if m is None else masked_tail(m.group(1))


def add_business_days(day: date, n: int, is_business_day: Callable[[date], bool]) -> date:
    d = day
    while n > 0:
        d += timedelta(days=1)
        if is_business_day(d):
            n -= 1
    return d


def _weekday(day: date) -> bool:
    return day.weekday() < 5


class _Matcher:
    def __init__(self, lines: Sequence[Line], payouts: Sequence[Payout], run_date: date, window_days: int,
                 is_business_day: Callable[[date], bool]) -> None:
        self.run_date, self.window, self.is_bd = run_date, window_days, is_business_day
        self.lines = sorted((ln for ln in lines if ln.status == "BOOK"), key=lambda ln: ln.id)
        self.payouts = {p.id: p for p in payouts}
        self.by_key: dict[str, Payout] = {}
        self.by_batch: dict[str, list[Payout]] = defaultdict(list)
        for p in sorted(payouts, key=lambda p: p.id):
            for k in p.keys:
                self.by_key.setdefault(k, p)
            for b in p.batch_ids:
                self.by_batch[b].append(p)
        self.plan = Plan(lines_considered=len(self.lines))
        self.covered: set[int] = set()  # payouts answered by a match or a break of theirs
        self.credited_back: dict[int, int] = {}  # returned payouts: booked credits back under their keys

    def due(self, p: Payout) -> date:
        return add_business_days(p.value_date, self.window, self.is_bd)

    def brk(self, type_: BreakType, subject: str, amount: int | None, *, payout: Payout | None = None,
            line: Line | None = None, **detail: Any) -> None:
        self.plan.breaks.append(Break(
            key=f"{type_}:{subject}", type=type_, amount_fen=amount, payout_id=None if payout is None else payout.id,
            line_id=None if line is None else line.id, end_to_end_id=None if line is None else line.end_to_end_id,
            bank_ref=None if line is None else line.bank_ref,
            booking_date=None if line is None else line.booking_date, detail=detail))

    def match(self, line: Line, p: Payout, rule: Rule) -> None:
        self.plan.matches.append(Match(line.id, p.id, rule, line.amount_fen, p.attempt_id(line.end_to_end_id)))
        self.covered.add(p.id)

    def run(self) -> Plan:
        debits = [ln for ln in self.lines if ln.direction == "DBIT" and not ln.reversal]
        keyed: dict[int, list[Line]] = defaultdict(list)
        rest: list[Line] = []
        for ln in debits:
            p = self.by_key.get(ln.end_to_end_id or "")
            if p is not None:
                keyed[p.id].append(ln)
            else:
                rest.append(ln)
        for pid in sorted(keyed):
            self.keyed(self.payouts[pid], keyed[pid])
        leftover = []
        for ln in rest:
            if ln.pmt_inf_id and ln.pmt_inf_id in self.by_batch and not self.keyed_e2e(ln):
                self.batch(ln, self.by_batch[ln.pmt_inf_id])
            else:
                leftover.append(ln)
        self.by_rules(leftover)
        self.reversals([ln for ln in self.lines if ln.reversal or ln.direction == "CRDT"])
        matched = {x.payout_id for x in self.plan.matches}
        for p in sorted(self.payouts.values(), key=lambda p: p.id):
            if p.status in PAID and p.id not in self.covered and self.due(p) <= self.run_date:
                self.brk(BreakType.LEDGER_ONLY, f"payout:{p.id}", p.amount_fen, payout=p,
                         value_date=p.value_date.isoformat(), due=self.due(p).isoformat(),
                         keys=sorted(p.keys), window_days=self.window)
            elif p.status in PAID and p.id not in self.covered:
                self.plan.in_transit.append((p.id, p.amount_fen))  # 在途: the bank may still book it
            back = p.returns - self.credited_back.get(p.id, 0)
            if back > 0 and p.id in matched:  # a return recorded, its credit not yet booked by the bank
                self.plan.in_transit.append((p.id, -p.amount_fen * back))
        return self.plan

    @staticmethod
    def keyed_e2e(ln: Line) -> bool:
        return bool(ln.end_to_end_id) and ln.end_to_end_id != NOT_PROVIDED

    def keyed(self, p: Payout, lines: list[Line]) -> None:
        """Booked debits under one payout's instruction keys."""
        if p.debits_expected > 1:  # paid, returned, paid again: one debit per payment
            payments = [ln for ln in lines if ln.amount_fen == p.amount_fen][:p.debits_expected]
            for ln in lines:
                if ln in payments:
                    self.match(ln, p, Rule.E2E)
                else:
                    self.brk(BreakType.DUPLICATE_DEBIT, f"line:{ln.id}", ln.amount_fen, payout=p, line=ln,
                             payout_fen=p.amount_fen, payments=p.debits_expected)
            return
        if not p.debits_expected:
            for ln in lines:
                self.brk(BreakType.BANK_ONLY, f"line:{ln.id}", ln.amount_fen, payout=p, line=ln,
                         payout_status=p.status, why="payout not recorded as paid")
            self.covered.add(p.id)
            return
        total = sum(ln.amount_fen for ln in lines)
        if total == p.amount_fen:
            for ln in lines:
                self.match(ln, p, Rule.E2E if len(lines) == 1 else Rule.E2E_SPLIT)
            return
        exact = next((ln for ln in lines if ln.amount_fen == p.amount_fen), None)
        if exact is not None:
            self.match(exact, p, Rule.E2E)
            for ln in lines:
                if ln is not exact:
                    self.brk(BreakType.DUPLICATE_DEBIT, f"line:{ln.id}", ln.amount_fen, payout=p, line=ln,
                             first_line_id=exact.id, payout_fen=p.amount_fen)
            return
        first = lines[0]
        self.covered.add(p.id)
        self.brk(BreakType.AMOUNT_MISMATCH, f"payout:{p.id}", total - p.amount_fen, payout=p, line=first,
                 payout_fen=p.amount_fen, bank_fen=total, line_ids=[ln.id for ln in lines][:50])

    def batch(self, ln: Line, group: list[Payout]) -> None:
        """One batch booking (PmtInfId) for many payouts: count and total must agree."""
        total = sum(p.amount_fen for p in group)
        count_ok = ln.batch_count is None or ln.batch_count == len(group)
        if count_ok and ln.amount_fen == total and all(p.status in PAID for p in group):
            for p in group:
                self.match(ln, p, Rule.BATCH)
            return
        for p in group:
            self.covered.add(p.id)
        self.brk(BreakType.AMOUNT_MISMATCH, f"batch:{ln.id}", ln.amount_fen - total, line=ln,
                 pmt_inf_id=ln.pmt_inf_id, payout_ids=[p.id for p in group][:50], payout_count=len(group),
                 bank_count=ln.batch_count, payout_fen=total, bank_fen=ln.amount_fen)

    def by_rules(self, lines: list[Line]) -> None:
        """Lines with no key of ours: amount, masked account, booking date within the window; else bank_only.

        Candidates are looked up by amount (an index built once), not by a scan of every payout per line."""
        by_amount: dict[int, list[Payout]] = defaultdict(list)
        if lines:
            for p in self.payouts.values():
                if p.status in PAID:
                    by_amount[p.amount_fen].append(p)
        for ln in lines:
            candidates = [p for p in by_amount.get(ln.amount_fen, ()) if p.id not in self.covered
                          and self.in_window(p, ln)
                          and (ln.account_masked is None or p.account_masked is None
                               or masked_tail(p.account_masked) == masked_tail(ln.account_masked))]
            if candidates and (ln.account_masked is not None or len(candidates) == 1):
                assert ln.booking_date is not None
                booked = ln.booking_date
                best = min(candidates, key=lambda p: (abs((booked - p.value_date).days), p.id))
                self.match(ln, best, Rule.AMOUNT_DATE)
                continue
            self.brk(BreakType.BANK_ONLY, f"line:{ln.id}", ln.amount_fen, line=ln,
                     why="no payout of ours", candidates=len(candidates))

    def in_window(self, p: Payout, ln: Line) -> bool:
        return ln.booking_date is not None and p.value_date <= ln.booking_date <= self.due(p)

    def reversals(self, lines: Iterable[Line]) -> None:
        """A reversal (RvslInd) or a credit back under the key of a payout paid: money returned by the bank."""
        for ln in lines:
            p = self.by_key.get(ln.end_to_end_id or "")
            if p is not None and p.returns and ln.direction == "CRDT":
                self.credited_back[p.id] = self.credited_back.get(p.id, 0) + 1
                continue  # the return is recorded (returns import, or a reversal handled: followup.py)
            if ln.reversal or (p is not None and p.status == "succeeded"):
                self.brk(BreakType.REVERSAL, f"line:{ln.id}", ln.amount_fen, payout=p, line=ln,
                         direction=ln.direction, rvsl_ind=ln.reversal)


def plan(lines: Sequence[Line], payouts: Sequence[Payout], statements: Sequence[StatementBalance], *,
         run_date: date, window_days: int = DEFAULT_WINDOW_DAYS,
         is_business_day: Callable[[date], bool] = _weekday) -> Plan:
    """Matches and breaks of ``run_date`` (see the module docstring); ``statements`` give balance_drift."""
    if window_days < 0:
        raise ValueError("window_days must be >= 0")
    result = _Matcher(lines, payouts, run_date, window_days, is_business_day).run()
    for st in sorted(statements, key=lambda s: s.id):
        drift = st.drift_fen
        if drift:
            result.drift_fen += drift
            result.breaks.append(Break(
                key=f"{BreakType.BALANCE_DRIFT}:statement:{st.id}", type=BreakType.BALANCE_DRIFT, amount_fen=drift,
                bank_ref=st.statement_id, booking_date=st.on,
                detail={"statement_id": st.statement_id, "account": st.account, "opening_fen": st.opening_fen,
                        "closing_fen": st.closing_fen, "booked_net_fen": st.booked_net_fen}))
    return result
