"""Payout notices are written to the outbox in the same transaction as the hold, return, release or
payment that causes them, once per payout per cause, with one queued delivery per chosen channel
(notify/outbox.py and the hooks in payouts/service.py, payouts/release.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from notify_helpers import deliveries, notices, payout_notices, set_prefs
from sqlalchemy import Connection, Engine, select, update
from test_payout_send import ProcessDied, ScriptedBank, run

from payout_helpers import NAME_MISMATCH, OK, SEND_AT, Step, make_payouts, new_pan, rebind, status
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.diagnosis import classify
from settleguard.notify.outbox import notify_payout
from settleguard.payouts import repository as repo
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.release import release_for_card_events
from settleguard.payouts.service import DEFAULT_OPTIONS, Answer, SendSummary, apply_answers, hold_without_card

S = PayoutStatus
BEIJING = "Asia/Shanghai"  # the business time zone (config.Settings.timezone), passed in


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"

FIX_ZH = classify("allinpay", "3031", "账号户名不符").merchant_zh  # what the merchant reads (issue 18)


def test_a_name_mismatch_hold_writes_one_chinese_notice_with_the_fix_and_queues_its_channels(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    d, other = make_payouts(engine, vault, tmp_path, [123456, 5000])
    set_prefs(engine, vault, d.merchant.id, SEND_AT, webhook="http://127.0.0.1:9/hook", secret="s",
              email="m@example.com", sms="13812345678")
    bank = ScriptedBank(sends={d.key: [NAME_MISMATCH]})
    run(engine, bank, vault)
    assert status(engine, d.payout_id) is S.HELD
    [n] = payout_notices(engine, d.payout_id)
    assert n["kind"] == "card_info_error"
    assert n["dedupe_key"] == f"payout:{d.payout_id}:card_info_error"
    assert n["created_at"] == SEND_AT
    assert n["delivered_at"] is None
    zh, en = n["payload"]["zh"], n["payload"]["en"]
    assert "账号户名不符" in zh
    assert all(step in zh for step in FIX_ZH)
    assert "请核对开户名是否与银行预留户名完全一致" in zh  # the rule's note for the merchant is kept
    assert "保留银行返回原文" not in zh
    assert "Keep the bank's original" not in en
    assert f"{yuan(d.amount)} 元" in zh
    assert f"CNY {yuan(d.amount)}" in en
    with engine.connect() as conn:
        masked = conn.execute(select(t.settlement_accounts.c.pan_masked)
                              .where(t.settlement_accounts.c.merchant_id == d.merchant.id)).scalar_one()
    assert masked in zh
    assert n["payload"]["card_masked"] == masked
    assert n["payload"]["amount_fen"] == d.amount
    assert n["payload"]["payout_id"] == d.payout_id
    queued = deliveries(engine, n["id"])
    assert [(q["channel"], q["target"], q["status"], q["attempts"]) for q in queued] == [
        ("webhook", "http://127.0.0.1:9/hook", "pending", 0), ("email", "m@example.com", "pending", 0),
        ("sms", "138****5678", "pending", 0)]
    # the merchant paid without trouble is told nothing; no preferences -> the notice stays in the outbox
    assert payout_notices(engine, other.payout_id) == []


def test_without_preferences_the_notice_stays_in_the_outbox(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [800])
    run(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault)
    [n] = payout_notices(engine, d.payout_id)
    assert deliveries(engine, n["id"]) == []


def test_the_hold_and_its_notice_commit_or_roll_back_together(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [4321])
    set_prefs(engine, vault, d.merchant.id, SEND_AT, email="m@example.com")
    bank = ScriptedBank(sends={d.key: [Step(NAME_MISMATCH, crash=True)]})
    with pytest.raises(ProcessDied):
        run(engine, bank, vault)
    assert status(engine, d.payout_id) is S.SUBMITTED  # the answer was never stored
    with engine.connect() as conn:
        [p] = repo.by_ids(conn, [d.payout_id])
        aid = conn.execute(select(t.payout_attempts.c.id).where(t.payout_attempts.c.payout_id == d.payout_id)
                           ).scalar_one()
    answer = Answer(p, aid, 1, NAME_MISMATCH, False, p.bank_code)
    with engine.connect() as conn:
        tx = conn.begin()
        apply_answers(conn, [answer], SendSummary(), SEND_AT, DEFAULT_OPTIONS, lambda _p: None)
        inside = conn.execute(select(t.notifications.c.kind).where(
            t.notifications.c.dedupe_key.startswith(f"payout:{d.payout_id}:"))).scalars().all()
        assert inside == ["card_info_error"]
        assert conn.execute(select(t.payouts.c.status).where(t.payouts.c.id == d.payout_id)).scalar_one() == "held"
        tx.rollback()
    assert status(engine, d.payout_id) is S.SUBMITTED
    assert payout_notices(engine, d.payout_id) == []
    assert deliveries(engine) == []
    with engine.begin() as conn:  # now committed: both exist
        apply_answers(conn, [answer], SendSummary(), SEND_AT, DEFAULT_OPTIONS, lambda _p: None)
    assert status(engine, d.payout_id) is S.HELD
    assert [n["kind"] for n in payout_notices(engine, d.payout_id)] == ["card_info_error"]
    assert len(deliveries(engine)) == 1


def test_no_usable_card_holds_with_a_no_card_notice_in_the_same_transaction(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [2500])
    with engine.begin() as conn:
        conn.execute(update(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == d.merchant.id)
                     .values(status="unusable"))
    with engine.connect() as conn:
        tx = conn.begin()
        rows = repo.by_ids(conn, [d.payout_id])
        hold_without_card(conn, rows, SEND_AT, SendSummary(), tz=BEIJING)
        assert conn.execute(select(t.notifications.c.kind)).scalars().all() == ["no_card"]
        tx.rollback()
    assert notices(engine, d.merchant.id) == []
    run(engine, ScriptedBank(), vault)
    assert status(engine, d.payout_id) is S.HELD
    [n] = payout_notices(engine, d.payout_id)
    assert n["kind"] == "no_card"
    assert "没有可用的结算卡" in n["payload"]["zh"]
    assert f"{yuan(d.amount)} 元" in n["payload"]["zh"]


def test_one_notice_per_payout_per_cause(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [900])
    set_prefs(engine, vault, d.merchant.id, SEND_AT, webhook="http://127.0.0.1:9/h", secret="s")
    run(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault)
    diagnosis = classify("allinpay", "3031", "账号户名不符")
    with engine.begin() as conn:
        [p] = repo.by_ids(conn, [d.payout_id])
        assert notify_payout(conn, p, "card_info_error", diagnosis, p.amount_fen, SEND_AT, tz=BEIJING) is False
        assert notify_payout(conn, p, "card_info_error", diagnosis, p.amount_fen, SEND_AT, tz=BEIJING) is False
    [n] = payout_notices(engine, d.payout_id)
    assert len(deliveries(engine, n["id"])) == 1
    # a different cause of the same payout is a second notice
    with engine.begin() as conn:
        assert notify_payout(conn, p, "risk_or_compliance_block", None, p.amount_fen, SEND_AT, tz=BEIJING) is True
    assert [x["kind"] for x in payout_notices(engine, d.payout_id)] == ["card_info_error", "risk_or_compliance_block"]


def test_release_after_a_new_card_and_payment_are_told_and_a_second_hold_is_a_new_cause(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [777])
    run(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault)
    rebind(engine, vault, d.merchant.merchant_no, new_pan(), SEND_AT)
    release_for_card_events(engine, SEND_AT)
    assert status(engine, d.payout_id) is S.RELEASED
    with engine.connect() as conn:
        [p] = repo.by_ids(conn, [d.payout_id])
    new_key = p.key
    assert new_key != d.key
    run(engine, ScriptedBank(sends={new_key: [OK]}), vault)
    assert status(engine, d.payout_id) is S.SUCCEEDED
    kinds = [(n["kind"], n["dedupe_key"]) for n in payout_notices(engine, d.payout_id)]
    assert kinds == [("card_info_error", f"payout:{d.payout_id}:card_info_error"),
                     ("released", f"payout:{d.payout_id}:released"),
                     ("paid", f"payout:{d.payout_id}:paid#1")]
    released = payout_notices(engine, d.payout_id)[1]["payload"]
    assert released["card_masked"] == rebind_mask(engine, d.merchant.id)
    assert f"{yuan(d.amount)} 元" in released["zh"]


def rebind_mask(engine: Engine, merchant_id: int) -> str:
    a = t.settlement_accounts
    with engine.connect() as conn:
        return str(conn.execute(select(a.c.pan_masked).where(a.c.merchant_id == merchant_id, a.c.status == "active"))
                   .scalar_one())


def test_many_notices_at_once_equal_one_by_one_and_each_cause_is_written_once(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    """notify_payouts (the bulk report path) writes what notify_payout writes for each payout: the same
    payload and the same deliveries; a repeated item, or a cause already told, is written once."""
    from settleguard.notify.outbox import PayoutNotice, notify_payouts

    ds = make_payouts(engine, vault, tmp_path, [101, 202, 303, 404])
    set_prefs(engine, vault, ds[0].merchant.id, SEND_AT, webhook="http://127.0.0.1:9/a", secret="s")
    set_prefs(engine, vault, ds[2].merchant.id, SEND_AT, email="c@example.com", sms="13812345678")
    diagnosis = classify("allinpay", "3031", "账号户名不符")
    with engine.connect() as conn:
        by_id = {p.id: p for p in repo.by_ids(conn, [d.payout_id for d in ds])}
    ps = [by_id[d.payout_id] for d in ds]

    def written(conn: Connection) -> dict[str, tuple[dict[str, object], list[tuple[str, str]]]]:
        n, d = t.notifications, t.notification_deliveries
        return {r.dedupe_key: (r.payload, [(q.channel, q.target) for q in conn.execute(
            select(d.c.channel, d.c.target).where(d.c.notification_id == r.id).order_by(d.c.id))])
            for r in conn.execute(select(n.c.id, n.c.dedupe_key, n.c.payload))}

    with engine.connect() as conn:  # one by one, rolled back: what each payout's notice must be
        tx = conn.begin()
        for p in ps:
            assert notify_payout(conn, p, "card_info_error", diagnosis, p.amount_fen, SEND_AT, tz=BEIJING,
                                 code="3031", message="账号户名不符") is True
        alone = written(conn)
        tx.rollback()
    assert len(alone) == 4
    with engine.begin() as conn:  # the last payout is told first, on its own
        assert notify_payout(conn, ps[3], "card_info_error", diagnosis, ps[3].amount_fen, SEND_AT, tz=BEIJING,
                             code="3031", message="账号户名不符") is True
    items = [PayoutNotice(p, "card_info_error", diagnosis, p.amount_fen, "3031", "账号户名不符") for p in ps]
    with engine.begin() as conn:
        assert notify_payouts(conn, [*items, items[1]], SEND_AT, tz=BEIJING) == [True, True, True, False, False]
    with engine.connect() as conn:
        bulk = written(conn)
    assert bulk == alone
    assert bulk[f"payout:{ps[0].id}:card_info_error"][1] == [("webhook", "http://127.0.0.1:9/a")]
    assert [c for c, _ in bulk[f"payout:{ps[2].id}:card_info_error"][1]] == ["email", "sms"]
    assert bulk[f"payout:{ps[1].id}:card_info_error"][1] == []
