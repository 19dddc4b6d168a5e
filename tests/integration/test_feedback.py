"""Guidance feedback (issue 22 item 6, 反馈机制; docs/history.md) on SQLite and PostgreSQL: a merchant marks the
guidance of its own payout from the portal, support from the console (a merchant never another merchant's payout:
404; auditors may not: 403); hostile reasons are bounded and their card numbers masked before storing; the report
per category and rule counts helpful marks, fixes and the median recovery time, measured on planted attempts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from conftest import NOW
from payout_helpers import NAME_MISMATCH, OK, SEND_AT, VALUE_DAY, ScriptedBank, make_payouts
from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.feedback.model import MAX_REASON, FeedbackRefused
from settleguard.feedback.service import give, report
from settleguard.payouts.service import send_due
from settleguard.web.app import create_app

PASSWORD = "correct-horse-battery"
PAN = "6222021234567890123"  # 19 digits
HIDDEN = re.compile(r'name="(csrf_token|login_token)" value="([^"]+)"')


def sign_in(app: Any, who: str) -> tuple[TestClient, str]:
    c = TestClient(app, follow_redirects=False)
    token = dict(HIDDEN.findall(c.get("/login").text))["login_token"]
    r = c.post("/login", data={"username": who, "password": PASSWORD, "login_token": token, "next": ""})
    assert r.status_code == 303, r.text
    home = c.get(r.headers["location"])
    if home.status_code == 303:
        home = c.get(home.headers["location"])
    return c, dict(HIDDEN.findall(home.text))["csrf_token"]


def stored(engine: Engine) -> list[dict[str, Any]]:
    f = t.guidance_feedback
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(f).order_by(f.c.id))]


@pytest.fixture
def site(engine: Engine, vault: Vault, tmp_path: Path) -> Any:
    a, b, c = make_payouts(engine, vault, tmp_path, [12_345, 20_000, 33_300])
    send_due(engine, ScriptedBank(sends={a.key: [NAME_MISMATCH], b.key: [OK], c.key: [NAME_MISMATCH]}), vault,
             as_of=VALUE_DAY, now=SEND_AT)
    for name, role, merchant in (("mera", Role.MERCHANT, a.merchant.merchant_no), ("supp", Role.SUPPORT, None),
                                 ("audi", Role.AUDITOR, None), ("merb", Role.MERCHANT, b.merchant.merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name,
                 now=NOW, actor="test")
    return a, b, c, create_app(engine, now=lambda: SEND_AT + timedelta(hours=2))


def test_merchants_and_support_mark_guidance_and_a_merchant_only_its_own(engine: Engine, site: Any) -> None:
    a, b, c, app = site
    mer, token = sign_in(app, "mera")
    portal = mer.get(f"/m/{a.merchant.id}")
    assert "这条处理建议有用吗" in portal.text
    assert f'action="/payouts/{a.payout_id}/feedback"' in portal.text
    ok = mer.post(f"/payouts/{a.payout_id}/feedback", data={"helpful": "yes", "reason": "换了卡就好了",
                                                            "back": f"/m/{a.merchant.id}", "csrf_token": token})
    assert (ok.status_code, ok.headers["location"]) == (303, f"/m/{a.merchant.id}?feedback=thanks")
    assert "谢谢" in mer.get(ok.headers["location"]).text
    other = mer.post(f"/payouts/{c.payout_id}/feedback", data={"helpful": "no", "csrf_token": token})
    assert other.status_code == 404
    assert c.merchant.merchant_no not in other.text
    assert mer.post(f"/payouts/{a.payout_id}/feedback", data={"helpful": "no", "csrf_token": "x"}).status_code == 403
    assert mer.post(f"/payouts/{a.payout_id}/feedback", data={"helpful": "maybe", "csrf_token": token}).status_code \
        == 422
    merb, token_b = sign_in(app, "merb")
    paid = merb.post(f"/payouts/{b.payout_id}/feedback", data={"helpful": "yes", "csrf_token": token_b})
    assert paid.status_code == 409  # a paid payout shows no guidance to mark
    sup, token_s = sign_in(app, "supp")
    assert "这条处理建议有用吗" in sup.get(f"/payouts/{c.payout_id}").text
    staff = sup.post(f"/payouts/{c.payout_id}/feedback", data={"helpful": "no", "reason": "商户电话打不通",
                                                              "back": "//evil.example/x", "csrf_token": token_s})
    assert (staff.status_code, staff.headers["location"]) == (303, f"/payouts/{c.payout_id}?feedback=thanks")
    aud, token_a = sign_in(app, "audi")
    assert "这条处理建议有用吗" not in aud.get(f"/payouts/{c.payout_id}").text
    assert aud.post(f"/payouts/{c.payout_id}/feedback", data={"helpful": "yes", "csrf_token": token_a}).status_code \
        == 403
    rows = stored(engine)
    assert [(r["payout_id"], r["helpful"], r["source"], r["actor"], r["category"]) for r in rows] == [
        (a.payout_id, True, "merchant", "mera", "card_info_error"), (c.payout_id, False, "staff", "supp", "card_info_error")]
    (stats,) = report(engine)  # the rule the page showed is the rule the attempts recorded: one row
    assert (stats.category, stats.rule_id, stats.feedback, stats.helpful, stats.failed_payouts, stats.fixed) == (
        "card_info_error", rows[0]["rule_id"], 2, 1, 2, 0)
    page = sup.get("/guidance-feedback")
    assert page.status_code == 200
    assert "银行卡信息错误" in page.text
    assert "商户电话打不通" in page.text
    assert mer.get("/guidance-feedback").status_code == 403


def test_hostile_reasons_are_bounded_and_masked(engine: Engine, site: Any) -> None:
    a, _, c, app = site
    grouped = "6222 0212 3456 7890 123"
    hostile = f"卡号 {grouped}\x00\x1b[31m 全角 ６２２２０２１２３４５６７８９０１２３ " + "啊" * 3000 + PAN
    mer, token = sign_in(app, "mera")
    r = mer.post(f"/payouts/{a.payout_id}/feedback", data={"helpful": "no", "reason": hostile[:3990], "csrf_token": token})
    assert r.status_code == 303
    too_long = mer.post(f"/payouts/{a.payout_id}/feedback", data={"helpful": "no", "reason": "x" * 5000,
                                                                  "csrf_token": token})
    assert too_long.status_code == 400  # refused, nothing stored
    cut = "好" * (MAX_REASON - 10) + PAN  # a card number across the cut is masked before it is cut
    give(engine, c.payout_id, helpful=True, reason=cut, source="staff", actor="supp", now=SEND_AT)
    rows = stored(engine)
    assert len(rows) == 2
    for row in rows:
        text = row["reason"]
        assert len(text) <= MAX_REASON
        assert PAN not in text
        assert "1234567890" not in text
        assert "\x00" not in text
        assert "\x1b" not in text
        assert not re.search(r"[0-9０-９]{11,}", text)  # at most the 6 + 4 digits a mask keeps
    assert rows[0]["reason"].startswith("卡号 622202*********0123")
    with pytest.raises(FeedbackRefused):
        give(engine, c.payout_id, helpful=True, reason="", source="merchant", actor="mera", now=SEND_AT,
             merchant_scope=a.merchant.id)
    with pytest.raises(FeedbackRefused):
        give(engine, 10**9, helpful=True, reason="", source="staff", actor="supp", now=SEND_AT)


def test_recovery_time_is_measured_from_the_first_failure_to_the_payment(engine: Engine, vault: Vault,
                                                                          tmp_path: Path) -> None:
    x, y, z, w = make_payouts(engine, vault, tmp_path, [1_000, 2_000, 3_000, 4_000])  # not sent
    t0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)
    planted = {  # payout -> [(hours after t0, outcome)]
        x.payout_id: [(0, "failed"), (6, "succeeded")],  # fixed after 6 h
        y.payout_id: [(0, "failed"), (1, "failed"), (2, "succeeded")],  # fixed 2 h after its first failure
        z.payout_id: [(0, "failed")],  # never paid
        w.payout_id: [(-1, "succeeded"), (0, "failed")],  # paid before, not after: no fix
    }
    a = t.payout_attempts
    with engine.begin() as conn:
        for pid, steps in planted.items():
            for n, (hours, outcome) in enumerate(steps, start=1):
                at = t0 + timedelta(hours=hours)
                conn.execute(insert(a).values(
                    payout_id=pid, attempt_no=n, kind="send", idempotency_key=f"PLANT{pid}", channel="simulator",
                    amount_fen=1, requested_at=at - timedelta(seconds=5), responded_at=at, outcome=outcome,
                    code="61" if outcome == "failed" else "00", category="limit_exceeded" if outcome == "failed" else None,
                    rule_id="planted.limit" if outcome == "failed" else None,
                    decision="hold" if outcome == "failed" else "confirm"))
        conn.execute(insert(t.guidance_feedback), [
            {"payout_id": x.payout_id, "merchant_id": x.merchant.id, "category": "limit_exceeded",
             "rule_id": "planted.limit", "helpful": helpful, "reason": "", "source": "merchant", "actor": "m",
             "created_at": t0} for helpful in (True, True, False)])
    (stats,) = report(engine)
    assert stats.as_dict() == {
        "category": "limit_exceeded", "rule_id": "planted.limit", "feedback": 3, "helpful": 2, "not_helpful": 1,
        "helpful_share": pytest.approx(2 / 3), "failed_payouts": 4, "fixed": 2, "fixed_share": 0.5,
        "median_recovery_hours": 4.0, "reasons": []}
