"""The REST API (web/) through FastAPI's TestClient on SQLite and PostgreSQL: 401/403/404 rules, CSRF,
the login rate limit, pagination, release and cancel with their ledger and audit effects, merchant
isolation over every route, errors, diagnose and metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from conftest import NOW
from payout_helpers import (
    NAME_MISMATCH,
    OK,
    SEND_AT,
    VALUE_DAY,
    Due,
    ScriptedBank,
    assert_families,
    make_payouts,
)
from settleguard.access.model import Role
from settleguard.access.service import add_user, disable_user, issue_token
from settleguard.cards.vault import Vault
from settleguard.cases.service import open_case
from settleguard.db import tables as t
from settleguard.payouts.service import send_due
from settleguard.web.app import create_app

PASSWORD = "correct-horse-battery"
SAMPLE = re.compile(r'[a-z_]+(\{[a-z_]+="(?:[^"\\\n]|\\.)*"(?:,[a-z_]+="(?:[^"\\\n]|\\.)*")*\})? -?[0-9.e+]+')
CLIENT_NOW = SEND_AT + timedelta(hours=2)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class World:
    engine: Engine
    app: FastAPI
    clock: Clock
    held_a: Due  # merchant a's payout, held (name mismatch)
    paid_b: Due  # merchant b's payout, succeeded
    held_c: Due  # merchant c's payout, held
    paid_d: Due
    tokens: dict[str, str]  # username -> bearer token

    def client(self, who: str | None = None) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        if who is not None:
            c.headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return c


@pytest.fixture
def world(engine: Engine, vault: Vault, tmp_path: Path) -> World:
    dues = make_payouts(engine, vault, tmp_path, [12_345, 20_000, 33_300, 41_000])
    a, b, c, d = dues
    bank = ScriptedBank(sends={a.key: [NAME_MISMATCH], b.key: [OK], c.key: [NAME_MISMATCH], d.key: [OK]})
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    tokens = {}
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None), ("audi", Role.AUDITOR, None),
                                 ("mera", Role.MERCHANT, a.merchant.merchant_no),
                                 ("merb", Role.MERCHANT, b.merchant.merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name.upper(),
                 now=NOW, actor="test")
        tokens[name] = issue_token(engine, username=name, name="tests", now=NOW, actor="test").token
    clock = Clock(CLIENT_NOW)
    return World(engine, create_app(engine, now=clock), clock, a, b, c, d, tokens)


def status_of(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(t.payouts.c.status).where(t.payouts.c.id == pid)).scalar_one())


def error_code(resp: Any) -> str:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message_zh"], body
    assert body["error"]["message_en"], body
    return str(body["error"]["code"])


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


# --- 401 / 403 ----------------------------------------------------------------------------------


def routes(w: World, other_payout: int, other_merchant: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every API route with concrete ids (another merchant's, for the isolation test)."""
    with w.engine.connect() as conn:
        settlement = conn.execute(select(t.settlements.c.id).where(t.settlements.c.merchant_id == other_merchant)).scalar()
        case = conn.execute(select(func.min(t.cases.c.id)).where(t.cases.c.merchant_id == other_merchant)).scalar()
        m_no, term = conn.execute(select(t.merchants.c.merchant_no, t.terminals.c.terminal_no)
                                  .join(t.terminals, t.terminals.c.merchant_id == t.merchants.c.id)
                                  .where(t.merchants.c.id == other_merchant)).first()
    sid, cid = settlement or 1, case or 1
    card = {"pan": "6212260000000000018", "name": "张三", "id_number": "11010519491231002X", "phone": "13812345678"}
    return [
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/payouts", None),
        ("GET", f"/api/v1/payouts/{other_payout}", None),
        ("POST", f"/api/v1/payouts/{other_payout}/release", {"note": "x"}),
        ("POST", f"/api/v1/payouts/{other_payout}/cancel", {"reason": "x"}),
        ("GET", f"/api/v1/payouts/{other_payout}/evidence", None),
        ("POST", "/api/v1/diagnose", {"scheme": "allinpay", "code": "3031", "message": "账号户名不符"}),
        ("POST", "/api/v1/diagnose/batch", {"items": [{"scheme": "allinpay", "code": "3031"}]}),
        ("GET", f"/api/v1/merchants/{other_merchant}", None),
        ("GET", "/api/v1/merchants", None),
        ("POST", "/api/v1/merchants", {"merchant_no": "x"}),
        ("POST", "/api/v1/merchants/import", None),
        ("PATCH", f"/api/v1/merchants/{other_merchant}", {"action": "freeze", "reason": "x"}),
        ("GET", "/metrics", None),
        ("POST", "/api/v1/cards/check", {"pan": card["pan"]}),
        ("GET", f"/api/v1/merchants/{other_merchant}/card", None),
        ("POST", f"/api/v1/merchants/{other_merchant}/card", card),
        ("GET", "/api/v1/settlements", None),
        ("GET", f"/api/v1/settlements/{sid}", None),
        ("GET", "/api/v1/cases", None),
        ("GET", f"/api/v1/cases/{cid}", None),
        ("POST", "/api/v1/cases", {"merchant_id": other_merchant, "category": "other", "title": "x"}),
        *[("POST", f"/api/v1/cases/{cid}/{action}", body) for action, body in (
            ("assign", {"assignee": "x"}), ("contact", {"party": "merchant", "method": "phone", "who": "x", "said": "x"}),
            ("note", {"body": "x"}), ("status", {"status": "waiting_bank"}), ("resolve", {"resolution": "x"}),
            ("close", None))],
        ("GET", f"/api/v1/cases/{cid}/evidence", None),
        ("GET", "/api/v1/notifications", None),
        # reconciliation (staff), terminal health and heartbeats, risk alerts (issues 20-22)
        ("GET", "/api/v1/recon/summary", None),
        ("GET", "/api/v1/recon/breaks", None),
        ("GET", "/api/v1/recon/breaks/1", None),
        ("GET", "/api/v1/recon/runs", None),
        ("GET", "/api/v1/terminals", None),
        ("GET", f"/api/v1/terminals/{term}", None),
        ("POST", f"/api/v1/terminals/{term}/heartbeat", {"battery": 80}),
        ("GET", "/api/v1/risk/alerts", None),
        ("GET", "/api/v1/day", None),  # today's cycle (issue 23 item 7)
        ("GET", f"/api/v1/risk/merchants/{m_no}", None),
        ("POST", "/api/v1/auth/logout", None),
    ]


def test_requests_without_or_with_bad_credentials_get_401(world: World) -> None:
    anon = world.client()
    for method, path, body in routes(world, world.held_a.payout_id, world.held_a.merchant.id):
        r = anon.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.text)
        assert error_code(r) == "unauthenticated"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    for header in ("Bearer sgt_not-a-token", "Basic b3A6cHc=", "Bearer ", world.tokens["oper"]):  # last: no scheme
        r = anon.get("/api/v1/payouts", headers={"Authorization": header})
        assert (r.status_code, error_code(r)) == (401, "invalid_credentials"), header
    r = anon.get("/api/v1/payouts", cookies={"sg_session": "forged"})
    assert (r.status_code, error_code(r)) == (401, "invalid_credentials")
    assert status_of(world.engine, world.held_a.payout_id) == "held"


def test_roles_beyond_their_rights_get_403_and_change_nothing(world: World) -> None:
    pid = world.held_a.payout_id
    for who in ("supp", "audi", "mera"):
        c = world.client(who)
        for action, body in (("release", {}), ("cancel", {"reason": "not allowed"})):
            r = c.post(f"/api/v1/payouts/{pid}/{action}", json=body)
            assert (r.status_code, error_code(r)) == (403, "forbidden"), (who, action)
    ma = world.client("mera")
    for method, path in (("POST", "/api/v1/diagnose"), ("POST", "/api/v1/diagnose/batch"), ("GET", "/metrics")):
        r = ma.request(method, path, json={"code": "3031", "items": [{"code": "3031"}]})
        assert (r.status_code, error_code(r)) == (403, "forbidden"), path
    for who in ("supp", "audi"):  # read-only and support staff read everything
        r = world.client(who).get(f"/api/v1/payouts/{pid}")
        assert r.status_code == 200
        assert r.json()["payout"]["status"] == "held"
        assert world.client(who).get("/metrics").status_code == 200
    assert status_of(world.engine, pid) == "held"
    assert_families(world.engine)


def test_me_tells_the_role_and_permissions(world: World) -> None:
    me = world.client("mera").get("/api/v1/me").json()
    assert me["username"] == "mera"
    assert me["role"] == "merchant"
    assert me["role_zh"] == "商户"
    assert me["merchant_id"] == world.held_a.merchant.id
    assert me["via"] == "token"
    assert me["permissions"] == ["card_bind", "card_check", "guidance_feedback", "read"]
    assert "payout_release" in world.client("oper").get("/api/v1/me").json()["permissions"]


def test_a_disabled_user_loses_its_tokens_and_sessions_at_once(world: World) -> None:
    browser = world.client()
    assert login(browser, "audi").status_code == 200
    assert browser.get("/api/v1/me").status_code == 200
    assert world.client("audi").get("/api/v1/me").status_code == 200
    disable_user(world.engine, username="audi", now=NOW, actor="test")
    assert world.client("audi").get("/api/v1/me").status_code == 401
    assert browser.get("/api/v1/me").status_code == 401
    assert login(world.client(), "audi").status_code == 401


def test_only_a_merchant_user_may_belong_to_a_merchant_in_the_database_too(world: World) -> None:
    row = {"password_hash": "x", "display_name": "x", "disabled": False, "created_at": NOW}
    for bad in ({"username": "m-none", "role": "merchant", "merchant_id": None},
                {"username": "op-with", "role": "operator", "merchant_id": world.held_a.merchant.id},
                {"username": "king", "role": "admin", "merchant_id": None}):
        with pytest.raises(IntegrityError), world.engine.begin() as conn:
            conn.execute(insert(t.users).values(**row, **bad))


# --- merchant isolation -------------------------------------------------------------------------


def test_a_merchant_user_never_reads_or_changes_another_merchants_data(world: World) -> None:
    ma = world.client("mera")
    mine, other = world.held_a, world.paid_b
    open_case(world.engine, merchant_no=other.merchant.merchant_no, category="other", title="other's case",
              actor="test", now=NOW, payout_ids=[other.payout_id], tz="Asia/Shanghai")
    secret_bits = {other.merchant.merchant_no, other.key, other.merchant.pan, str(other.amount)}
    exercised = set()
    for method, path, body in routes(world, other.payout_id, other.merchant.id):
        if path.endswith("/logout"):
            continue
        r = ma.request(method, path, json=body)
        exercised.add((method, re.sub(r"/(\d+|T\d{7})(?=/|$)", "/{id}", path)))
        assert r.status_code in (200, 403, 404), (method, path, r.status_code)
        if f"/{other.payout_id}" in path or f"/{other.merchant.id}" in path or "/terminals/" in path \
                or other.merchant.merchant_no in path:
            assert r.status_code in (403, 404), (method, path)
        for bit in secret_bits:
            assert bit not in r.text, (method, path, bit)
    # The same ids that do not exist at all answer exactly alike (no existence leak).
    for path in (f"/api/v1/payouts/{other.payout_id}", f"/api/v1/merchants/{other.merchant.id}"):
        missing = re.sub(r"/\d+$", "/999999", path)
        a, b = ma.get(path), ma.get(missing)
        assert (a.status_code, error_code(a)) == (b.status_code, error_code(b))
        assert a.status_code == 404
    # Listings are limited to the merchant's own payouts whatever the filters say.
    own = ma.get("/api/v1/payouts").json()
    assert [p["id"] for p in own["items"]] == [mine.payout_id]
    assert own["total"] == 1
    for query in (f"merchant_id={other.merchant.id}", f"merchant_no={other.merchant.merchant_no}",
                  "status=succeeded"):
        got = ma.get(f"/api/v1/payouts?{query}").json()
        assert (got["items"], got["total"]) == ([], 0), query
    assert ma.get(f"/api/v1/payouts/{mine.payout_id}").status_code == 200
    assert ma.get(f"/api/v1/merchants/{mine.merchant.id}").json()["merchant"]["merchant_no"] == mine.merchant.merchant_no
    # Every route of the API was walked.
    spec = world.client("oper").get("/api/v1/openapi.json").json()
    documented = {(m.upper(), re.sub(r"\{[^}]+\}", "{id}", p)) for p, ops in spec["paths"].items() for m in ops}
    documented.discard(("POST", "/api/v1/auth/logout"))
    documented.discard(("POST", "/api/v1/auth/login"))
    assert documented == exercised
    assert status_of(world.engine, other.payout_id) == "succeeded"


# --- sessions and CSRF ----------------------------------------------------------------------------


def test_a_session_cookie_needs_the_csrf_header_for_every_write(world: World) -> None:
    browser = world.client()
    r = login(browser, "oper")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "sg_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    csrf = r.json()["csrf_token"]
    assert r.json()["user"]["role"] == "operator"
    assert r.json()["user"]["via"] == "session"
    pid = world.held_a.payout_id
    assert browser.get(f"/api/v1/payouts/{pid}").status_code == 200  # reads need no CSRF token
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": csrf[:-1]}):
        r = browser.post(f"/api/v1/payouts/{pid}/release", json={}, headers=headers)
        assert (r.status_code, error_code(r)) == (403, "csrf_failed"), headers
    assert status_of(world.engine, pid) == "held"
    r = browser.post(f"/api/v1/payouts/{pid}/release", json={"note": "客户已确认", "override": True, "reason": "银行确认"},
                     headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert r.json() == {"id": pid, "status": "released", "status_label": {"zh": "已放行待出款", "en": "released"}}
    assert (browser.post("/api/v1/auth/logout").status_code, ) == (403, )  # logout is a write too
    assert browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser.get("/api/v1/me").status_code == 401
    with world.engine.connect() as conn:
        assert conn.execute(select(t.web_sessions)).all() == []


def test_sessions_expire(world: World) -> None:
    browser = world.client()
    assert login(browser, "supp").status_code == 200
    world.clock.at += timedelta(hours=12, seconds=1)
    r = browser.get("/api/v1/me")
    assert (r.status_code, error_code(r)) == (401, "invalid_credentials")


def test_logins_are_rate_limited_per_username_and_per_client(world: World) -> None:
    c = world.client()
    for _ in range(5):
        r = login(c, "oper", "wrong-password-1")
        assert (r.status_code, error_code(r)) == (401, "login_failed")
    r = login(c, "oper")  # even the right password, while blocked
    assert (r.status_code, error_code(r)) == (429, "too_many_attempts")
    assert int(r.headers["Retry-After"]) == 15 * 60
    assert login(c, "supp").status_code == 200  # other usernames are not blocked by op's failures
    world.clock.at += timedelta(minutes=10)
    assert int(login(c, "oper").headers["Retry-After"]) == 5 * 60
    world.clock.at += timedelta(minutes=5, seconds=1)
    assert login(c, "oper").status_code == 200  # the failures left the window
    r = login(c, "nobody", "whatever-pass")  # unknown users fail exactly like a wrong password
    assert (r.status_code, error_code(r)) == (401, "login_failed")
    for i in range(19):  # 20 failures from one address, over many usernames
        assert login(c, f"guess{i}", "whatever-pass").status_code == 401
    r = login(c, "audi")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0


# --- payouts ------------------------------------------------------------------------------------


def test_the_payout_list_is_paginated_and_filtered(world: World) -> None:
    op = world.client("oper")
    all_ids = sorted(d.payout_id for d in (world.held_a, world.paid_b, world.held_c, world.paid_d))
    first = op.get("/api/v1/payouts?limit=3").json()
    assert (first["total"], first["limit"], first["offset"]) == (4, 3, 0)
    second = op.get("/api/v1/payouts?limit=3&offset=3").json()
    assert [p["id"] for p in first["items"] + second["items"]] == all_ids
    assert op.get("/api/v1/payouts?offset=4").json() == {"items": [], "total": 4, "limit": 50, "offset": 4}
    held = op.get("/api/v1/payouts?status=held").json()
    assert [p["id"] for p in held["items"]] == [world.held_a.payout_id, world.held_c.payout_id]
    assert held["items"][0]["category"] == "card_info_error"
    assert held["items"][0]["last_code"] == "3031"
    assert held["items"][0]["amount_fen"] == world.held_a.amount
    by_category = op.get("/api/v1/payouts?category=card_info_error&limit=1").json()
    assert by_category["total"] == 2
    assert len(by_category["items"]) == 1
    by_merchant = op.get(f"/api/v1/payouts?merchant_id={world.paid_b.merchant.id}").json()
    assert [p["id"] for p in by_merchant["items"]] == [world.paid_b.payout_id]
    assert by_merchant["items"][0]["merchant_no"] == world.paid_b.merchant.merchant_no
    for query in ("limit=0", "limit=501", "offset=-1", "status=lost", "category=nope", "merchant_id=abc"):
        r = op.get(f"/api/v1/payouts?{query}")
        assert (r.status_code, error_code(r)) == (422, "validation_failed"), query
        assert r.json()["error"]["details"], query


def test_a_payout_shows_its_timeline_diagnosis_and_guidance(world: World) -> None:
    op = world.client("oper")
    pid = world.held_a.payout_id
    zh = op.get(f"/api/v1/payouts/{pid}").json()
    assert [e["to_status"] for e in zh["events"]][-1] == "held"
    assert zh["attempts"][0]["code"] == "3031"
    assert zh["attempts"][0]["idempotency_key"] == world.held_a.key
    assert zh["diagnosis"]["category"] == "card_info_error"
    assert zh["diagnosis"]["guidance"]
    assert re.search(r"[\u4e00-\u9fff]", zh["diagnosis"]["guidance"][0])
    assert zh["diagnosis_en"]["guidance"]
    assert zh["diagnosis_en"]["guidance"][0].isascii()
    en = op.get(f"/api/v1/payouts/{pid}?lang=en").json()
    assert en["diagnosis"] == zh["diagnosis_en"]
    assert en["diagnosis_en"] is None
    ok = op.get(f"/api/v1/payouts/{world.paid_b.payout_id}").json()
    assert ok["diagnosis"] is None
    assert ok["payout"]["status"] == "succeeded"
    r = op.get("/api/v1/payouts/999999")
    assert (r.status_code, error_code(r)) == (404, "payout_not_found")


def test_release_and_cancel_go_through_the_payout_services(world: World) -> None:
    op = world.client("oper")
    a, c = world.held_a.payout_id, world.held_c.payout_id
    r = op.post(f"/api/v1/payouts/{a}/release", json={"note": "商户已更正户名"})  # the card that failed, unchanged
    assert (r.status_code, error_code(r)) == (409, "payout_action_refused")
    assert "换绑新卡" in r.json()["error"]["message_zh"]
    r = op.post(f"/api/v1/payouts/{a}/release", json={"note": "商户已更正户名", "override": True})
    assert (r.status_code, error_code(r)) == (409, "payout_action_refused")  # an override needs a reason
    r = op.post(f"/api/v1/payouts/{a}/release", json={"note": "商户已更正户名", "override": True,
                                                      "reason": "银行确认户名已更正"})
    assert r.status_code == 200
    assert r.json() == {"id": a, "status": "released", "status_label": {"zh": "已放行待出款", "en": "released"}}
    r = op.post(f"/api/v1/payouts/{c}/cancel", json={"reason": "商户申请暂停结算"})
    assert r.status_code == 200
    assert r.json() == {"id": c, "status": "cancelled", "status_label": {"zh": "已撤销", "en": "cancelled"}}
    assert (status_of(world.engine, a), status_of(world.engine, c)) == ("released", "cancelled")
    with world.engine.connect() as conn:
        ev = t.payout_events
        reasons = [x for (x,) in conn.execute(select(ev.c.reason).where(ev.c.payout_id == c).order_by(ev.c.id))]
        audit = conn.execute(select(t.audit_events.c.actor, t.audit_events.c.kind, t.audit_events.c.subject_id)
                             .where(t.audit_events.c.kind.like("operator.%")).order_by(t.audit_events.c.id)).all()
        kinds = [k for (k,) in conn.execute(select(t.ledger_entries.c.kind).where(t.ledger_entries.c.payout_id == a)
                                            .order_by(t.ledger_entries.c.id))]
    assert "商户申请暂停结算" in reasons[-1]
    assert "oper" in reasons[-1]
    assert [tuple(x) for x in audit] == [("oper", "operator.payout_release_override", str(a)),
                                         ("oper", "operator.payout_cancel", str(c))]
    assert kinds[-1] == "payout_release"
    assert_families(world.engine)  # ledger check clean; every payout's money where its status says
    # Refused by the payout services: 409 with their zh/en reason, nothing changed.
    for path, body in ((f"/api/v1/payouts/{world.paid_b.payout_id}/release", {}),
                       (f"/api/v1/payouts/{c}/cancel", {"reason": "again"}),
                       (f"/api/v1/payouts/{world.paid_b.payout_id}/cancel", {"reason": "paid already"})):
        r = op.post(path, json=body)
        assert (r.status_code, error_code(r)) == (409, "payout_action_refused"), path
    r = op.post(f"/api/v1/payouts/{a}/cancel", json={"reason": "   "})
    assert (r.status_code, error_code(r)) == (422, "validation_failed")
    r = op.post("/api/v1/payouts/999999/release", json={})
    assert (r.status_code, error_code(r)) == (404, "payout_not_found")
    assert status_of(world.engine, world.paid_b.payout_id) == "succeeded"
    assert_families(world.engine)


# --- merchants, diagnose, metrics, errors ---------------------------------------------------------


def test_a_merchant_shows_masked_cards_only_and_its_payouts(world: World) -> None:
    m = world.held_a.merchant
    r = world.client("audi").get(f"/api/v1/merchants/{m.id}")
    body = r.json()
    assert body["merchant"]["merchant_no"] == m.merchant_no
    assert body["merchant"]["fee_schedule"] == m.schedule
    assert m.pan not in r.text
    assert m.pan[6:-4] not in r.text
    assert body["cards"][0]["masked"].endswith(m.pan[-4:])
    assert "*" in body["cards"][0]["masked"]
    assert body["payouts"] == {"held": {"count": 1, "amount_fen": world.held_a.amount}}
    assert body["held_fen"] == world.held_a.amount
    r = world.client("oper").get("/api/v1/merchants/999999")
    assert (r.status_code, error_code(r)) == (404, "merchant_not_found")


def test_diagnose_single_and_batch(world: World) -> None:
    aud = world.client("audi")
    one = aud.post("/api/v1/diagnose", json={"scheme": "allinpay", "code": "3031", "message": "账号户名不符"}).json()
    assert one["category"] == "card_info_error"
    assert one["decision"] == "hold"
    assert one["guidance"]
    en = aud.post("/api/v1/diagnose", json={"scheme": "allinpay", "code": "3024", "lang": "en", "explain": True}).json()
    assert en["category"] == "system_or_network_fault"
    assert en["retryable"] is True
    assert "explanation" in en
    batch = aud.post("/api/v1/diagnose/batch", json={"items": [
        {"id": "x1", "scheme": "allinpay", "code": "3031"},
        {"id": 2, "scheme": "martian", "code": "1"},
        {"message": "账户已冻结"},
    ]}).json()
    assert [i["index"] for i in batch["items"]] == [0, 1, 2]
    assert batch["total"] == 3
    assert batch["items"][0]["id"] == "x1"
    assert batch["items"][0]["category"] == "card_info_error"
    assert batch["items"][1]["error"]["code"] == "unknown_scheme"
    assert "category" not in batch["items"][1]
    assert batch["items"][2]["category"] == "card_status_abnormal"
    for path, body in (("/api/v1/diagnose", {"scheme": "allinpay"}), ("/api/v1/diagnose/batch", {"items": []}),
                       ("/api/v1/diagnose/batch", {"items": [{"code": "1"}] * 1001})):
        r = aud.post(path, json=body)
        assert (r.status_code, error_code(r)) == (422, "validation_failed"), path
    r = aud.post("/api/v1/diagnose", json={"scheme": "martian", "code": "1"})
    assert (r.status_code, error_code(r)) == (422, "unknown_scheme")


def test_metrics_are_prometheus_text(world: World) -> None:
    op = world.client("oper")
    op.get(f"/api/v1/payouts/{world.held_a.payout_id}")
    op.get("/api/v1/payouts/999999")
    op.get("/api/v1/no-such-route")
    r = op.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = r.text.splitlines()
    held = world.held_a.amount + world.held_c.amount
    assert 'settleguard_payouts{status="held"} 2' in lines
    assert 'settleguard_payouts{status="succeeded"} 2' in lines
    assert 'settleguard_payouts{status="cancelled"} 0' in lines
    assert f"settleguard_held_amount_fen {held}" in lines
    assert "settleguard_open_cases 0" in lines
    assert "# TYPE settleguard_http_requests_total counter" in lines
    assert 'settleguard_http_requests_total{method="GET",route="/api/v1/payouts/{payout_id}",status="200"} 1' in lines
    assert 'settleguard_http_requests_total{method="GET",route="/api/v1/payouts/{payout_id}",status="404"} 1' in lines
    assert 'settleguard_http_requests_total{method="GET",route="unmatched",status="404"} 1' in lines
    for line in lines:  # every sample line parses as name{labels} value
        assert line.startswith("#") or re.fullmatch(SAMPLE, line), line


def test_every_error_is_json_with_a_stable_code(world: World) -> None:
    op = world.client("oper")
    r = op.get("/api/v1/nothing-here")
    assert (r.status_code, error_code(r)) == (404, "not_found")
    r = op.delete("/api/v1/payouts")
    assert (r.status_code, error_code(r)) == (405, "method_not_allowed")
    r = op.post("/api/v1/diagnose", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (r.status_code, error_code(r)) == (422, "validation_failed")
    r = op.get("/api/v1/payouts/0")
    assert (r.status_code, error_code(r)) == (422, "validation_failed")

    def boom() -> None:
        raise RuntimeError("secret internals")

    world.app.add_api_route("/api/v1/boom", boom)
    r = op.get("/api/v1/boom")
    assert (r.status_code, error_code(r)) == (500, "internal_error")
    assert "secret internals" not in r.text


def test_the_openapi_document_and_docs_are_served(world: World) -> None:
    anon = world.client()
    spec = anon.get("/api/v1/openapi.json").json()
    assert {"/api/v1/payouts", "/api/v1/payouts/{payout_id}", "/api/v1/auth/login", "/metrics"} <= set(spec["paths"])
    assert "401" in spec["paths"]["/api/v1/payouts"]["get"]["responses"]
    assert anon.get("/api/v1/docs").status_code == 200


def test_token_use_is_recorded_at_most_once_a_minute(world: World) -> None:
    def last_used() -> Any:
        with world.engine.connect() as conn:
            return conn.execute(select(t.api_tokens.c.last_used_at).join(t.users, t.users.c.id == t.api_tokens.c.user_id)
                                .where(t.users.c.username == "audi")).scalar_one()

    assert last_used() is None
    aud = world.client("audi")
    aud.get("/api/v1/me")
    first = last_used()
    assert first == CLIENT_NOW
    world.clock.at += timedelta(seconds=30)
    aud.get("/api/v1/me")
    assert last_used() == first
    world.clock.at += timedelta(seconds=31)
    aud.get("/api/v1/me")
    assert last_used() == world.clock.at


def test_every_code_a_person_reads_comes_with_its_zh_en_label(world: World) -> None:
    """Issue 18: API responses carry, beside each status / category / priority code, the words people read."""
    c = world.client("oper")
    items = c.get("/api/v1/payouts", params={"limit": 50}).json()["items"]
    held = next(p for p in items if p["id"] == world.held_a.payout_id)
    assert held["status"] == "held"
    assert held["status_label"] == {"zh": "挂账", "en": "held"}
    assert held["category_label"]["zh"] == "银行卡信息错误"
    paid = next(p for p in items if p["id"] == world.paid_b.payout_id)
    assert paid["category"] is None
    assert paid["category_label"] is None
    detail = c.get(f"/api/v1/payouts/{world.held_a.payout_id}").json()
    assert detail["payout"]["status_label"]["zh"] == "挂账"
    assert detail["diagnosis"]["merchant_guidance"]  # what a merchant reads of the guidance
    assert all("保留银行返回原文" not in s for s in detail["diagnosis"]["merchant_guidance"])
    case_id = open_case(world.engine, merchant_no=world.held_a.merchant.merchant_no, category="card_info_error",
                        title="户名不符", actor="oper", now=NOW, payout_ids=[world.held_a.payout_id], tz="Asia/Shanghai")
    case = c.get(f"/api/v1/cases/{case_id}").json()
    assert case["case"]["status_label"] == {"zh": "处理中", "en": "open"}
    assert case["case"]["priority_label"]["zh"].startswith("P")
    assert case["case"]["source_label"]["zh"] == "人工开单"
    assert case["payouts"][0]["status_label"]["zh"] == "挂账"
    listed = c.get("/api/v1/cases").json()["items"]
    assert {i["category_label"]["zh"] for i in listed} >= {"银行卡信息错误"}
    merchants = c.get("/api/v1/merchants").json()["items"]
    assert {m["status_label"]["zh"] for m in merchants} == {"正常"}
    schema = c.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "status_label" in schema["PayoutItem"]["properties"]
