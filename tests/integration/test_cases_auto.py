"""Automatic cases (cases/service.open_auto_cases) on SQLite and PostgreSQL: one case per trigger (needs
review, risk hold, return after success, repeated failures), a re-scan opens nothing new, the worker cycle
runs the scan."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from test_payout_send import (
    CUT_OVER,
    OK,
    SEND_AT,
    VALUE_DAY,
    ScriptedBank,
    make_payouts,
    status,
)

from settleguard.cards.vault import Vault
from settleguard.cases import model as cm
from settleguard.cases import repository as crepo
from settleguard.cases.service import open_auto_cases
from settleguard.channels.base import BankOutcome, OutcomeStatus
from settleguard.db import tables as t
from settleguard.payouts import repository as prepo
from settleguard.payouts.model import PayoutStatus as S
from settleguard.payouts.service import send_due
from settleguard.worker import cycle

BEIJING = "Asia/Shanghai"  # the business time zone (config.Settings.timezone), passed in

A = "allinpay"
RISK = BankOutcome(OutcomeStatus.FAILED, "3005", "风险交易，拒绝", '{"RET_CODE":"3005"}', scheme=A)
REVIEW = BankOutcome(OutcomeStatus.FAILED, "1000", "报文内容检查错", '{"RET_CODE":"1000"}', scheme=A)


def all_cases(engine: Engine) -> list[dict[str, Any]]:
    c = t.cases
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(c).order_by(c.c.id))]


def linked(engine: Engine, case_id: int) -> list[int]:
    with engine.connect() as conn:
        return [int(p["id"]) for p in crepo.case_payouts(conn, case_id)]


def test_each_trigger_opens_one_case_and_a_rescan_opens_none(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    review, risk, ret, flaky, fine = make_payouts(engine, vault, tmp_path, [10_000, 20_000, 30_000, 40_000, 50_000])
    bank = ScriptedBank(sends={review.key: [REVIEW], risk.key: [RISK], flaky.key: [CUT_OVER] * 3})
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    assert status(engine, review.payout_id) is S.NEEDS_REVIEW
    assert status(engine, risk.payout_id) is S.HELD
    assert status(engine, ret.payout_id) is S.SUCCEEDED
    now = SEND_AT
    for _ in range(2):  # two more failed sends of the flaky merchant's payout (its retries)
        p = t.payouts
        with engine.connect() as conn:
            nxt = conn.execute(select(p.c.next_attempt_at).where(p.c.id == flaky.payout_id)).scalar_one()
        now = max(now, nxt) + timedelta(seconds=1)
        bank.new_run()
        send_due(engine, bank, vault, as_of=now.date() + timedelta(days=3), now=now)
    # 退票: the bank returns the paid payout (as payouts/files.py applies a camt.054 return)
    with engine.begin() as conn:
        prepo.change_status(conn, [prepo.StatusChange(ret.payout_id, S.RETURNED, "退票 returned AC04",
                                                      {"category": "card_status_abnormal"})], now)
        prepo.change_status(conn, [prepo.StatusChange(ret.payout_id, S.HELD, "退票挂账 held after return")], now)

    scan_at = now + timedelta(minutes=5)
    got = open_auto_cases(engine, scan_at, tz=BEIJING)
    assert dict(got.opened) == {cm.NEEDS_REVIEW: 1, cm.RISK: 1, cm.RETURNED: 1, cm.REPEATED_FAILURES: 1}
    cases = {c["category"]: c for c in all_cases(engine)}
    assert len(cases) == 4
    assert cases[cm.NEEDS_REVIEW]["merchant_id"] == review.merchant.id
    assert cases[cm.RISK]["merchant_id"] == risk.merchant.id
    assert cases[cm.RISK]["priority"] == "p1"
    assert cases[cm.RETURNED]["merchant_id"] == ret.merchant.id
    assert cases[cm.REPEATED_FAILURES]["merchant_id"] == flaky.merchant.id
    assert all(c["source"] == "auto" and c["status"] == "open" for c in cases.values())
    assert cases[cm.RISK]["sla_due_at"] == scan_at + timedelta(hours=4)
    assert cases[cm.RETURNED]["sla_due_at"] == cm.sla_due(scan_at, cm.RETURNED, cm.Priority.P2, BEIJING)
    for cat, due in ((cm.NEEDS_REVIEW, review), (cm.RISK, risk), (cm.RETURNED, ret), (cm.REPEATED_FAILURES, flaky)):
        assert linked(engine, cases[cat]["id"]) == [due.payout_id]
    assert fine.merchant.id not in {c["merchant_id"] for c in cases.values()}

    again = open_auto_cases(engine, scan_at + timedelta(minutes=1), tz=BEIJING)
    assert sum(again.opened.values()) == 0
    # even with the cursor reset to the start, the dedupe keys open nothing twice
    with engine.begin() as conn:
        prepo.set_cursor(conn, "cases", 0, scan_at)
    assert sum(open_auto_cases(engine, scan_at + timedelta(minutes=2), tz=BEIJING).opened.values()) == 0
    assert len(all_cases(engine)) == 4


def test_two_failures_are_not_repeated_failures(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (flaky,) = make_payouts(engine, vault, tmp_path, [40_000])
    bank = ScriptedBank(sends={flaky.key: [CUT_OVER, CUT_OVER, OK]})
    now = SEND_AT
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=now)
    p = t.payouts
    with engine.connect() as conn:
        nxt = conn.execute(select(p.c.next_attempt_at).where(p.c.id == flaky.payout_id)).scalar_one()
    bank.new_run()
    send_due(engine, bank, vault, as_of=VALUE_DAY + timedelta(days=3), now=nxt + timedelta(seconds=1))
    assert sum(open_auto_cases(engine, nxt + timedelta(minutes=1), tz=BEIJING).opened.values()) == 0
    assert all_cases(engine) == []


def test_worker_cycle_opens_cases(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (risk,) = make_payouts(engine, vault, tmp_path, [20_000])
    bank = ScriptedBank(sends={risk.key: [RISK]})
    summary = cycle(engine, bank, vault, None, as_of=VALUE_DAY, now=SEND_AT)
    assert summary.cases is not None
    assert summary.cases.opened[cm.RISK] == 1
    (case,) = all_cases(engine)
    assert case["category"] == cm.RISK
    assert linked(engine, case["id"]) == [risk.payout_id]
    again = cycle(engine, bank, vault, None, as_of=VALUE_DAY, now=SEND_AT + timedelta(minutes=1))
    assert again.cases is not None
    assert sum(again.cases.opened.values()) == 0


def test_the_worker_cycle_computes_case_slas_in_the_configured_time_zone(engine: Engine, vault: Vault,
                                                                        tmp_path: Path) -> None:
    # Friday 09:00 in Beijing is still Thursday 20:00 in New York: one business day later is Monday 09:00
    # Beijing time there, but Friday 20:00 New York time here, where SETTLEGUARD_TIMEZONE says the business is.
    (review,) = make_payouts(engine, vault, tmp_path, [10_000])
    friday = SEND_AT + timedelta(days=1)
    summary = cycle(engine, ScriptedBank(sends={review.key: [REVIEW]}), vault, None, as_of=VALUE_DAY, now=friday,
                    tz="America/New_York")
    assert summary.cases is not None
    assert summary.cases.opened[cm.NEEDS_REVIEW] == 1
    (case,) = all_cases(engine)
    assert case["sla_due_at"] == friday + timedelta(days=1)
    assert case["sla_due_at"] == cm.sla_due(friday, cm.NEEDS_REVIEW, cm.Priority.P2, "America/New_York")
    assert case["sla_due_at"] != cm.sla_due(friday, cm.NEEDS_REVIEW, cm.Priority.P2, "Asia/Shanghai")
