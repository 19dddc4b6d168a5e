"""Binding and re-binding settlement cards on SQLite and PostgreSQL (cards/service.py, cards/repository.py):
checks before the bank, four-element verification, the daily quota, the audit trail, history and events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from factories import Merchant, make_merchants
from settleguard.cards.bins import luhn_complete
from settleguard.cards.service import BindRefused, BindRequest, CardSettings, bind_card
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import Holder, SimulatedVerifier
from settleguard.db import tables as t

ID = "11010519491231002X"  # a valid resident ID (GB 11643 check digit)
PHONE = "13812345678"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
_serial = itertools.count(1)


def new_pan() -> str:
    """A Luhn-valid 19-digit ICBC debit card (BIN 621226) unique in the session."""
    return luhn_complete(f"621226{next(_serial):012d}")


def merchant(engine: Engine, vault: Vault) -> Merchant:
    with engine.begin() as conn:
        return make_merchants(conn, vault, 1)[0]  # personal, legal person 张三, one ICBC card bound


def verifier_for(*pans: str, phone: str = PHONE, **kw: Any) -> SimulatedVerifier:
    return SimulatedVerifier(1, holders={p: Holder("张三", ID, phone) for p in pans}, **kw)


def request(m: Merchant, pan: str, *, name: str = "张三", phone: str = PHONE, id_number: str = ID) -> BindRequest:
    return BindRequest(m.merchant_no, pan, name, id_number, phone, actor="ops:test")


def accounts(engine: Engine, merchant_id: int) -> list[dict[str, Any]]:
    a = t.settlement_accounts
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(a).where(a.c.merchant_id == merchant_id)
                                                       .order_by(a.c.id))]


def rows(engine: Engine, table: Any, merchant_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(table.c.merchant_id == merchant_id)
                                                       .order_by(table.c.id))]


def test_rebinding_keeps_the_old_card_as_replaced_and_emits_card_rebound(engine: Engine, vault: Vault) -> None:
    m = merchant(engine, vault)
    old_id = accounts(engine, m.id)[0]["id"]
    pan = new_pan()
    res = bind_card(engine, verifier_for(pan), vault, request(m, pan), now=NOW)

    assert res.rebound is True
    assert res.replaced_account_ids == (old_id,)
    assert (res.bank_code, res.card_type, res.card_status) == ("ICBC", "DC", "normal")
    old, new = accounts(engine, m.id)
    assert (old["status"], old["replaced_at"]) == ("replaced", NOW)
    assert new["id"] == res.account_id
    assert (new["status"], new["card_status"], new["verified_at"], new["last_status_check_at"]) == (
        "active", "normal", NOW, NOW)
    assert new["pan_masked"] == pan[:6] + "*" * 9 + pan[-4:]
    assert vault.open(new["pan_cipher"], new["pan_nonce"], new["key_version"]) == pan
    assert pan.encode() not in new["pan_cipher"]

    events = rows(engine, t.card_events, m.id)
    assert [e["kind"] for e in events] == ["card_rebound"]
    assert events[0]["account_id"] == res.account_id
    assert events[0]["payload"]["replaced_account_ids"] == [old_id]
    assert events[0]["actor"] == "ops:test"
    notes = rows(engine, t.notifications, m.id)
    assert [n["kind"] for n in notes] == ["card_rebound"]
    assert "结算卡已更换" in notes[0]["payload"]["zh"]
    assert pan not in str(notes[0]["payload"])
    audit = rows(engine, t.card_verifications, m.id)
    assert [(v["kind"], v["result"], v["bank_code"]) for v in audit] == [
        ("four_elements", "match", "00"), ("status", "normal", "00")]
    assert audit[0]["account_id"] == res.account_id


def test_a_first_binding_emits_card_bound(engine: Engine, vault: Vault) -> None:
    m = merchant(engine, vault)
    with engine.begin() as conn:
        conn.execute(delete(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == m.id))
    pan = new_pan()
    res = bind_card(engine, verifier_for(pan), vault, request(m, pan), now=NOW)
    assert res.rebound is False
    assert [e["kind"] for e in rows(engine, t.card_events, m.id)] == ["card_bound"]
    assert [a["status"] for a in accounts(engine, m.id)] == ["active"]


def test_a_third_partys_card_is_refused_before_the_bank_is_asked(engine: Engine, vault: Vault) -> None:
    m = merchant(engine, vault)
    pan = new_pan()
    bank = verifier_for(pan)
    with pytest.raises(BindRefused) as info:
        bind_card(engine, bank, vault, request(m, pan, name="李四"), now=NOW)
    assert info.value.code == "check_failed"
    assert "third_party_account" in [p.code for p in info.value.problems]
    assert bank.calls == 0
    assert [a["status"] for a in accounts(engine, m.id)] == ["active"]
    audit = rows(engine, t.card_verifications, m.id)
    assert [(v["result"], v["pan_masked"]) for v in audit] == [("refused", pan[:6] + "*" * 9 + pan[-4:])]
    assert "third_party_account" in audit[0]["bank_message"]


def test_a_wrong_digit_of_a_known_bank_reaches_the_bank_which_does_not_know_the_card(engine: Engine, vault: Vault) -> None:
    m = merchant(engine, vault)
    pan = new_pan()
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    # A known bank's card failing Luhn is only a warning (old domestic cards do), so the bank is asked,
    # and the bank does not know the number.
    with pytest.raises(BindRefused) as info:
        bind_card(engine, verifier_for(pan), vault, request(m, wrong), now=NOW)
    assert (info.value.code, info.value.bank_code) == ("card_not_found", "14")
    assert "请核对卡号" in info.value.zh
    assert wrong not in str(info.value)
    assert wrong not in repr(info.value.as_dict())
    assert [v["result"] for v in rows(engine, t.card_verifications, m.id)] == ["card_problem"]


@pytest.mark.parametrize(("status", "code"), [(CardStatus.FROZEN, "B0210"), (CardStatus.CLOSED, "B0208")])
def test_a_bank_mismatch_or_bad_status_refuses_and_keeps_the_current_card(
        engine: Engine, vault: Vault, status: CardStatus, code: str) -> None:
    m = merchant(engine, vault)
    pan, other = new_pan(), new_pan()
    bank = verifier_for(pan, other, phone="13900000000", overrides={other: status})
    with pytest.raises(BindRefused) as mismatch:
        bind_card(engine, bank, vault, request(m, pan), now=NOW)
    assert (mismatch.value.code, mismatch.value.bank_code) == ("verification_failed", "05")
    assert "预留手机号" in (mismatch.value.bank_message or "")
    with pytest.raises(BindRefused) as bad:
        bind_card(engine, bank, vault, request(m, other), now=NOW)
    assert (bad.value.code, bad.value.bank_code) == ("card_status_abnormal", code)
    assert bad.value.zh.startswith("银行返回卡状态异常")
    assert [a["status"] for a in accounts(engine, m.id)] == ["active"]
    assert rows(engine, t.card_events, m.id) == []
    assert [(v["kind"], v["result"]) for v in rows(engine, t.card_verifications, m.id)] == [
        ("four_elements", "mismatch"), ("four_elements", "card_problem")]


def test_verifications_are_limited_per_merchant_and_local_day(engine: Engine, vault: Vault) -> None:
    m, other = merchant(engine, vault), merchant(engine, vault)
    pan = new_pan()
    bank = verifier_for(pan, phone="13900000000")  # every attempt mismatches
    settings = CardSettings(attempts_per_day=3)
    with pytest.raises(BindRefused):  # a check failure does not count: it never reached the bank
        bind_card(engine, bank, vault, request(m, pan, name="王五"), now=NOW, settings=settings)
    for i in range(3):
        with pytest.raises(BindRefused) as info:
            bind_card(engine, bank, vault, request(m, pan), now=NOW + timedelta(minutes=i), settings=settings)
        assert info.value.code == "verification_failed"
    calls = bank.calls
    with pytest.raises(BindRefused) as limited:
        bind_card(engine, bank, vault, request(m, pan), now=NOW + timedelta(hours=1), settings=settings)
    assert limited.value.code == "rate_limited"
    assert "3 次" in limited.value.zh
    assert bank.calls == calls
    # another merchant is not affected
    with pytest.raises(BindRefused) as info:
        bind_card(engine, bank, vault, request(other, pan), now=NOW, settings=settings)
    assert info.value.code == "verification_failed"
    # the next calendar day in Shanghai (16:00 UTC) opens a new quota
    with pytest.raises(BindRefused) as next_day:
        bind_card(engine, bank, vault, request(m, pan), now=datetime(2026, 11, 20, 16, 0, tzinfo=UTC),
                  settings=settings)
    assert next_day.value.code == "verification_failed"
    results = [v["result"] for v in rows(engine, t.card_verifications, m.id)]
    assert results == ["refused", "mismatch", "mismatch", "mismatch", "rate_limited", "mismatch"]


def test_binding_the_current_card_again_is_refused_without_asking_the_bank(engine: Engine, vault: Vault) -> None:
    m = merchant(engine, vault)
    bank = verifier_for(m.pan)
    with pytest.raises(BindRefused) as info:
        bind_card(engine, bank, vault, request(m, m.pan), now=NOW)
    assert info.value.code == "already_bound"
    assert bank.calls == 0


def test_an_unknown_merchant_is_refused(engine: Engine, vault: Vault) -> None:
    pan = new_pan()
    with pytest.raises(BindRefused) as info:
        bind_card(engine, verifier_for(pan), vault, BindRequest("899999999999999", pan, "张三", ID, PHONE), now=NOW)
    assert info.value.code == "merchant_unknown"


def test_rebinding_twice_keeps_the_whole_history(engine: Engine, vault: Vault) -> None:
    m = merchant(engine, vault)
    first, second = new_pan(), new_pan()
    bank = verifier_for(first, second)
    a = bind_card(engine, bank, vault, request(m, first), now=NOW)
    b = bind_card(engine, bank, vault, request(m, second), now=NOW + timedelta(days=1))
    assert b.replaced_account_ids == (a.account_id,)
    assert [x["status"] for x in accounts(engine, m.id)] == ["replaced", "replaced", "active"]
    events = rows(engine, t.card_events, m.id)
    assert [e["kind"] for e in events] == ["card_rebound", "card_rebound"]
    assert events[1]["payload"]["replaced_masked"] == [first[:6] + "*" * 9 + first[-4:]]
