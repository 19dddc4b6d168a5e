"""The payout lifecycle after a failure, on SQLite and PostgreSQL: split for a known single-payment limit,
hold and release by card re-binding (a new instruction to the new card), operator release and cancel,
the per-bank circuit breaker, insufficient funds (payouts/service.py, policy.py, circuit.py, release.py,
worker.py)."""

from __future__ import annotations

import contextlib
from collections import deque
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, update
from test_payout_send import ProcessDied

from payout_helpers import (
    CUT_OVER,
    NAME_MISMATCH,
    OK,
    SEND_AT,
    TIMEOUT,
    VALUE_DAY,
    LimitedBank,
    ScriptedBank,
    Step,
    alerts,
    assert_families,
    attempts,
    balances,
    entries,
    events,
    make_payouts,
    new_pan,
    parts,
    payout,
    rebind,
    set_bank,
    status,
)
from settleguard.cards.vault import Vault
from settleguard.channels.base import BankOutcome, OutcomeStatus
from settleguard.db import tables as t
from settleguard.ledger.model import Account
from settleguard.payouts import repository as repo
from settleguard.payouts.circuit import BreakerPolicy, CircuitState
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.policy import DEFAULT_POLICY, on_business_day
from settleguard.payouts.release import PayoutActionRefused, cancel, release, release_for_card_events
from settleguard.payouts.service import Options, SendSummary, send_due
from settleguard.worker import cycle

S = PayoutStatus
A = "allinpay"
SH = ZoneInfo("Asia/Shanghai")
OVER_LIMIT = BankOutcome(OutcomeStatus.FAILED, "3013", "超出提款限额", '{"RET_CODE":"3013"}', scheme=A)
RISK = BankOutcome(OutcomeStatus.FAILED, "3005", "交易风险控制拒绝", '{"RET_CODE":"3005"}', scheme=A)
SHORT = BankOutcome(OutcomeStatus.FAILED, "3008", "余额不足", '{"RET_CODE":"3008"}', retryable=True, scheme=A)
REVOKED = BankOutcome(OutcomeStatus.FAILED, "0002", "交易已撤销", '{"RET_CODE":"0002"}', scheme=A)  # unknown: review


def go(engine: Engine, bank: ScriptedBank, vault: Vault, now: datetime = SEND_AT, opts: Options | None = None,
       as_of: date = VALUE_DAY) -> SendSummary:
    bank.new_run()
    now = now.astimezone(UTC)  # as in production (Runtime.now): aware UTC times
    summary = send_due(engine, bank, vault, as_of=as_of, now=now, opts=opts or Options())
    assert_families(engine)
    return summary


def worker_cycle(engine: Engine, bank: ScriptedBank, vault: Vault, now: datetime) -> Any:
    bank.new_run()
    out = cycle(engine, bank, vault, None, as_of=now.astimezone(SH).date(), now=now.astimezone(UTC))
    assert_families(engine)
    return out


def sent_accounts(bank: ScriptedBank) -> list[tuple[str, str]]:
    return [(i.idempotency_key, i.account_number) for i in bank.instructions]


def snapshot(engine: Engine, pid: int) -> tuple[Any, ...]:
    """Everything an operator action could change about one payout."""
    return (payout(engine, pid), events(engine, pid), entries(engine, pid), len(attempts(engine, pid)))


# --- limit exceeded: split --------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit_fen", [300_000, 250_000, 99_999, 1])
def test_a_payout_over_the_channels_single_payment_limit_is_split_into_parts_that_sum_exactly(
    engine: Engine, vault: Vault, tmp_path: Path, limit_fen: int,
) -> None:
    small = limit_fen == 1
    (d,) = make_payouts(engine, vault, tmp_path, [23 if small else 1_000_000])
    bank = LimitedBank({"personal": limit_fen, "corporate": 10**9}, sends={d.key: [OVER_LIMIT]})

    summary = go(engine, bank, vault)

    p = payout(engine, d.payout_id)
    assert (p["status"], p["category"], summary.split) == ("split", "limit_exceeded", 1)
    ps = parts(engine, d.payout_id)
    n = -(-d.amount // limit_fen)
    assert len(ps) == n
    assert [x["idempotency_key"] for x in ps] == [f"{d.key}S{i}" for i in range(1, n + 1)]
    assert sum(x["amount_fen"] for x in ps) == d.amount
    assert all(0 < x["amount_fen"] <= limit_fen for x in ps)
    assert max(x["amount_fen"] for x in ps) - min(x["amount_fen"] for x in ps) <= 1  # as even as possible
    assert all(x["status"] == "succeeded" for x in ps)
    assert bank.paid[d.key] == 0
    assert all(bank.paid[x["idempotency_key"]] == 1 for x in ps)
    assert [k for k, _ in sent_accounts(bank)] == [d.key] + [x["idempotency_key"] for x in ps]
    assert {acct for _, acct in sent_accounts(bank)} == {d.merchant.pan}
    assert entries(engine, d.payout_id) == ["payout_submit"]  # the parts are funded from the parent's transit
    assert all(entries(engine, x["id"]) == ["payout_confirm"] for x in ps)
    bal = balances(engine, d.merchant.id)
    assert (bal[Account.MERCHANT_PAYABLE], bal[Account.PAYOUT_IN_TRANSIT], bal[Account.BANK_PROVISIONS]) == (
        0, 0, d.amount)
    assert events(engine, d.payout_id)[-2:] == [("submitted", "failed"), ("failed", "split")]

    again = go(engine, bank, vault, SEND_AT + timedelta(days=1))
    assert (again.sent, again.inquired) == (0, 0)


def test_a_part_that_fails_on_a_card_problem_is_held_alone_and_paid_to_the_new_card_after_rebinding(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [1_000_000])
    bank = LimitedBank({"personal": 400_000}, sends={d.key: [OVER_LIMIT], f"{d.key}S2": [NAME_MISMATCH]})
    go(engine, bank, vault)
    p1, p2, p3 = parts(engine, d.payout_id)
    assert [p1["status"], p2["status"], p3["status"]] == ["succeeded", "held", "succeeded"]
    assert balances(engine, d.merchant.id)[Account.MERCHANT_HELD] == p2["amount_fen"]

    pan = new_pan()
    rebind(engine, vault, d.merchant.merchant_no, pan, SEND_AT + timedelta(hours=1))
    worker_cycle(engine, bank, vault, SEND_AT + timedelta(hours=2))

    assert status(engine, p2["id"]) is S.SUCCEEDED
    assert sent_accounts(bank)[-1] == (f"{d.key}S2R1", pan)
    assert status(engine, d.payout_id) is S.SPLIT
    bal = balances(engine, d.merchant.id)
    assert (bal[Account.MERCHANT_HELD], bal[Account.PAYOUT_IN_TRANSIT], bal[Account.BANK_PROVISIONS]) == (
        0, 0, d.amount)


@pytest.mark.parametrize("limits", [{}, {"personal": None}, {"personal": 5_000_000}], ids=["no-limit-method",
                                                                                          "unknown", "not-below"])
def test_limit_exceeded_without_a_usable_known_limit_is_retried_in_the_next_business_day_window(
    engine: Engine, vault: Vault, tmp_path: Path, limits: dict[str, int | None],
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [1_000_000])
    bank: ScriptedBank = (ScriptedBank(sends={d.key: [OVER_LIMIT]}) if not limits
                          else LimitedBank(limits, sends={d.key: [OVER_LIMIT]}))
    friday_evening = datetime(2026, 11, 20, 20, 0, tzinfo=SH)

    go(engine, bank, vault, friday_evening)

    p = payout(engine, d.payout_id)
    monday_9 = datetime(2026, 11, 23, 9, 0, tzinfo=SH)  # Saturday and Sunday are not bank business days
    assert (p["status"], p["category"], p["next_attempt_at"]) == ("retry_scheduled", "limit_exceeded", monday_9)
    assert parts(engine, d.payout_id) == []
    go(engine, bank, vault, monday_9 - timedelta(minutes=1))
    assert bank.keys_called(d.key) == ["send"]
    go(engine, bank, vault, monday_9)
    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert bank.keys_called(d.key) == ["send", "send"]


# --- hold and release by re-binding ----------------------------------------------------------------------------

def test_a_card_info_hold_is_released_by_rebinding_and_paid_to_the_new_card_under_a_new_key(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    d, other = make_payouts(engine, vault, tmp_path, [100_000, 70_000])
    bank = ScriptedBank(sends={d.key: [NAME_MISMATCH]})
    go(engine, bank, vault)
    assert status(engine, d.payout_id) is S.HELD
    assert payout(engine, d.payout_id)["category"] == "card_info_error"
    nothing = worker_cycle(engine, bank, vault, SEND_AT + timedelta(minutes=30))  # no re-binding yet
    assert (nothing.released.released, nothing.send.sent) == (0, 0)

    pan = new_pan()
    bound = rebind(engine, vault, d.merchant.merchant_no, pan, SEND_AT + timedelta(hours=1))
    assert bound.rebound
    c = worker_cycle(engine, bank, vault, SEND_AT + timedelta(hours=2))

    assert (c.released.released, c.released.released_fen) == (1, d.amount)
    assert status(engine, d.payout_id) is S.SUCCEEDED
    new_key = f"{d.key}R1"
    assert sent_accounts(bank) == [(d.key, d.merchant.pan), (other.key, other.merchant.pan), (new_key, pan)]
    assert bank.paid == {other.key: 1, new_key: 1}
    first, second = attempts(engine, d.payout_id)
    assert (first["idempotency_key"], second["idempotency_key"], second["account_id"]) == (
        d.key, new_key, bound.account_id)
    assert first["account_id"] != bound.account_id
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_hold", "payout_release", "payout_confirm"]
    assert [e[1] for e in events(engine, d.payout_id)] == [
        "created", "submitted", "failed", "held", "released", "submitted", "succeeded"]
    p = payout(engine, d.payout_id)
    assert (p["instruction_no"], p["account_id"]) == (1, bound.account_id)

    later = worker_cycle(engine, bank, vault, SEND_AT + timedelta(days=1))
    assert (later.released.released, later.send.sent, later.send.inquired) == (0, 0, 0)
    assert d.merchant.pan not in [acct for _, acct in sent_accounts(bank)[2:]]


def test_a_hold_that_happens_after_the_merchant_already_rebound_is_still_released_to_the_new_card(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    """The payout was in flight to the old card (timeout) when the merchant re-bound; the worker consumed the
    card event, and only then did the inquiry say "name mismatch". The payout must not stay held forever."""
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [Step(TIMEOUT, executed=False)]}, inquiries={d.key: [NAME_MISMATCH]})
    go(engine, bank, vault)
    assert status(engine, d.payout_id) is S.RESULT_UNKNOWN
    pan = new_pan()
    rebind(engine, vault, d.merchant.merchant_no, pan, SEND_AT + timedelta(minutes=5))

    worker_cycle(engine, bank, vault, SEND_AT + timedelta(minutes=10))  # events read, then the inquiry holds it
    assert status(engine, d.payout_id) is S.HELD
    worker_cycle(engine, bank, vault, SEND_AT + timedelta(minutes=20))

    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert sent_accounts(bank) == [(d.key, d.merchant.pan), (f"{d.key}R1", pan)]


def test_a_restored_card_status_releases_a_card_status_hold(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    frozen = BankOutcome(OutcomeStatus.FAILED, "3017", "账户已冻结", '{"RET_CODE":"3017"}', scheme=A)
    bank = ScriptedBank(sends={d.key: [frozen]})
    go(engine, bank, vault)
    assert payout(engine, d.payout_id)["category"] == "card_status_abnormal"
    with engine.begin() as conn:
        account_id = conn.execute(select(t.settlement_accounts.c.id).where(
            t.settlement_accounts.c.merchant_id == d.merchant.id)).scalar_one()
        # the frozen answer marked the card unusable; a status inquiry finds it normal again (cards.service)
        conn.execute(update(t.settlement_accounts).where(t.settlement_accounts.c.id == account_id)
                     .values(status="active", card_status="normal"))
        conn.execute(insert(t.card_events).values(
            merchant_id=d.merchant.id, account_id=account_id, kind="status_changed",
            payload={"from": "frozen", "to": "normal"}, actor="status-check", created_at=SEND_AT + timedelta(hours=1)))

    worker_cycle(engine, bank, vault, SEND_AT + timedelta(hours=2))

    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert sent_accounts(bank)[-1] == (f"{d.key}R1", d.merchant.pan)


def test_a_risk_hold_is_not_released_by_rebinding_but_an_operator_can_release_it(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [RISK]})
    go(engine, bank, vault)
    p = payout(engine, d.payout_id)
    assert (p["status"], p["category"]) == ("held", "risk_or_compliance_block")

    pan = new_pan()
    rebind(engine, vault, d.merchant.merchant_no, pan, SEND_AT + timedelta(hours=1))
    c = worker_cycle(engine, bank, vault, SEND_AT + timedelta(hours=2))
    assert (c.released.events, c.released.released, c.send.sent) == (1, 0, 0)
    assert status(engine, d.payout_id) is S.HELD
    assert worker_cycle(engine, bank, vault, SEND_AT + timedelta(days=1)).send.sent == 0

    assert release(engine, d.payout_id, "ops:wang", SEND_AT + timedelta(days=1), "风控已核实") is S.RELEASED
    worker_cycle(engine, bank, vault, SEND_AT + timedelta(days=1, minutes=1))
    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert sent_accounts(bank) == [(d.key, d.merchant.pan), (f"{d.key}R1", pan)]
    assert any("ops:wang" in e for e in _reasons(engine, d.payout_id))


def _reasons(engine: Engine, pid: int) -> list[str]:
    ev = t.payout_events
    with engine.connect() as conn:
        return [r for (r,) in conn.execute(select(ev.c.reason).where(ev.c.payout_id == pid).order_by(ev.c.id))]


def test_card_events_are_acted_on_once_even_when_read_again(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [NAME_MISMATCH]})
    go(engine, bank, vault)
    rebind(engine, vault, d.merchant.merchant_no, new_pan(), SEND_AT + timedelta(hours=1))
    first = release_for_card_events(engine, SEND_AT + timedelta(hours=2))
    second = release_for_card_events(engine, SEND_AT + timedelta(hours=2))
    # the answer marked the card unusable (status_changed, marked_unusable), then the re-binding (card_rebound)
    assert (first.events, first.released, second.events, second.released) == (3, 1, 0, 0)
    assert entries(engine, d.payout_id).count("payout_release") == 1
    assert_families(engine)


# --- operators: release and cancel -----------------------------------------------------------------------------

def test_an_operator_releases_a_held_payout_and_it_is_paid_with_a_new_instruction(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [NAME_MISMATCH]})
    go(engine, bank, vault)

    # the card that failed is unchanged: only an override with a written reason pays it again (issue 16)
    assert release(engine, d.payout_id, "ops:li", SEND_AT + timedelta(hours=1), "商户确认户名", override=True,
                   reason="银行确认户名无误") is S.RELEASED
    assert status(engine, d.payout_id) is S.RELEASED
    assert balances(engine, d.merchant.id)[Account.MERCHANT_HELD] == 0
    assert_families(engine)
    with pytest.raises(PayoutActionRefused):  # released is not held: a second release is refused
        release(engine, d.payout_id, "ops:li", SEND_AT + timedelta(hours=1))
    go(engine, bank, vault, SEND_AT + timedelta(hours=1))

    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert [k for k, _ in sent_accounts(bank)] == [d.key, f"{d.key}R1"]
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_hold", "payout_release", "payout_confirm"]


def test_an_operator_releases_a_payout_under_review_and_it_is_retried_now_with_the_same_key(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    bank = ScriptedBank(sends={d.key: [REVOKED]})
    go(engine, bank, vault)
    assert status(engine, d.payout_id) is S.NEEDS_REVIEW
    assert go(engine, bank, vault, SEND_AT + timedelta(days=1)).sent == 0  # nobody retries it on their own

    at = SEND_AT + timedelta(days=1, hours=1)
    assert release(engine, d.payout_id, "ops:li", at) is S.RETRY_SCHEDULED
    assert payout(engine, d.payout_id)["next_attempt_at"] == at
    go(engine, bank, vault, at)

    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert [k for k, _ in sent_accounts(bank)] == [d.key, d.key]
    assert entries(engine, d.payout_id) == ["payout_submit", "payout_confirm"]


@pytest.mark.parametrize("start", ["created", "retry_scheduled", "held", "needs_review", "released"])
def test_cancel_with_a_reason_moves_the_money_to_merchant_held_and_nothing_pays_it(
    engine: Engine, vault: Vault, tmp_path: Path, start: str,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    first = {"created": None, "retry_scheduled": CUT_OVER, "held": NAME_MISMATCH, "needs_review": REVOKED,
             "released": NAME_MISMATCH}[start]
    bank = ScriptedBank(sends={d.key: [first]} if first else {})
    if first is not None:
        go(engine, bank, vault)
    if start == "released":
        release(engine, d.payout_id, "ops:li", SEND_AT + timedelta(minutes=1), override=True, reason="银行确认")
    assert status(engine, d.payout_id) == start
    before = entries(engine, d.payout_id)

    cancel(engine, d.payout_id, "商户已销户，线下处理", "ops:zhao", SEND_AT + timedelta(minutes=2))

    assert status(engine, d.payout_id) is S.CANCELLED
    assert events(engine, d.payout_id)[-1] == (start, "cancelled")
    assert "商户已销户" in _reasons(engine, d.payout_id)[-1]
    assert "ops:zhao" in _reasons(engine, d.payout_id)[-1]
    added = entries(engine, d.payout_id)[len(before):]
    assert added == ([] if start == "held" else ["payout_cancel"])
    bal = balances(engine, d.merchant.id)
    assert (bal[Account.MERCHANT_HELD], bal[Account.MERCHANT_PAYABLE], bal[Account.PAYOUT_IN_TRANSIT]) == (
        d.amount, 0, 0)
    assert_families(engine)
    n = len(bank.calls)
    go(engine, bank, vault, SEND_AT + timedelta(days=2))
    assert len(bank.calls) == n
    with pytest.raises(PayoutActionRefused):
        release(engine, d.payout_id, "ops:li", SEND_AT + timedelta(days=2))


@pytest.mark.parametrize("start", ["submitted", "result_unknown", "inquiry", "succeeded"])
def test_cancel_while_the_outcome_is_open_or_after_success_is_refused_and_changes_nothing(
    engine: Engine, vault: Vault, tmp_path: Path, start: str,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    if start == "submitted":
        bank = ScriptedBank(sends={d.key: [Step(OK, crash=True)]})
        with pytest.raises(ProcessDied):
            send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    else:
        bank = ScriptedBank(sends={d.key: [OK if start == "succeeded" else TIMEOUT]})
        go(engine, bank, vault)
    if start == "inquiry":
        with engine.begin() as conn:
            repo.change_status(conn, [repo.StatusChange(d.payout_id, S.INQUIRY, "inquiry in flight")], SEND_AT)
    assert status(engine, d.payout_id) == start
    before = snapshot(engine, d.payout_id)

    with pytest.raises(PayoutActionRefused) as exc:
        cancel(engine, d.payout_id, "商户要求撤销", "ops:zhao", SEND_AT + timedelta(minutes=1))

    assert start in exc.value.zh
    assert start in exc.value.en
    if start != "succeeded":
        assert "inquire first" in exc.value.en
        assert "请先查询" in exc.value.zh
    assert snapshot(engine, d.payout_id) == before
    assert_families(engine)


@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
def test_cancel_without_a_reason_is_refused_and_changes_nothing(engine: Engine, vault: Vault, tmp_path: Path,
                                                                reason: str) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    before = snapshot(engine, d.payout_id)
    with pytest.raises(PayoutActionRefused) as exc:
        cancel(engine, d.payout_id, reason, "ops:zhao", SEND_AT)
    assert "原因" in exc.value.zh
    assert "reason" in exc.value.en
    assert snapshot(engine, d.payout_id) == before


def test_operator_actions_on_unknown_payouts_or_without_a_card_are_refused(engine: Engine, vault: Vault,
                                                                             tmp_path: Path) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    with pytest.raises(PayoutActionRefused, match="no payout 999999"):
        release(engine, 999_999, "ops", SEND_AT)
    with pytest.raises(PayoutActionRefused, match="no payout 999999"):
        cancel(engine, 999_999, "x", "ops", SEND_AT)
    with pytest.raises(PayoutActionRefused, match="cannot be released"):
        release(engine, d.payout_id, "ops", SEND_AT)  # created
    set_bank(engine, [d.merchant.id], "ICBC")
    with engine.begin() as conn:
        conn.execute(t.settlement_accounts.update().where(t.settlement_accounts.c.merchant_id == d.merchant.id)
                     .values(status="unusable"))
    go(engine, ScriptedBank(), vault)  # no usable card: held without calling the bank
    assert status(engine, d.payout_id) is S.HELD
    before = snapshot(engine, d.payout_id)
    with pytest.raises(PayoutActionRefused, match="no usable card"):
        release(engine, d.payout_id, "ops", SEND_AT)
    assert snapshot(engine, d.payout_id) == before


# --- circuit breaker --------------------------------------------------------------------------------------------

class FlakyBank(ScriptedBank):
    """Answers 3024 (system fault) to every send to the banks in ``down``; inquiries truthful."""

    def __init__(self, down: set[str]) -> None:
        super().__init__()
        self.down = down
        self.banks: list[tuple[str, str]] = []

    def send(self, instruction: Any) -> BankOutcome:
        self.banks.append((instruction.bank_code, instruction.idempotency_key))
        if instruction.bank_code in self.down:
            self.calls.append(("send", instruction.idempotency_key))
            self.instructions.append(instruction)
            return CUT_OVER
        return super().send(instruction)

    def sends_to(self, bank: str) -> int:
        return sum(1 for b, _ in self.banks if b == bank)


BREAKER = Options(breaker=BreakerPolicy(threshold=3, window=timedelta(minutes=5), cool_down=timedelta(minutes=10)))


def circuit(engine: Engine, bank: str) -> Any:
    with engine.connect() as conn:
        return repo.circuits(conn, [bank]).get(bank)


def test_the_circuit_opens_after_the_threshold_pauses_the_bank_probes_once_and_closes_on_success(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    ds = make_payouts(engine, vault, tmp_path, [100_000 + i for i in range(7)])
    icbc, ccb = ds[:5], ds[5:]
    set_bank(engine, [d.merchant.id for d in ccb], "CCB")
    bank = FlakyBank({"ICBC"})

    first = go(engine, bank, vault, SEND_AT, BREAKER)

    assert (bank.sends_to("ICBC"), bank.sends_to("CCB")) == (5, 2)
    c = circuit(engine, "ICBC")
    assert (c.state, c.failures, c.opened_at) == (CircuitState.OPEN, 3, SEND_AT)
    assert circuit(engine, "CCB") is None or circuit(engine, "CCB").state is CircuitState.CLOSED
    assert [status(engine, d.payout_id) for d in icbc] == [S.RETRY_SCHEDULED] * 5
    assert [status(engine, d.payout_id) for d in ccb] == [S.SUCCEEDED] * 2
    assert first.retry_scheduled == 5
    (alert,) = alerts(engine, "circuit_open")
    assert alert["bank_code"] == "ICBC"
    assert alert["message"].index("银行") < alert["message"].index("Bank")

    paused = go(engine, bank, vault, SEND_AT + timedelta(minutes=9, seconds=59), BREAKER)
    assert bank.sends_to("ICBC") == 5  # due again (backoff <= 10 min) but the circuit is open
    assert "ICBC" in paused.skipped_banks
    with engine.connect() as conn:
        assert {p.id for p in repo.due(conn, VALUE_DAY, SEND_AT + timedelta(minutes=9, seconds=59), 100)} == {
            d.payout_id for d in icbc}

    bank.down.clear()
    probe_at = SEND_AT + timedelta(minutes=10)
    go(engine, bank, vault, probe_at, BREAKER)
    assert bank.sends_to("ICBC") == 6  # exactly one probe
    assert circuit(engine, "ICBC").state is CircuitState.CLOSED
    assert sum(status(engine, d.payout_id) is S.SUCCEEDED for d in icbc) == 1

    go(engine, bank, vault, probe_at + timedelta(minutes=1), BREAKER)
    assert [status(engine, d.payout_id) for d in icbc] == [S.SUCCEEDED] * 5
    assert bank.sends_to("ICBC") == 10
    assert len(alerts(engine, "circuit_open")) == 1


def test_a_failed_probe_reopens_the_circuit_for_another_cool_down(engine: Engine, vault: Vault,
                                                                  tmp_path: Path) -> None:
    make_payouts(engine, vault, tmp_path, [100_000 + i for i in range(4)])
    bank = FlakyBank({"ICBC"})
    go(engine, bank, vault, SEND_AT, BREAKER)
    assert bank.sends_to("ICBC") == 4

    probe_at = SEND_AT + timedelta(minutes=10)
    go(engine, bank, vault, probe_at, BREAKER)
    assert bank.sends_to("ICBC") == 5
    c = circuit(engine, "ICBC")
    assert (c.state, c.opened_at) == (CircuitState.OPEN, probe_at)
    go(engine, bank, vault, probe_at + timedelta(minutes=9), BREAKER)
    assert bank.sends_to("ICBC") == 5


def test_a_probe_lost_with_its_worker_does_not_pause_the_bank_forever(engine: Engine, vault: Vault,
                                                                      tmp_path: Path) -> None:
    ds = make_payouts(engine, vault, tmp_path, [100_000 + i for i in range(4)])
    bank = FlakyBank({"ICBC"})
    go(engine, bank, vault, SEND_AT, BREAKER)
    bank.down.clear()

    class Dies(FlakyBank):
        def send(self, instruction: Any) -> BankOutcome:
            super().send(instruction)
            raise ProcessDied("SIGKILL while probing")  # a death, not an error the send loop records

    dying = Dies(set())
    with pytest.raises(ProcessDied):
        send_due(engine, dying, vault, as_of=VALUE_DAY, now=SEND_AT + timedelta(minutes=10), opts=BREAKER)
    assert circuit(engine, "ICBC").state is CircuitState.HALF_OPEN

    now = SEND_AT + timedelta(minutes=15)
    for _ in range(6):  # the restarted worker: inquiries, and sooner or later a new probe and recovery
        now += timedelta(minutes=11)
        go(engine, bank, vault, now, BREAKER)
    assert circuit(engine, "ICBC").state is CircuitState.CLOSED
    assert [status(engine, d.payout_id) for d in ds] == [S.SUCCEEDED] * 4
    assert sum(bank.paid.values()) == 4


# --- insufficient funds -----------------------------------------------------------------------------------------

def test_insufficient_funds_retries_after_the_funding_delay_and_alerts_treasury_once_a_day(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    a, b, c = make_payouts(engine, vault, tmp_path, [100_000, 200_000, 300_000])
    bank = ScriptedBank(sends={a.key: [SHORT, SHORT], b.key: [SHORT], c.key: [SHORT]})
    morning = datetime(2026, 11, 19, 7, 30, tzinfo=SH)  # 23:30 UTC the day before

    s1 = go(engine, bank, vault, morning)

    due = on_business_day(morning + DEFAULT_POLICY.funding_delay)
    for d in (a, b, c):
        p = payout(engine, d.payout_id)
        assert (p["status"], p["category"], p["next_attempt_at"]) == ("retry_scheduled", "insufficient_funds", due)
    assert s1.categories["insufficient_funds"] == 3
    (alert,) = alerts(engine, "insufficient_funds")
    assert "余额不足" in alert["message"]
    assert "fund" in alert["message"]
    assert alert["message"].index("备付金") < alert["message"].index("Payout account")

    go(engine, bank, vault, due - timedelta(seconds=1))
    assert len(bank.calls) == 3
    go(engine, bank, vault, due)  # a fails again on the same (local) day: no second alert
    assert len(alerts(engine, "insufficient_funds")) == 1
    assert [status(engine, d.payout_id) for d in (a, b, c)] == [S.RETRY_SCHEDULED, S.SUCCEEDED, S.SUCCEEDED]
    assert payout(engine, a.payout_id)["attempt_count"] == 2

    bank.sends[a.key].append(SHORT)
    go(engine, bank, vault, datetime(2026, 11, 20, 10, 0, tzinfo=SH))  # the next day: a new alert
    assert len(alerts(engine, "insufficient_funds")) == 2
    go(engine, bank, vault, datetime(2026, 11, 20, 11, 0, tzinfo=SH))
    assert status(engine, a.payout_id) is S.SUCCEEDED
    assert bank.keys_called(a.key) == ["send"] * 4
    assert bank.paid[a.key] == 1


def test_on_a_friday_evening_the_funding_retry_waits_for_the_next_business_day() -> None:
    friday = datetime(2026, 11, 20, 23, 50, tzinfo=SH)
    assert on_business_day(friday + DEFAULT_POLICY.funding_delay) == datetime(2026, 11, 23, 9, 0, tzinfo=SH)
    assert on_business_day(datetime.combine(date(2026, 11, 19), time(12), SH)) == datetime(2026, 11, 19, 12, 0,
                                                                                         tzinfo=SH)


# --- random lifecycles --------------------------------------------------------------------------------------------

ANSWERS = [OK, CUT_OVER, NAME_MISMATCH, OVER_LIMIT, TIMEOUT, SHORT, RISK, REVOKED,
           Step(TIMEOUT, executed=True), Step(TIMEOUT, executed=False)]
ACTIONS = ["run", "rebind", "release", "cancel"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_lifecycles_keep_every_family_balanced_and_never_pay_a_key_twice(
    tmp_path_factory: pytest.TempPathFactory, vault: Vault, data: st.DataObject,
) -> None:
    """Random bank answers (also for split parts and new instructions) and random operator actions between
    worker cycles, on SQLite: after every step the ledger balances and every family's money is where its
    statuses say; no instruction key is ever paid twice; in the end nothing is lost."""
    from settleguard.db.engine import open_engine

    tmp = tmp_path_factory.mktemp("life")
    engine = open_engine(f"sqlite:///{tmp / 'sg.db'}")
    try:
        ds = make_payouts(engine, vault, tmp, data.draw(st.lists(st.integers(1_000, 2_000_000), min_size=1,
                                                                 max_size=4), label="amounts"))
        answer = st.sampled_from(ANSWERS)
        bank = LimitedBank({"personal": data.draw(st.sampled_from([None, 300_000, 999_999]), label="limit")})
        for d in ds:
            bank.sends[d.key] = deque(data.draw(st.lists(answer, max_size=4), label=f"answers {d.key}"))
        now = SEND_AT
        for step in range(data.draw(st.integers(1, 8), label="steps")):
            now += timedelta(hours=data.draw(st.integers(1, 30), label="hours"))
            action = data.draw(st.sampled_from(ACTIONS), label=f"action {step}")
            d = data.draw(st.sampled_from(ds), label="payout")
            with engine.connect() as conn:
                ids = [int(i) for (i,) in conn.execute(select(t.payouts.c.id).order_by(t.payouts.c.id))]
            pid = data.draw(st.sampled_from(ids), label="payout id")
            if action == "run":
                for key in set(bank.calls_keys()) - set(bank.sends):  # new keys (parts, R<n>) get answers too
                    bank.sends[key] = deque(data.draw(st.lists(answer, max_size=2), label=f"answers {key}"))
                worker_cycle(engine, bank, vault, now)
            elif action == "rebind":
                rebind(engine, vault, d.merchant.merchant_no, new_pan(), now)
            elif action == "release":
                with contextlib.suppress(PayoutActionRefused):
                    release(engine, pid, "ops:hyp", now.astimezone(UTC))
            else:
                with contextlib.suppress(PayoutActionRefused):
                    cancel(engine, pid, "随机撤销 random cancel", "ops:hyp", now.astimezone(UTC))
            assert_families(engine)
            assert all(n <= 1 for n in bank.paid.values()), bank.paid
        with engine.connect() as conn:
            paid_keys = [k for (k,) in conn.execute(
                select(t.payout_attempts.c.idempotency_key).where(t.payout_attempts.c.outcome == "succeeded",
                                                                  t.payout_attempts.c.kind == "send"))]
        assert len(paid_keys) == len(set(paid_keys))
    finally:
        engine.dispose()
