"""Sending payouts through a scripted bank on SQLite and PostgreSQL: statuses, attempts, ledger entries,
inquiry before any resend, recovery after a crash, holds (payouts/service.py, payouts/repository.py)."""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, update

from conftest import NOW
from factories import Merchant, Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import Vault
from settleguard.channels.base import BankChannel, BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db import tables as t
from settleguard.ledger import repository as ledger_repo
from settleguard.ledger.model import Account
from settleguard.payouts import repository as repo
from settleguard.payouts.model import IN_TRANSIT, TRANSITIONS, PayoutStatus
from settleguard.payouts.policy import DEFAULT_POLICY, retry_at
from settleguard.payouts.service import send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind

S = PayoutStatus
DAY = date(2026, 11, 18)  # Wednesday
VALUE_DAY = date(2026, 11, 19)  # T+1
SEND_AT = datetime.combine(VALUE_DAY, time(9), ZoneInfo("Asia/Shanghai"))

MAX_SEND_ATTEMPTS = DEFAULT_POLICY.max_attempts
A = "allinpay"
OK = BankOutcome(OutcomeStatus.SUCCEEDED, "0000", "交易成功", '{"RET_CODE":"0000","ERR_MSG":"交易成功"}', scheme=A)
# 3024 日期切换正在处理: a definite system fault (retry); 3028 系统忙 is "not final" (inquire first).
CUT_OVER = BankOutcome(OutcomeStatus.FAILED, "3024", "日期切换正在处理", '{"RET_CODE":"3024"}', retryable=True,
                       scheme=A)
BUSY = BankOutcome(OutcomeStatus.FAILED, "3028", "系统忙，请稍后再提交", '{"RET_CODE":"3028"}', retryable=True,
                   scheme=A)
NAME_MISMATCH = BankOutcome(OutcomeStatus.FAILED, "3031", "账号户名不符", '{"RET_CODE":"3031"}', scheme=A)
NOT_FOUND = BankOutcome(OutcomeStatus.FAILED, "1002", "无法查询到该交易，可以重发", '{"RET_CODE":"1002"}',
                        retryable=True, scheme=A)
TIMEOUT = BankOutcome(OutcomeStatus.UNKNOWN, "TIMEOUT", "交易通讯超时，请发起查询交易", "", scheme=A)


class ProcessDied(BaseException):
    """The sending process died while talking to the bank (not an Exception: the send loop records an
    exception of a channel as a result unknown; a death is not caught by anything)."""


class InquiryLoop(RuntimeError):
    """The same key was inquired about again and again within one run."""


@dataclass(frozen=True)
class Step:
    """What the scripted bank does with one send: answer ``answer``; ``executed`` says whether the money
    really moved (a timeout may hide either); ``crash`` makes the call raise after that."""

    answer: BankOutcome
    executed: bool | None = None
    crash: bool = False


class ScriptedBank:
    """A fake BankChannel with scripted answers per idempotency key; it remembers what really happened
    to each key and answers inquiries truthfully unless an inquiry answer is scripted."""

    name = "scripted"

    def __init__(self, sends: dict[str, Iterable[Step | BankOutcome]] | None = None,
                 inquiries: dict[str, Iterable[BankOutcome]] | None = None, max_inquiries_per_run: int = 3) -> None:
        self.sends = {k: deque(v) for k, v in (sends or {}).items()}
        self.inquiries = {k: deque(v) for k, v in (inquiries or {}).items()}
        self.calls: list[tuple[str, str]] = []
        self.instructions: list[PayoutInstruction] = []
        self.paid: Counter[str] = Counter()
        self.rejected: dict[str, BankOutcome] = {}
        self.max_inquiries_per_run = max_inquiries_per_run
        self._inquiries_this_run: Counter[str] = Counter()

    def new_run(self) -> None:
        self._inquiries_this_run.clear()

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        key = instruction.idempotency_key
        self.calls.append(("send", key))
        self.instructions.append(instruction)
        script = self.sends.get(key)
        step = script.popleft() if script else OK
        if isinstance(step, BankOutcome):
            step = Step(step)
        executed = step.answer.status is OutcomeStatus.SUCCEEDED if step.executed is None else step.executed
        if executed:
            self.paid[key] += 1
            self.rejected.pop(key, None)
        elif step.answer.status is OutcomeStatus.FAILED and not step.answer.retryable:
            self.rejected[key] = step.answer
        if step.crash:
            raise ProcessDied(f"killed while sending {key}")
        return step.answer

    def inquire(self, idempotency_key: str) -> BankOutcome:
        self.calls.append(("inquire", idempotency_key))
        self._inquiries_this_run[idempotency_key] += 1
        if self._inquiries_this_run[idempotency_key] > self.max_inquiries_per_run:
            raise InquiryLoop(f"{idempotency_key} inquired {self._inquiries_this_run[idempotency_key]} times in one run")
        script = self.inquiries.get(idempotency_key)
        if script:
            return script.popleft()
        if self.paid[idempotency_key]:
            return OK
        return self.rejected.get(idempotency_key, NOT_FOUND)

    def keys_called(self, key: str) -> list[str]:
        return [what for what, k in self.calls if k == key]


@dataclass(frozen=True)
class Due:
    merchant: Merchant
    payout_id: int
    key: str
    amount: int


def make_payouts(engine: Engine, vault: Vault, tmp_path: Path, amounts: list[int]) -> list[Due]:
    """One T+1 merchant per amount, each with one credit sale on DAY, settled: one created payout each."""
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, len(amounts))
    at = datetime.combine(DAY, time(12), ZoneInfo("Asia/Shanghai"))
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, a)
                                   for m, a in zip(ms, amounts, strict=True)], now=NOW)
    settle(engine, DAY, NOW)
    out = []
    with engine.connect() as conn:
        for m in ms:
            pid, key, amount = conn.execute(select(t.payouts.c.id, t.payouts.c.idempotency_key, t.payouts.c.amount_fen)
                                            .where(t.payouts.c.merchant_id == m.id)).one()
            out.append(Due(m, pid, key, amount))
    assert_consistent(engine)
    return out


def run(engine: Engine, bank: ScriptedBank, vault: Vault, now: datetime = SEND_AT) -> Any:
    bank.new_run()
    summary = send_due(engine, bank, vault, as_of=VALUE_DAY, now=now)
    assert_consistent(engine)
    return summary


def payout(engine: Engine, pid: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(t.payouts).where(t.payouts.c.id == pid)).one()._mapping)


def status(engine: Engine, pid: int) -> PayoutStatus:
    return PayoutStatus(payout(engine, pid)["status"])


def entries(engine: Engine, pid: int) -> list[str]:
    e = t.ledger_entries
    with engine.connect() as conn:
        return [k for (k,) in conn.execute(select(e.c.kind).where(e.c.payout_id == pid).order_by(e.c.id))]


def attempts(engine: Engine, pid: int) -> list[dict[str, Any]]:
    a = t.payout_attempts
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(a).where(a.c.payout_id == pid).order_by(a.c.attempt_no))]


def events(engine: Engine, pid: int) -> list[tuple[str | None, str]]:
    ev = t.payout_events
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(ev.c.from_status, ev.c.to_status).where(ev.c.payout_id == pid).order_by(ev.c.id))]


def assert_consistent(engine: Engine) -> None:
    """Money identity, and every payout's money is where its status says, with a complete event trail."""
    with engine.connect() as conn:
        assert ledger_repo.check(conn) == []
        where: dict[int, Counter[str]] = {}
        lp, le = t.ledger_postings, t.ledger_entries
        for pid, account, amount in conn.execute(
            select(le.c.payout_id, lp.c.account, lp.c.amount_fen).join(lp, lp.c.entry_id == le.c.id)
            .where(le.c.payout_id.is_not(None))
        ):
            where.setdefault(pid, Counter())[account] -= amount  # credit balances
        for p in conn.execute(select(t.payouts)).mappings():
            st = PayoutStatus(p["status"])
            bal = {a: v for a, v in where.get(p["id"], Counter()).items() if v}
            expected = {
                S.CREATED: {},
                S.SUCCEEDED: {Account.BANK_PROVISIONS: p["amount_fen"], Account.MERCHANT_PAYABLE: -p["amount_fen"]},
                S.HELD: {Account.MERCHANT_HELD: p["amount_fen"], Account.MERCHANT_PAYABLE: -p["amount_fen"]},
            }.get(st)
            if st in IN_TRANSIT:
                expected = {Account.PAYOUT_IN_TRANSIT: p["amount_fen"], Account.MERCHANT_PAYABLE: -p["amount_fen"]}
            assert bal == expected, (p["id"], st, bal)
            trail = list(conn.execute(select(t.payout_events.c.from_status, t.payout_events.c.to_status)
                                      .where(t.payout_events.c.payout_id == p["id"]).order_by(t.payout_events.c.id)))
            assert trail[0] == (None, "created")
            for (_, to), (frm, nxt) in zip(trail, trail[1:], strict=False):
                assert frm == to
                assert PayoutStatus(nxt) in TRANSITIONS[PayoutStatus(to)]
            assert trail[-1][1] == p["status"]


# --- one outcome each --------------------------------------------------------------------------------------

def test_a_payout_the_bank_accepts_succeeds_with_one_send_and_a_confirm_entry(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank()

    summary = run(engine, bank, vault)

    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert (summary.sent, summary.succeeded, summary.succeeded_fen) == (1, 1, d.amount)
    assert bank.calls == [("send", d.key)]
    (ins,) = bank.instructions
    assert (ins.idempotency_key, ins.amount_fen, ins.account_number, ins.value_date, ins.currency) == (
        d.key, d.amount, d.merchant.pan, VALUE_DAY, "CNY")
    assert d.merchant.pan not in repr(ins)
    (a,) = attempts(engine, d.payout_id)
    assert (a["kind"], a["idempotency_key"], a["attempt_no"], a["amount_fen"], a["channel"], a["outcome"]) == (
        "send", d.key, 1, d.amount, "scripted", "succeeded")
    assert (a["code"], a["message"], a["raw_response"]) == (OK.code, OK.message, OK.raw)
    assert a["requested_at"] == a["responded_at"] == SEND_AT
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_confirm"]
    assert events(engine, d.payout_id) == [(None, "created"), ("created", "submitted"), ("submitted", "succeeded")]
    with engine.connect() as conn:
        bal = ledger_repo.balances(conn, d.merchant.id)
    assert (bal[Account.MERCHANT_PAYABLE], bal[Account.PAYOUT_IN_TRANSIT], bal[Account.BANK_PROVISIONS]) == (
        0, 0, d.amount)


def test_a_succeeded_payout_is_never_sent_again(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank()
    run(engine, bank, vault)

    again = run(engine, bank, vault, SEND_AT + timedelta(days=1))

    assert (again.sent, again.inquired) == (0, 0)
    assert bank.calls == [("send", d.key)]
    assert bank.paid[d.key] == 1


def test_a_retryable_failure_is_retried_later_with_the_same_key_and_one_submit_entry(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [CUT_OVER]})

    summary = run(engine, bank, vault)

    p = payout(engine, d.payout_id)
    assert (p["status"], p["attempt_count"], p["last_code"], p["last_message"], p["category"]) == (
        "retry_scheduled", 1, CUT_OVER.code, CUT_OVER.message, "system_or_network_fault")
    due_at = retry_at(SEND_AT, 1, d.key)
    assert p["next_attempt_at"] == due_at
    assert SEND_AT + DEFAULT_POLICY.min_delay <= due_at <= SEND_AT + DEFAULT_POLICY.base
    assert summary.retry_scheduled == 1
    assert entries(engine, d.payout_id) == ["payout_submit"]
    (first,) = attempts(engine, d.payout_id)
    assert (first["category"], first["rule_id"], first["decision"]) == ("system_or_network_fault", "allinpay.3024",
                                                                        "retry")

    early = run(engine, bank, vault, due_at - timedelta(seconds=1))
    assert early.sent == 0
    assert status(engine, d.payout_id) is S.RETRY_SCHEDULED

    run(engine, bank, vault, due_at)

    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert bank.keys_called(d.key) == ["send", "send"]
    assert bank.paid[d.key] == 1
    assert [(a["attempt_no"], a["idempotency_key"], a["code"]) for a in attempts(engine, d.payout_id)] == [
        (1, d.key, CUT_OVER.code), (2, d.key, OK.code)]
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_confirm"]
    assert payout(engine, d.payout_id)["attempt_count"] == 2


def test_system_busy_on_a_send_is_inquired_about_before_the_same_key_is_resent(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    """3028 系统忙 is not a final answer (failure-codes.md §5.1): ask first; the bank then says it has
    nothing under the key (1002), and only then is the instruction resent, with the same key."""
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [BUSY]}, inquiries={d.key: [NOT_FOUND]})

    run(engine, bank, vault)
    assert status(engine, d.payout_id) is S.RESULT_UNKNOWN
    assert payout(engine, d.payout_id)["category"] == "result_unknown"

    run(engine, bank, vault, SEND_AT + timedelta(minutes=1))
    assert status(engine, d.payout_id) is S.RETRY_SCHEDULED
    run(engine, bank, vault, SEND_AT + timedelta(hours=1))

    assert bank.keys_called(d.key) == ["send", "inquire", "send"]
    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert bank.paid[d.key] == 1


def test_a_payout_that_keeps_failing_retryably_goes_to_review_after_the_last_attempt(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [CUT_OVER] * 20})
    now = SEND_AT
    for _ in range(MAX_SEND_ATTEMPTS + 2):
        run(engine, bank, vault, now)
        now += timedelta(days=1)

    assert bank.keys_called(d.key) == ["send"] * MAX_SEND_ATTEMPTS
    assert status(engine, d.payout_id) is S.NEEDS_REVIEW
    assert entries(engine, d.payout_id) == ["payout_submit"]  # still in transit: a person decides


def test_a_permanent_failure_holds_the_funds_and_is_not_resent(engine: Engine, vault: Vault,
                                                               tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [NAME_MISMATCH]})

    summary = run(engine, bank, vault)

    p = payout(engine, d.payout_id)
    assert (p["status"], p["last_code"], p["last_message"]) == ("held", "3031", "账号户名不符")
    assert (summary.held, summary.held_fen) == (1, d.amount)
    assert events(engine, d.payout_id)[-3:] == [("created", "submitted"), ("submitted", "failed"),
                                                ("failed", "held")]
    (a,) = attempts(engine, d.payout_id)
    assert (a["outcome"], a["code"], a["message"], a["raw_response"]) == (
        "failed", "3031", "账号户名不符", NAME_MISMATCH.raw)
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_hold"]
    with engine.connect() as conn:
        assert ledger_repo.balances(conn, d.merchant.id)[Account.MERCHANT_HELD] == d.amount

    run(engine, bank, vault, SEND_AT + timedelta(days=1))
    assert bank.calls == [("send", d.key)]


# --- unknown outcomes: inquire, never resend blind -----------------------------------------------------------

@pytest.mark.parametrize(("executed", "final", "calls", "ledger"), [
    pytest.param(True, S.SUCCEEDED, ["send", "inquire"], ["payout_submit", "payout_confirm"],
                 id="bank-had-paid"),
    pytest.param(False, S.SUCCEEDED, ["send", "inquire", "send"], ["payout_submit", "payout_confirm"],
                 id="bank-had-lost-it"),
])
def test_an_unknown_outcome_is_inquired_about_before_anything_is_resent(
    engine: Engine, vault: Vault, tmp_path: Path, executed: bool, final: PayoutStatus, calls: list[str],
    ledger: list[str],
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [Step(TIMEOUT, executed=executed)]})

    first = run(engine, bank, vault)

    assert first.unknown == 1
    assert status(engine, d.payout_id) is S.RESULT_UNKNOWN
    assert entries(engine, d.payout_id) == ["payout_submit"]
    assert bank.keys_called(d.key) == ["send"]

    run(engine, bank, vault, SEND_AT + timedelta(minutes=1))  # inquiry; a "not found" schedules a retry
    assert bank.keys_called(d.key) == calls[:2]
    run(engine, bank, vault, SEND_AT + timedelta(hours=1))

    assert status(engine, d.payout_id) is final
    assert bank.keys_called(d.key) == calls
    assert bank.paid[d.key] == 1
    assert entries(engine, d.payout_id) == ledger
    kinds = [(a["kind"], a["idempotency_key"], a["outcome"]) for a in attempts(engine, d.payout_id)]
    assert kinds[:2] == [("send", d.key, "unknown"), ("inquiry", d.key, "succeeded" if executed else "failed")]


def test_an_inquiry_that_reports_a_permanent_failure_holds_the_funds(engine: Engine, vault: Vault,
                                                                     tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [Step(TIMEOUT, executed=False)]}, inquiries={d.key: [NAME_MISMATCH]})
    run(engine, bank, vault)

    run(engine, bank, vault, SEND_AT + timedelta(minutes=1))

    assert status(engine, d.payout_id) is S.HELD
    assert bank.keys_called(d.key) == ["send", "inquire"]
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_hold"]
    assert [e[1] for e in events(engine, d.payout_id)] == [
        "created", "submitted", "result_unknown", "inquiry", "failed", "held"]


def test_an_unknown_payout_is_never_resent_while_inquiries_stay_unknown(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [Step(TIMEOUT, executed=True)]}, inquiries={d.key: [TIMEOUT, TIMEOUT]})
    run(engine, bank, vault)

    for minutes in (10, 20, 30, 40):
        run(engine, bank, vault, SEND_AT + timedelta(minutes=minutes))
        assert bank.keys_called(d.key).count("send") == 1

    assert status(engine, d.payout_id) is S.SUCCEEDED  # the bank finally answered: paid
    assert bank.paid[d.key] == 1
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_confirm"]


def test_a_run_inquires_about_each_unresolved_payout_at_most_once(engine: Engine, vault: Vault,
                                                                  tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [TIMEOUT]}, inquiries={d.key: [TIMEOUT] * 50}, max_inquiries_per_run=5)
    run(engine, bank, vault)

    summary = run(engine, bank, vault, SEND_AT + timedelta(minutes=10))

    assert summary.inquired == 1
    assert bank.keys_called(d.key) == ["send", "inquire"]
    assert status(engine, d.payout_id) is S.RESULT_UNKNOWN


# --- crash between recording and answering -------------------------------------------------------------------

def test_a_run_that_dies_mid_batch_is_recovered_by_inquiry_without_paying_twice(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    first, second, third = make_payouts(engine, vault, tmp_path, [100_000, 200_000, 300_000])
    bank = ScriptedBank(sends={second.key: [Step(OK, crash=True)]})  # paid, then the process dies

    with pytest.raises(ProcessDied):
        send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)

    assert [status(engine, d.payout_id) for d in (first, second, third)] == [S.SUBMITTED] * 3
    assert_consistent(engine)  # the money sits in payout_in_transit
    assert [a["outcome"] for d in (first, second, third) for a in attempts(engine, d.payout_id)] == [None] * 3
    assert bank.calls == [("send", first.key), ("send", second.key)]

    recovery = run(engine, bank, vault, SEND_AT + timedelta(minutes=5))

    assert bank.calls[2:5] == [("inquire", first.key), ("inquire", second.key), ("inquire", third.key)]
    assert recovery.inquired == 3
    assert [status(engine, d.payout_id) for d in (first, second, third)] == [
        S.SUCCEEDED, S.SUCCEEDED, S.RETRY_SCHEDULED]
    assert ("send", third.key) not in bank.calls

    run(engine, bank, vault, SEND_AT + timedelta(hours=1))

    assert [status(engine, d.payout_id) for d in (first, second, third)] == [S.SUCCEEDED] * 3
    assert bank.paid == Counter({first.key: 1, second.key: 1, third.key: 1})
    assert [k for what, k in bank.calls if what == "send"] == [first.key, second.key, third.key]
    for d in (first, second, third):
        assert entries(engine, d.payout_id) == ["payout_submit", "payout_confirm"]
    assert [e[1] for e in events(engine, second.payout_id)] == [
        "created", "submitted", "result_unknown", "inquiry", "succeeded"]


def test_a_run_that_dies_before_the_bank_got_the_instruction_resends_it_once_after_inquiry(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [Step(OK, executed=False, crash=True)]})
    with pytest.raises(ProcessDied):
        send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)

    run(engine, bank, vault, SEND_AT + timedelta(minutes=5))
    run(engine, bank, vault, SEND_AT + timedelta(hours=1))

    assert bank.keys_called(d.key) == ["send", "inquire", "send"]
    assert bank.paid[d.key] == 1
    assert status(engine, d.payout_id) is S.SUCCEEDED


# --- no usable card ------------------------------------------------------------------------------------------

def test_a_payout_whose_merchant_has_no_active_settlement_account_is_held_without_calling_the_bank(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    carded, cardless = make_payouts(engine, vault, tmp_path, [100_000, 50_000])
    with engine.begin() as conn:
        conn.execute(update(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == cardless.merchant.id)
                     .values(status="unusable"))
    bank = ScriptedBank()

    summary = run(engine, bank, vault)

    assert bank.calls == [("send", carded.key)]
    assert status(engine, carded.payout_id) is S.SUCCEEDED
    assert status(engine, cardless.payout_id) is S.HELD
    assert (summary.held, summary.held_fen) == (1, cardless.amount)
    assert entries(engine, cardless.payout_id) == ["payout_submit", "payout_hold"]
    assert [e[1] for e in events(engine, cardless.payout_id)] == ["created", "submitted", "failed", "held"]
    assert attempts(engine, cardless.payout_id) == []
    with engine.connect() as conn:
        assert ledger_repo.balances(conn, cardless.merchant.id)[Account.MERCHANT_HELD] == cardless.amount


def test_payouts_are_not_sent_before_their_value_date(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank()

    bank.new_run()
    summary = send_due(engine, bank, vault, as_of=DAY, now=SEND_AT - timedelta(days=1))

    assert summary.sent == 0
    assert bank.calls == []
    assert status(engine, d.payout_id) is S.CREATED


# --- the repository enforces the transition table -----------------------------------------------------------

def test_status_changes_in_the_database_follow_only_the_transition_table(engine: Engine, vault: Vault,
                                                                          tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    rng = random.Random(1120)
    current = S.CREATED
    allowed_steps = refused_steps = 0
    for i in range(60):
        target = rng.choice(list(PayoutStatus))
        n_events = len(events(engine, d.payout_id))
        change = repo.StatusChange(d.payout_id, target, f"walk step {i}")
        if target in TRANSITIONS[current]:
            with engine.begin() as conn:
                repo.change_status(conn, [change], NOW)
            assert events(engine, d.payout_id)[-1] == (str(current), str(target))
            current = target
            allowed_steps += 1
        else:
            with pytest.raises(repo.ConcurrentChange), engine.begin() as conn:
                repo.change_status(conn, [change], NOW)
            assert len(events(engine, d.payout_id)) == n_events
            refused_steps += 1
        assert status(engine, d.payout_id) is current
        if not TRANSITIONS[current]:
            break
    assert allowed_steps
    assert refused_steps


@pytest.mark.parametrize("start", [S.SUCCEEDED, S.CANCELLED])
def test_no_payout_can_be_moved_back_to_created(engine: Engine, vault: Vault, tmp_path: Path,
                                                start: PayoutStatus) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    path = {S.SUBMITTED: [S.SUBMITTED], S.SUCCEEDED: [S.SUBMITTED, S.SUCCEEDED], S.CANCELLED: [S.CANCELLED]}[start]
    for step in path:
        with engine.begin() as conn:
            repo.change_status(conn, [repo.StatusChange(d.payout_id, step, "setup")], NOW)

    with pytest.raises(repo.ConcurrentChange), engine.begin() as conn:
        repo.change_status(conn, [repo.StatusChange(d.payout_id, S.CREATED, "back to the start")], NOW)
    assert status(engine, d.payout_id) is start


def test_a_batch_with_one_illegal_change_changes_nothing(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    a, b = make_payouts(engine, vault, tmp_path, [100_000, 200_000])
    with engine.begin() as conn:
        repo.change_status(conn, [repo.StatusChange(b.payout_id, S.SUBMITTED, "x")], NOW)

    with pytest.raises(repo.ConcurrentChange, match=str(b.payout_id)), engine.begin() as conn:
        repo.change_status(conn, [repo.StatusChange(a.payout_id, S.SUBMITTED, "y"),
                                  repo.StatusChange(b.payout_id, S.SUBMITTED, "y")], NOW)

    assert (status(engine, a.payout_id), status(engine, b.payout_id)) == (S.CREATED, S.SUBMITTED)


def test_the_scripted_bank_satisfies_the_channel_protocol() -> None:
    assert isinstance(ScriptedBank(), BankChannel)
