"""Issue 16, items 4-6 and 7 (returns) on SQLite and PostgreSQL: a permanent card answer marks the card unusable
and holds the merchant's later payouts for that reason without sending them, telling the merchant once; no
release to a card that just failed without an audited override; a held payout shows the reason for its
current state; a camt.054 return for a held or retry-scheduled payout raises an alert and a case."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, update
from test_payout_files import config

from conftest import NOW
from factories import Txn, import_rows, ref
from payout_helpers import (
    NAME_MISMATCH,
    SEND_AT,
    VALUE_DAY,
    Due,
    ScriptedBank,
    alerts,
    assert_families,
    make_payouts,
    new_pan,
    payout,
    rebind,
    status,
)
from settleguard.cards.vault import Vault
from settleguard.cases.service import SystemCases
from settleguard.channels.base import BankOutcome, OutcomeStatus
from settleguard.db import tables as t
from settleguard.payouts.details import detail
from settleguard.payouts.files import export_pain001, import_report
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.release import PayoutActionRefused, SameCardRefused, release
from settleguard.payouts.service import Options, send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind
from settleguard.worker import cycle
from unit.channels.samples import Detail, Pmt, Tx, camt054, pain002
from unit.channels.samples import Entry as NtryEntry

CASES = SystemCases("Asia/Shanghai")  # cases opened by an import, in the business time zone (as the CLI does)

S = PayoutStatus
SH = ZoneInfo("Asia/Shanghai")
A = "allinpay"
CLOSED = BankOutcome(OutcomeStatus.FAILED, "3039", "账户已关户", '{"RET_CODE":"3039"}', scheme=A)
BUSY = BankOutcome(OutcomeStatus.FAILED, "3028", "系统忙，请稍后再提交", '{"RET_CODE":"3028"}', retryable=True, scheme=A)
DAY2 = date(2026, 11, 19)  # the next cycle: paid on Friday 2026-11-20
VALUE2 = date(2026, 11, 20)
SEND2 = datetime.combine(VALUE2, time(9), SH)


def go(engine: Engine, bank: ScriptedBank, vault: Vault, now: datetime = SEND_AT, as_of: date = VALUE_DAY) -> Any:
    bank.new_run()
    out = send_due(engine, bank, vault, as_of=as_of, now=now.astimezone(UTC), opts=Options())
    assert_families(engine)
    return out


def worker_cycle(engine: Engine, bank: ScriptedBank, vault: Vault, now: datetime) -> Any:
    bank.new_run()
    out = cycle(engine, bank, vault, None, as_of=now.astimezone(SH).date(), now=now.astimezone(UTC))
    assert_families(engine)
    return out


def next_payout(engine: Engine, tmp_path: Path, d: Due, amount: int = 50_000) -> int:
    """The merchant's payout of the next cycle (DAY2, value date VALUE2)."""
    at = datetime.combine(DAY2, time(12), SH)
    import_rows(engine, tmp_path, [Txn(ref(), d.merchant.merchant_no, d.merchant.terminal_no, at, TxnKind.SALE,
                                       CardType.QR, amount)], now=NOW)
    settle(engine, DAY2, NOW)
    p = t.payouts
    with engine.connect() as conn:
        return int(conn.execute(select(p.c.id).where(p.c.merchant_id == d.merchant.id, p.c.cycle_date == DAY2))
                   .scalar_one())


def card(engine: Engine, merchant_id: int) -> dict[str, Any]:
    a = t.settlement_accounts
    with engine.connect() as conn:
        return dict(conn.execute(select(a).where(a.c.merchant_id == merchant_id).order_by(a.c.id.desc())).first()
                    ._mapping)


def card_events(engine: Engine, merchant_id: int) -> list[tuple[str, dict[str, Any]]]:
    e = t.card_events
    with engine.connect() as conn:
        return [(k, p) for k, p in conn.execute(select(e.c.kind, e.c.payload).where(e.c.merchant_id == merchant_id)
                                                .order_by(e.c.id))]


def payout_notices(engine: Engine, merchant_id: int) -> list[tuple[str, str]]:
    n = t.notifications
    with engine.connect() as conn:
        return [(k, d) for k, d in conn.execute(select(n.c.kind, n.c.dedupe_key).where(
            n.c.merchant_id == merchant_id, n.c.dedupe_key.like("payout:%")).order_by(n.c.id))]


def shown(engine: Engine, pid: int) -> dict[str, Any]:
    with engine.connect() as conn:
        found = detail(conn, pid)
    assert found is not None
    return found


# --- item 4: a closed account stops being the settlement card ------------------------------------------------------

@pytest.mark.parametrize("how", ["send", "export"])
def test_a_closed_account_is_marked_unusable_and_the_next_payout_is_held_for_it_without_being_sent(
    engine: Engine, vault: Vault, tmp_path: Path, how: str,
) -> None:
    d, other = make_payouts(engine, vault, tmp_path, [100_000, 70_000])
    bank = ScriptedBank(sends={d.key: [CLOSED]})
    go(engine, bank, vault)
    assert status(engine, d.payout_id) is S.HELD

    acct = card(engine, d.merchant.id)
    assert (acct["status"], acct["card_status"]) == ("unusable", "closed")
    kinds = card_events(engine, d.merchant.id)
    assert [k for k, _ in kinds][-2:] == ["status_changed", "marked_unusable"]
    marked = kinds[-1][1]
    assert (marked["payout_id"], marked["answer_code"], marked["category"], marked["status"]) == (
        d.payout_id, "3039", "card_status_abnormal", "closed")

    later = next_payout(engine, tmp_path, d)
    if how == "send":
        go(engine, bank, vault, SEND2, VALUE2)
        assert not [k for _, k in bank.calls if k.startswith(f"SG{DAY2:%Y%m%d}")]
    else:
        (tmp_path / "out").mkdir()
        res = export_pain001(engine, vault, config(), tmp_path / "out" / "b.xml", as_of=VALUE2,
                             now=SEND2.astimezone(UTC))
        assert (res.path, res.count, res.held_no_card) == (None, 0, 1)  # nothing exported to the closed account
    p = payout(engine, later)
    assert (p["status"], p["category"], p["last_code"], p["next_attempt_at"]) == (
        "held", "card_status_abnormal", "3039", None)
    assert p["account_id"] == acct["id"]
    # told once: the hold notice of the payout that found the closed account, nothing per later payout
    assert payout_notices(engine, d.merchant.id) == [("card_status_abnormal", f"payout:{d.payout_id}:card_status_abnormal")]
    reason = shown(engine, later)["diagnosis"]
    assert (reason["category"], reason["decision"]) == ("card_status_abnormal", "hold")
    assert "关户" in reason["meaning"]

    pan = new_pan()
    rebind(engine, vault, d.merchant.merchant_no, pan, SEND2 + timedelta(hours=1))
    c = worker_cycle(engine, bank, vault, SEND2 + timedelta(hours=2))
    assert c.released.released == 2
    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert status(engine, later) is S.SUCCEEDED
    assert [i.account_number for i in bank.instructions[-2:]] == [pan, pan]
    assert other.merchant.pan in [i.account_number for i in bank.instructions]


def test_an_ac04_in_a_pain002_or_a_camt054_return_marks_the_card_unusable_and_nothing_is_exported_to_it_again(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    rejected, returned = make_payouts(engine, vault, tmp_path, [100_000, 80_000])
    (tmp_path / "out").mkdir()
    res = export_pain001(engine, vault, config(), tmp_path / "out" / "a.xml", as_of=VALUE_DAY,
                         now=SEND_AT.astimezone(UTC))
    assert res.count == 2
    a = t.payout_attempts
    with engine.connect() as conn:
        pmt = {k: ref.split("|", 1)[1] for k, ref in conn.execute(select(a.c.idempotency_key, a.c.batch_ref))}
    at = SEND_AT.astimezone(UTC) + timedelta(hours=3)
    (tmp_path / "r.xml").write_text(pain002([Pmt(pmt[rejected.key], txs=[
        Tx(rejected.key, "RJCT", "AC04", info=["账户已销户"]), Tx(returned.key, "ACSC")])],
        original_message=res.message_id), encoding="utf-8")
    import_report(engine, tmp_path / "r.xml", now=at, cases=CASES)
    amount = f"{returned.amount // 100}.{returned.amount % 100:02d}"
    (tmp_path / "n.xml").write_text(camt054([NtryEntry(amount, details=[
        Detail(returned.key, amount, "AC04", ["账户已销户，退回"])])]), encoding="utf-8")
    import_report(engine, tmp_path / "n.xml", now=at + timedelta(hours=1), cases=CASES)
    assert_families(engine)

    for d in (rejected, returned):
        assert status(engine, d.payout_id) is S.HELD
        acct = card(engine, d.merchant.id)
        assert (acct["status"], acct["card_status"]) == ("unusable", "closed"), d
        assert [k for k, _ in card_events(engine, d.merchant.id)][-1] == "marked_unusable"
    later = [next_payout(engine, tmp_path, d) for d in (rejected, returned)]
    again = export_pain001(engine, vault, config(), tmp_path / "out" / "b.xml", as_of=VALUE2,
                           now=SEND2.astimezone(UTC))
    assert (again.path, again.count, again.held_no_card) == (None, 0, 2)
    assert [payout(engine, pid)["category"] for pid in later] == ["card_status_abnormal"] * 2
    assert [len(payout_notices(engine, d.merchant.id)) for d in (rejected, returned)] == [1, 1]


# --- item 5: no release to a card that just failed ---------------------------------------------------------------

def test_a_release_to_the_card_that_just_failed_is_refused_unless_overridden_with_an_audited_reason(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    d, fine = make_payouts(engine, vault, tmp_path, [100_000, 60_000])
    bank = ScriptedBank(sends={d.key: [NAME_MISMATCH], fine.key: [NAME_MISMATCH]})
    go(engine, bank, vault)
    assert (status(engine, d.payout_id), status(engine, fine.payout_id)) == (S.HELD, S.HELD)
    before = payout(engine, d.payout_id)

    with pytest.raises(SameCardRefused) as refused:
        release(engine, d.payout_id, "ops1", SEND_AT + timedelta(hours=1))
    assert "户名不符" in refused.value.zh
    assert "card" in refused.value.en
    with pytest.raises(PayoutActionRefused, match="reason"):
        release(engine, d.payout_id, "ops1", SEND_AT + timedelta(hours=1), override=True, reason="  ")
    assert payout(engine, d.payout_id) == before

    # the other merchant re-bound: its payout is released to the new card without any override
    rebind(engine, vault, fine.merchant.merchant_no, new_pan(), SEND_AT + timedelta(minutes=30))
    assert release(engine, fine.payout_id, "ops1", SEND_AT + timedelta(hours=1)) is S.RELEASED

    at = SEND_AT + timedelta(hours=2)
    assert release(engine, d.payout_id, "ops1", at, override=True,
                   reason="银行确认户名已更正 the bank confirmed the name was corrected") is S.RELEASED
    assert card(engine, d.merchant.id)["status"] == "active"
    assert [k for k, _ in card_events(engine, d.merchant.id)][-1] == "reactivated"
    au = t.audit_events
    with engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(au.c.kind).order_by(au.c.id))]
    assert kinds.count("operator.payout_release_override") == 1
    n = t.notifications
    with engine.connect() as conn:
        (told,) = conn.execute(select(n.c.payload).where(n.c.merchant_id == d.merchant.id, n.c.kind == "released")).one()
    assert "无需操作" not in told["zh"]
    assert "Nothing to do" not in told["en"]
    assert told["category"] == "card_info_error"
    assert told["steps_zh"]
    worker_cycle(engine, bank, vault, at + timedelta(minutes=5))
    assert status(engine, d.payout_id) is S.SUCCEEDED
    assert [i.account_number for i in bank.instructions if i.idempotency_key == f"{d.key}R1"] == [d.merchant.pan]


def test_a_release_is_refused_while_the_card_stayed_active_and_unchanged_since_it_failed(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    """A hold recorded while the card stayed active (e.g. before cards were marked unusable): the same check."""
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    go(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault)
    with engine.begin() as conn:
        conn.execute(update(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == d.merchant.id)
                     .values(status="active"))
    with pytest.raises(SameCardRefused):
        release(engine, d.payout_id, "ops1", SEND_AT + timedelta(hours=1))
    assert status(engine, d.payout_id) is S.HELD


# --- item 6: a held payout shows why it is held ------------------------------------------------------------------

def test_a_payout_held_without_a_card_shows_that_reason_not_an_older_attempts_and_no_next_attempt(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    (d,) = make_payouts(engine, vault, tmp_path, [100_000])
    go(engine, ScriptedBank(sends={d.key: [BUSY]}), vault)  # 3028: result unknown, inquiry, retry later
    bank = ScriptedBank(inquiries={d.key: [BankOutcome(OutcomeStatus.FAILED, "1002", "无法查询到该交易，可以重发",
                                                       '{"RET_CODE":"1002"}', retryable=True, scheme=A)]})
    go(engine, bank, vault, SEND_AT + timedelta(minutes=1))
    assert status(engine, d.payout_id) is S.RETRY_SCHEDULED
    assert payout(engine, d.payout_id)["next_attempt_at"] is not None
    with engine.begin() as conn:  # the card is gone (no event: nothing bound)
        conn.execute(update(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == d.merchant.id)
                     .values(status="replaced"))
    go(engine, bank, vault, SEND_AT + timedelta(days=1))
    assert status(engine, d.payout_id) is S.HELD

    p = payout(engine, d.payout_id)
    assert (p["category"], p["last_code"], p["next_attempt_at"]) == ("card_info_error", None, None)
    found = shown(engine, d.payout_id)
    assert found["payout"]["next_attempt_at"] is None
    reason = found["diagnosis"]
    assert (reason["category"], reason["decision"]) == ("card_info_error", "hold")
    assert "结算卡" in reason["meaning"]
    assert "先查询" not in "".join(reason["guidance"])
    assert found["diagnosis_en"]["guidance"]


# --- item 7: a return for a held or retry-scheduled payout ------------------------------------------------------

def test_a_camt054_return_for_a_held_or_a_retry_scheduled_payout_raises_an_alert_and_a_case_each(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    held, waiting = make_payouts(engine, vault, tmp_path, [100_000, 80_000])
    go(engine, ScriptedBank(sends={held.key: [NAME_MISMATCH],
                                   waiting.key: [BankOutcome(OutcomeStatus.FAILED, "3024", "日期切换正在处理",
                                                             '{"RET_CODE":"3024"}', retryable=True, scheme=A)]}),
       vault)
    assert (status(engine, held.payout_id), status(engine, waiting.payout_id)) == (S.HELD, S.RETRY_SCHEDULED)
    details = [Detail(d.key, f"{d.amount // 100}.{d.amount % 100:02d}", "AC04", ["账户已销户"]) for d in (held, waiting)]
    total = held.amount + waiting.amount
    (tmp_path / "n.xml").write_text(camt054([NtryEntry(f"{total // 100}.{total % 100:02d}", details=details)]),
                                    encoding="utf-8")

    s = import_report(engine, tmp_path / "n.xml", now=SEND_AT.astimezone(UTC) + timedelta(minutes=5),
                      cases=CASES)

    assert (status(engine, held.payout_id), status(engine, waiting.payout_id)) == (S.HELD, S.RETRY_SCHEDULED)
    assert s.returned == 0
    got = [a for a in alerts(engine, "conflicting_report")]
    assert len(got) == 2
    c, cp = t.cases, t.case_payouts
    with engine.connect() as conn:
        linked = sorted(pid for (pid,) in conn.execute(select(cp.c.payout_id).join(c, c.c.id == cp.c.case_id)
                                                       .where(c.c.dedupe_key.like("unpaid_return:%"))))
    assert linked == sorted([held.payout_id, waiting.payout_id])
    assert_families(engine)
