"""The HTML console and merchant portal (web/console) through FastAPI's TestClient on SQLite and
PostgreSQL: login and logout, redirects, CSRF on form posts, every page renders in Chinese (and English)
without a full card number, bulk release through payouts.release, dashboard figures, card re-binding,
and merchant isolation over every console and portal route."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from conftest import NOW
from payout_helpers import (
    ID_NUMBER,
    NAME_MISMATCH,
    OK,
    PHONE,
    SEND_AT,
    VALUE_DAY,
    Due,
    ScriptedBank,
    make_payouts,
    new_pan,
    rebind,
)
from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.service import CardSettings
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import Holder, SimulatedVerifier
from settleguard.cases import repository as case_repo
from settleguard.cases.model import Method, Party
from settleguard.cases.service import add_contact, open_case
from settleguard.db import tables as t
from settleguard.payouts.service import send_due
from settleguard.web.app import create_app
from settleguard.web.console import CardTools, set_card_tools
from settleguard.web.console.tools import STATE

PASSWORD = "correct-horse-battery"
CLIENT_NOW = SEND_AT + timedelta(hours=2)
STAFF = ("oper", "supp", "audi")
HIDDEN = re.compile(r'name="(csrf_token|login_token)" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.at = CLIENT_NOW

    def __call__(self) -> Any:
        return self.at


@dataclass
class World:
    engine: Engine
    app: FastAPI
    dues: list[Due]  # a held, b paid, c held, d paid
    case_id: int
    new_pan: str  # a card merchant a may bind (the verifier knows its holder)

    @property
    def held_a(self) -> Due:
        return self.dues[0]

    @property
    def paid_b(self) -> Due:
        return self.dues[1]

    @property
    def held_c(self) -> Due:
        return self.dues[2]

    def client(self) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=True, follow_redirects=False)

    def pans(self) -> list[str]:
        return [d.merchant.pan for d in self.dues] + [self.new_pan]


@pytest.fixture
def world(engine: Engine, vault: Vault, tmp_path: Path) -> World:
    dues = make_payouts(engine, vault, tmp_path, [12_345, 20_000, 33_300, 41_000])
    a, b, c, d = dues
    bank = ScriptedBank(sends={a.key: [NAME_MISMATCH], b.key: [OK], c.key: [NAME_MISMATCH], d.key: [OK]})
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None), ("audi", Role.AUDITOR, None),
                                 ("mera", Role.MERCHANT, a.merchant.merchant_no),
                                 ("merb", Role.MERCHANT, b.merchant.merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name.upper(),
                 now=NOW, actor="test")
    case_id = open_case(engine, merchant_no=a.merchant.merchant_no, category="card_info_error", title="户名不符待换卡",
                        actor="supp", now=SEND_AT, payout_ids=[a.payout_id], tz="Asia/Shanghai")
    add_contact(engine, case_id, party=Party.MERCHANT, method=Method.PHONE, who="张三", said="已通知商户换绑结算卡",
                actor="supp", now=SEND_AT)
    app = create_app(engine, now=Clock())
    pan = new_pan()
    verifier = SimulatedVerifier(1, holders={pan: Holder("张三", ID_NUMBER, PHONE)}, overrides={pan: CardStatus.NORMAL})
    set_card_tools(app, CardTools(vault, verifier, CardSettings()))
    return World(engine, app, dues, case_id, pan)


def hidden(page: str, name: str) -> str:
    found = dict(HIDDEN.findall(page))
    assert name in found, page[:2000]
    return found[name]


def sign_in(w: World | FastAPI, who: str, next_path: str = "") -> TestClient:
    c = w.client() if isinstance(w, World) else TestClient(w, follow_redirects=False)
    form = c.get("/login")
    assert form.status_code == 200
    r = c.post("/login", data={"username": who, "password": PASSWORD, "login_token": hidden(form.text, "login_token"),
                               "next": next_path})
    assert r.status_code == 303, r.text
    assert c.cookies.get("sg_session")
    return c


def csrf(c: TestClient, page: str = "/login") -> str:
    """The session's CSRF token, from the logout form every signed-in page carries."""
    r = c.get(page)
    if r.status_code == 303:
        r = c.get(r.headers["location"])
    return hidden(r.text, "csrf_token")


def status_of(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(t.payouts.c.status).where(t.payouts.c.id == pid)).scalar_one())


def case_state(engine: Engine, case_id: int) -> tuple[Any, ...]:
    """Everything a case action could change: status, assignee, resolution, update time, contacts, notes."""
    with engine.connect() as conn:
        case = case_repo.get(conn, case_id)
        assert case is not None
        return (case["status"], case["assignee"], case["resolution"], case["updated_at"],
                [k["summary"] for k in case_repo.contacts(conn, case_id)], [n["body"] for n in case_repo.notes(conn, case_id)])


def assert_no_pan(w: World, body: str, where: str) -> None:
    for pan in w.pans():
        assert pan not in body, where


# --- login, logout, redirects, CSRF -------------------------------------------------------------


def test_pages_redirect_to_login_and_the_login_returns_there(world: World) -> None:
    anon = world.client()
    for path in ("/", "/payouts", f"/payouts/{world.held_a.payout_id}", "/cases", f"/m/{world.held_a.merchant.id}", "/m"):
        r = anon.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=/"), path
    page = anon.get("/login")
    assert page.status_code == 200
    assert "登录" in page.text
    assert "用户名" in page.text
    token = hidden(page.text, "login_token")
    wrong = anon.post("/login", data={"username": "oper", "password": "not-the-password", "login_token": token})
    assert wrong.status_code == 401
    assert "用户名或密码错误" in wrong.text
    assert "sg_session" not in anon.cookies
    forged = world.client().post("/login", data={"username": "oper", "password": PASSWORD, "login_token": "forged"})
    assert forged.status_code == 403
    assert "sg_session" not in forged.cookies
    c = world.client()
    token = hidden(c.get("/login").text, "login_token")
    r = c.post("/login", data={"username": "oper", "password": PASSWORD, "login_token": token, "next": "/cases"})
    assert (r.status_code, r.headers["location"]) == (303, "/cases")
    assert c.get("/cases").status_code == 200
    c = world.client()
    token = hidden(c.get("/login").text, "login_token")
    r = c.post("/login", data={"username": "supp", "password": PASSWORD, "login_token": token,
                               "next": "//evil.example/x"})
    assert (r.status_code, r.headers["location"]) == (303, "/")  # never off-site
    assert c.get("/login?next=/cases").headers["location"] == "/cases"  # signed in: /login goes on


def test_merchant_login_lands_on_its_own_portal_page(world: World) -> None:
    c = sign_in(world, "mera")
    assert c.get("/m").headers["location"] == f"/m/{world.held_a.merchant.id}"


def test_logout_needs_the_csrf_token_and_ends_the_session(world: World) -> None:
    c = sign_in(world, "oper")
    refused = c.post("/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert c.get("/").status_code == 200  # still signed in
    r = c.post("/logout", data={"csrf_token": csrf(c, "/")})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    c.cookies.clear()
    assert c.get("/").status_code == 303


def test_login_form_has_the_same_rate_limit_as_the_api(world: World) -> None:
    c = world.client()
    for _ in range(5):
        token = hidden(c.get("/login").text, "login_token")
        assert c.post("/login", data={"username": "oper", "password": "wrong-password", "login_token": token}).status_code == 401
    token = hidden(c.get("/login").text, "login_token")
    r = c.post("/login", data={"username": "oper", "password": PASSWORD, "login_token": token})
    assert r.status_code == 429
    assert "登录失败次数过多" in r.text
    assert int(r.headers["Retry-After"]) > 0


# --- pages --------------------------------------------------------------------------------------


def staff_pages(w: World) -> dict[str, list[str]]:
    """Every staff GET page with words that must be on it (zh)."""
    a = w.held_a
    return {
        "/": ["运营概览", "今日出款", "挂账资金", "失败率", "重试成功率", "未结工单"],
        "/payouts": ["出款队列", "挂账", a.merchant.merchant_no],
        "/payouts?status=held&bank=&category=card_info_error&merchant=": ["挂账", "银行卡信息错误"],
        f"/payouts/{a.payout_id}": ["诊断与处理指引", "状态变化", "银行尝试", "3031", "账号户名不符", "RET_CODE"],
        "/cases": ["工单队列", "户名不符待换卡"],
        f"/cases/{w.case_id}": ["联系记录", "已通知商户换绑结算卡", "关联出款"],
        f"/merchants/{a.merchant.id}": ["结算卡", "最近出款"],
        f"/m/{a.merchant.id}": ["挂账资金", "需要关注的出款", "结算记录"],
        f"/m/{a.merchant.id}/card": ["换绑结算卡", "银行卡号"],
    }


def test_every_page_renders_in_chinese_without_a_full_card_number(world: World) -> None:
    c = sign_in(world, "oper")
    for path, words in staff_pages(world).items():
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"].startswith("text/html"), path
        assert 'name="viewport"' in r.text, path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["cache-control"] == "no-store", path
        for word in words:
            assert word in r.text, (path, word)
        assert_no_pan(world, r.text, path)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text), path  # nothing loaded from elsewhere
    mc = sign_in(world, "mera")
    own = mc.get(f"/m/{world.held_a.merchant.id}")
    assert own.status_code == 200
    assert "重新出款" in own.text or "换绑" in own.text
    assert_no_pan(world, own.text, "portal")
    for f in ("htmx.min.js", "echarts.min.js", "console.css", "console.js", "htmx.LICENSE", "echarts.LICENSE"):
        assert c.get(f"/static/{f}").status_code == 200, f


def test_english_is_switchable_and_kept_in_a_cookie(world: World) -> None:
    c = sign_in(world, "oper")
    zh = c.get("/payouts")
    assert "出款队列" in zh.text
    assert "Filter" not in zh.text
    en = c.get("/payouts?lang=en")
    assert "Filter" in en.text
    assert "筛选" not in en.text
    assert c.get("/payouts").text.count("Filter") >= 1  # the cookie keeps English
    assert "筛选" in c.get("/payouts?lang=zh").text


def test_payout_page_shows_the_diagnosis_in_both_languages(world: World) -> None:
    c = sign_in(world, "supp")
    r = c.get(f"/payouts/{world.held_a.payout_id}")
    assert "银行卡信息错误" in r.text
    assert "English" in r.text  # the English guidance folded under the Chinese
    assert "放行所选" not in r.text
    assert 'action="/payouts/release"' not in r.text


def test_unknown_ids_get_the_404_page(world: World) -> None:
    c = sign_in(world, "oper")
    for path in ("/payouts/999999", "/cases/999999", "/merchants/999999", "/m/999999", "/m/999999/card"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert "页面不存在" in r.text, path
    nowhere = c.get("/no-such-page")
    assert nowhere.status_code == 404
    assert "页面不存在" in nowhere.text
    bad = c.get("/payouts/abc")
    assert bad.status_code == 400
    assert "请求参数不正确" in bad.text
    assert c.get("/payouts?status=bogus").status_code == 400
    api = c.get("/api/v1/nothing-here")  # the API keeps its JSON errors
    assert (api.status_code, api.json()["error"]["code"]) == (404, "not_found")
    assert c.get("/api/v1/payouts/0").json()["error"]["code"] == "validation_failed"


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_figures_match_the_payouts(world: World) -> None:
    c = sign_in(world, "audi")
    data = c.get("/dashboard.json").json()
    assert data["today"] == VALUE_DAY.isoformat()
    by_status = {r["status"]: (r["count"], r["amount_fen"]) for r in data["by_status"]}
    held_fen = world.held_a.amount + world.held_c.amount
    assert by_status["held"] == (2, held_fen)
    assert by_status["succeeded"] == (2, world.dues[1].amount + world.dues[3].amount)
    assert data["held_fen"] == held_fen
    assert data["held_count"] == 2
    assert [b["count"] for b in data["held"]] == [2, 0, 0, 0]  # held two hours ago
    assert data["attempts_30d"] == 4
    assert data["by_category"] == [{"category": "card_info_error", "failed": 2}]
    assert sum(b["failed"] for b in data["by_bank"]) == 2
    assert sum(b["attempts"] for b in data["by_bank"]) == 4
    assert data["cases_sla"]["overdue"] + data["cases_sla"]["today"] + data["cases_sla"]["later"] == 1
    assert data["retries"] == {"attempts": 0, "succeeded": 0}
    page = c.get("/").text
    assert f"{held_fen // 100:,}.{held_fen % 100:02d}" in page
    assert 'id="dash-data"' in page
    assert "echarts.min.js" in page


def test_dashboard_of_an_empty_database(engine: Engine) -> None:
    add_user(engine, username="oper", password=PASSWORD, role=Role.OPERATOR, merchant_no=None, display_name="",
             now=NOW, actor="test")
    c = sign_in(create_app(engine, now=Clock()), "oper")
    page = c.get("/")
    assert page.status_code == 200
    assert "今日没有出款" in page.text
    assert "没有失败" in page.text
    data = c.get("/dashboard.json").json()
    assert (data["held_fen"], data["attempts_30d"], data["by_status"], data["by_bank"]) == (0, 0, [], [])
    assert c.get("/payouts").status_code == 200
    assert "没有符合条件的出款" in c.get("/payouts").text


def test_console_routes_are_not_in_the_openapi_document(world: World) -> None:
    paths = set(world.client().get("/api/v1/openapi.json").json()["paths"])
    assert paths
    assert all(p.startswith("/api/v1/") or p == "/metrics" for p in paths)
    assert {p for _, p in console_routes(world.app)}.isdisjoint(paths)


def test_held_money_ages_into_older_buckets(world: World) -> None:
    world.app.state.web.now.at = CLIENT_NOW + timedelta(days=4)
    c = sign_in(world, "oper")
    assert [b["count"] for b in c.get("/dashboard.json").json()["held"]] == [0, 0, 2, 0]


def test_dashboard_shows_the_latest_day_with_payouts_when_today_has_none(world: World) -> None:
    # issue 18: the demo's week seen later showed "today" (the real date) with nothing in it
    world.app.state.web.now.at = CLIENT_NOW + timedelta(days=12)
    c = sign_in(world, "oper")
    data = c.get("/dashboard.json").json()
    assert data["today"] == (VALUE_DAY + timedelta(days=12)).isoformat()
    assert (data["day"], data["day_chosen"]) == (VALUE_DAY.isoformat(), False)
    assert {r["status"]: r["count"] for r in data["by_status"]} == {"held": 2, "succeeded": 2}
    assert data["attempts_30d"] == 4  # the window still ends now
    page = c.get("/").text
    assert f"今日（{data['today']}）没有出款，显示有出款的最近一天" in page
    assert f'<input type="date" name="day" value="{VALUE_DAY.isoformat()}"' in page
    assert "今日出款" not in page  # not titled today's
    en = c.get("/?lang=en").text
    assert f"No payouts today ({data['today']}); showing the latest day with payouts" in en


def test_dashboard_of_a_chosen_day(world: World) -> None:
    c = sign_in(world, "oper")
    before = (VALUE_DAY - timedelta(days=1)).isoformat()
    data = c.get("/dashboard.json", params={"day": before}).json()
    assert (data["day"], data["day_chosen"], data["by_status"]) == (before, True, [])
    assert data["attempts_30d"] == 0  # the 30 days up to the chosen day: the sends came after it
    page = c.get("/", params={"day": before}).text
    assert "当天没有出款" in page
    assert f"截至 {before} 的 30 天失败率" in page
    assert 'href="/"' in page  # back to the latest
    same = c.get("/dashboard.json", params={"day": VALUE_DAY.isoformat()}).json()
    assert {r["status"]: r["count"] for r in same["by_status"]} == {"held": 2, "succeeded": 2}
    assert same["attempts_30d"] == 4
    bad = c.get("/", params={"day": "2026-13-01"})
    assert bad.status_code == 400
    assert "请求参数不正确" in bad.text


def test_dashboard_rate_charts_say_percent_and_lay_long_names_out_readably(world: World) -> None:
    # issue 18: bank names overlapped under the bars, the ageing axis was clipped, the rate axis had no %
    page = sign_in(world, "oper").get("/").text
    for chart in ("category", "bank"):
        tag = re.search(rf'<div class="chart" data-chart="{chart}"[^>]*>', page)
        assert tag, chart
        assert 'data-unit="%"' in tag.group(0)
        assert 'data-horizontal="1"' in tag.group(0)  # one row per bank name, not rotated labels under bars
    script = world.client().get("/static/console.js").text
    assert "containLabel: true" in script  # axis labels inside the chart box, never clipped
    assert "el.dataset.unit" in script


# --- bulk release -------------------------------------------------------------------------------


def test_bulk_release_releases_the_ticked_held_payouts(world: World) -> None:
    a, b, cc = world.held_a.payout_id, world.paid_b.payout_id, world.held_c.payout_id
    c = sign_in(world, "oper")
    token = csrf(c, "/payouts")
    refused = c.post("/payouts/release", data={"ids": [a, cc], "csrf_token": "stale"})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert (status_of(world.engine, a), status_of(world.engine, cc)) == ("held", "held")
    vault = getattr(world.app.state, STATE).vault
    rebind(world.engine, vault, world.held_c.merchant.merchant_no, new_pan(), SEND_AT + timedelta(hours=1))
    r = c.post("/payouts/release", data={"ids": [a, cc, b], "note": "商户已换卡", "csrf_token": token})
    assert r.status_code == 200
    # a's card failed and is unchanged: skipped, with the count; c re-bound: released (issue 16)
    assert (status_of(world.engine, a), status_of(world.engine, cc)) == ("held", "released")
    assert status_of(world.engine, b) == "succeeded"
    assert "已放行" in r.text
    assert "不能放行" in r.text
    assert "1 笔因结算卡问题挂账" in r.text


@pytest.mark.parametrize("who", ["supp", "audi"])
def test_only_operators_release(world: World, who: str) -> None:
    c = sign_in(world, who)
    r = c.post("/payouts/release", data={"ids": [world.held_a.payout_id], "csrf_token": csrf(c, "/payouts")})
    assert r.status_code == 403
    assert "无权" in r.text
    assert status_of(world.engine, world.held_a.payout_id) == "held"


# --- merchant portal ----------------------------------------------------------------------------


def test_merchant_portal_shows_reason_and_guidance_in_chinese(world: World) -> None:
    c = sign_in(world, "mera")
    r = c.get(f"/m/{world.held_a.merchant.id}")
    a = world.held_a.amount
    assert f"{a // 100:,}.{a % 100:02d}" in r.text  # the held money
    assert "原因" in r.text
    assert "怎么办" in r.text
    assert "户名" in r.text
    assert world.paid_b.merchant.merchant_no not in r.text


def test_card_rebinding_checks_then_binds(world: World) -> None:
    mid = world.held_a.merchant.id
    c = sign_in(world, "mera")
    token = csrf(c, f"/m/{mid}/card")
    bad = c.post(f"/m/{mid}/card", data={"pan": "6212261234567890", "name": "张三", "id_number": ID_NUMBER,
                                         "phone": PHONE, "csrf_token": token})
    assert bad.status_code == 422
    assert "未绑定" in bad.text
    assert "6212261234567890" not in bad.text
    no_csrf = c.post(f"/m/{mid}/card", data={"pan": world.new_pan, "name": "张三", "id_number": ID_NUMBER,
                                             "phone": PHONE, "csrf_token": "x"})
    assert no_csrf.status_code == 403
    ok = c.post(f"/m/{mid}/card", data={"pan": world.new_pan, "name": "张三", "id_number": ID_NUMBER, "phone": PHONE,
                                        "csrf_token": token})
    assert ok.status_code == 200, ok.text
    assert "绑定成功" in ok.text
    assert_no_pan(world, ok.text, "bound")
    s = t.settlement_accounts
    with world.engine.connect() as conn:
        active = conn.execute(select(s.c.pan_masked).where(s.c.merchant_id == mid, s.c.status == "active")).scalar_one()
    assert active.endswith(world.new_pan[-4:])
    assert active in ok.text


# --- every route, every role --------------------------------------------------------------------


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every console and portal route (not the API, metrics, docs or static)."""
    out = set()
    for r in iter_route_contexts(app.routes):  # routes of included routers too, with their prefixes
        if r.path and r.methods and isinstance(r.original_route, APIRoute) and not r.path.startswith("/api/") \
                and r.path != "/metrics":
            out |= {(m, r.path) for m in r.methods}
    assert ("GET", "/api/v1/me") in {(m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or ())}
    return out


def concrete(w: World, other: Due, case_id: int | None = None) -> dict[tuple[str, str], tuple[str, dict[str, Any] | None]]:
    """Each route with another merchant's ids (for merchant a's user; ``case_id``: a case of the other
    merchant, else the world's case) and a form body for posts."""
    m = other.merchant.id
    case = w.case_id if case_id is None else case_id
    return {
        ("GET", "/login"): ("/login", None),
        ("POST", "/login"): ("/login", {"username": "x", "password": "y", "login_token": "forged"}),
        ("POST", "/logout"): ("/logout", {"csrf_token": "wrong"}),
        ("GET", "/"): ("/", None),
        ("GET", "/dashboard.json"): ("/dashboard.json", None),
        ("GET", "/payouts"): ("/payouts", None),
        ("POST", "/payouts/release"): ("/payouts/release", {"ids": [w.held_c.payout_id]}),
        ("GET", "/payouts/{payout_id}"): (f"/payouts/{other.payout_id}", None),
        ("GET", "/cases"): ("/cases", None),
        ("GET", "/cases/{case_id}"): (f"/cases/{w.case_id}", None),
        ("POST", "/cases/{case_id}/assign"): (f"/cases/{case}/assign", {"assignee": "supp"}),
        ("POST", "/cases/{case_id}/contact"): (f"/cases/{case}/contact", {"party": "bank_support", "method": "phone",
                                                                          "who": "工行客服", "said": "已核实"}),
        ("POST", "/cases/{case_id}/note"): (f"/cases/{case}/note", {"body": "备注"}),
        ("POST", "/cases/{case_id}/status"): (f"/cases/{case}/status", {"status": "waiting_bank"}),
        ("POST", "/payouts/{payout_id}/cancel"): (f"/payouts/{other.payout_id}/cancel",
                                                  {"reason": "商户要求", "confirm": "yes"}),
        ("POST", "/payouts/{payout_id}/release"): (f"/payouts/{other.payout_id}/release",
                                                   {"override": "yes", "override_reason": "x"}),
        ("GET", "/merchants/{merchant_id}"): (f"/merchants/{m}", None),
        ("GET", "/merchants"): ("/merchants", None),
        ("GET", "/merchants/new"): ("/merchants/new", None),
        ("POST", "/merchants/new"): ("/merchants/new", {"merchant_no": "x"}),
        ("GET", "/merchants/import"): ("/merchants/import", None),
        ("POST", "/merchants/import"): ("/merchants/import", {}),
        ("POST", "/merchants/{merchant_id}/status"): (f"/merchants/{m}/status", {"action": "freeze", "reason": ""}),
        ("GET", "/m"): ("/m", None),
        ("GET", "/m/{merchant_id}"): (f"/m/{m}", None),
        ("GET", "/m/{merchant_id}/card"): (f"/m/{m}/card", None),
        ("GET", "/m/{merchant_id}/statement"): (f"/m/{m}/statement", None),  # 对账单 (docs/statements.md)
        ("GET", "/merchants/{merchant_id}/statement"): (f"/merchants/{m}/statement", None),
        ("POST", "/m/{merchant_id}/card"): (f"/m/{m}/card", {"pan": w.new_pan, "name": "张三", "id_number": ID_NUMBER,
                                                              "phone": PHONE}),
        # history review and guidance feedback (issue 22 items 5, 6; docs/history.md)
        ("GET", "/merchants/{merchant_id}/history"): (f"/merchants/{m}/history", None),
        ("GET", "/m/{merchant_id}/history"): (f"/m/{m}/history", None),
        # risk queue and risk holds (issue 22; docs/risk.md): staff pages, operators act; no reason: refused
        ("GET", "/risk"): ("/risk", None),
        ("GET", "/risk/{merchant_no}"): (f"/risk/{other.merchant.merchant_no}", None),
        ("POST", "/risk/{merchant_no}/hold"): (f"/risk/{other.merchant.merchant_no}/hold", {"reason": ""}),
        ("POST", "/risk/{merchant_no}/release"): (f"/risk/{other.merchant.merchant_no}/release", {"reason": ""}),
        ("GET", "/trends"): ("/trends", None),
        ("GET", "/guidance-feedback"): ("/guidance-feedback", None),
        ("POST", "/payouts/{payout_id}/feedback"): (f"/payouts/{other.payout_id}/feedback",
                                                    {"helpful": "yes", "reason": "有用"}),
        # reconciliation (issue 20; docs/reconciliation.md): staff pages; break 999999 does not exist
        ("GET", "/recon"): ("/recon", None),
        ("GET", "/recon/breaks"): ("/recon/breaks", None),
        ("GET", "/recon/breaks/{break_id}"): ("/recon/breaks/999999", None),
        ("POST", "/recon/breaks/{break_id}/propose"): ("/recon/breaks/999999/propose", {"action": "note",
                                                                                        "note": "核对"}),
        ("POST", "/recon/resolutions/{resolution_id}/approve"): ("/recon/resolutions/999999/approve", {}),
        ("POST", "/recon/resolutions/{resolution_id}/reject"): ("/recon/resolutions/999999/reject", {}),
        # today's cycle (issue 23 item 7; docs/operations.md): a staff page
        ("GET", "/day"): ("/day", None),
        # terminal health (issue 21; docs/terminals.md): staff pages, the other merchant's terminal
        ("GET", "/terminals"): ("/terminals", None),
        ("GET", "/terminals/{terminal_id}"): (f"/terminals/{terminal_of(w, m)}", None),
        # the troubleshooter (issue 21; docs/troubleshoot.md)
        ("GET", "/m/{merchant_id}/troubleshoot"): (f"/m/{m}/troubleshoot", None),
        ("GET", "/m/{merchant_id}/terminals"): (f"/m/{m}/terminals", None),
        ("POST", "/m/{merchant_id}/troubleshoot/case"): (f"/m/{m}/troubleshoot/case", {"symptom": "money_not_arrived"}),
        ("GET", "/merchants/{merchant_id}/troubleshoot"): (f"/merchants/{m}/troubleshoot", None),
        ("POST", "/merchants/{merchant_id}/troubleshoot/case"): (f"/merchants/{m}/troubleshoot/case",
                                                                {"symptom": "money_not_arrived"}),
    }


def terminal_of(w: World, merchant_id: int) -> int:
    with w.engine.connect() as conn:
        return int(conn.execute(select(t.terminals.c.id).where(t.terminals.c.merchant_id == merchant_id)
                                .order_by(t.terminals.c.id)).scalars().first())


# (status for merchant a's user asking about merchant b, status for staff) per route
EXPECTED = {
    ("GET", "/login"): (303, 303), ("POST", "/login"): (403, 403), ("POST", "/logout"): (403, 403),
    ("GET", "/"): (403, 200), ("GET", "/dashboard.json"): (403, 200), ("GET", "/payouts"): (403, 200),
    ("POST", "/payouts/release"): (403, None), ("GET", "/payouts/{payout_id}"): (404, 200),
    ("GET", "/cases"): (403, 200), ("GET", "/cases/{case_id}"): (403, 200),
    ("POST", "/cases/{case_id}/assign"): (404, None), ("POST", "/cases/{case_id}/contact"): (404, None),
    ("POST", "/cases/{case_id}/note"): (404, None), ("POST", "/cases/{case_id}/status"): (404, None),
    ("POST", "/payouts/{payout_id}/cancel"): (404, None), ("POST", "/payouts/{payout_id}/release"): (404, None),
    ("GET", "/merchants/{merchant_id}"): (404, 200), ("GET", "/m"): (303, 303),
    ("GET", "/merchants"): (403, 200), ("GET", "/merchants/new"): (403, 200), ("POST", "/merchants/new"): (403, None),
    ("GET", "/merchants/import"): (403, 200), ("POST", "/merchants/import"): (403, None),
    ("POST", "/merchants/{merchant_id}/status"): (404, None),
    ("GET", "/m/{merchant_id}"): (404, 200), ("GET", "/m/{merchant_id}/card"): (404, 200),
    ("POST", "/m/{merchant_id}/card"): (404, None),
    ("GET", "/m/{merchant_id}/statement"): (404, 200), ("GET", "/merchants/{merchant_id}/statement"): (404, 200),
    ("GET", "/merchants/{merchant_id}/history"): (404, 200), ("GET", "/m/{merchant_id}/history"): (404, 200),
    ("GET", "/trends"): (403, 200), ("GET", "/guidance-feedback"): (403, 200),
    ("POST", "/payouts/{payout_id}/feedback"): (404, None),
    ("GET", "/risk"): (403, 200), ("GET", "/risk/{merchant_no}"): (403, 200),
    ("POST", "/risk/{merchant_no}/hold"): (403, None), ("POST", "/risk/{merchant_no}/release"): (403, None),
    ("GET", "/recon"): (403, 200), ("GET", "/recon/breaks"): (403, 200), ("GET", "/recon/breaks/{break_id}"): (403, 404),
    ("POST", "/recon/breaks/{break_id}/propose"): (403, None),
    ("POST", "/recon/resolutions/{resolution_id}/approve"): (403, None),
    ("POST", "/recon/resolutions/{resolution_id}/reject"): (403, None),
    ("GET", "/day"): (403, 200),
    ("GET", "/terminals"): (403, 200), ("GET", "/terminals/{terminal_id}"): (403, 200),
    ("GET", "/m/{merchant_id}/troubleshoot"): (404, 200), ("POST", "/m/{merchant_id}/troubleshoot/case"): (404, None),
    ("GET", "/merchants/{merchant_id}/troubleshoot"): (403, 200),
    ("GET", "/m/{merchant_id}/terminals"): (404, 200),
    ("POST", "/merchants/{merchant_id}/troubleshoot/case"): (403, None),
}
# staff answers to the POST routes above, per role (operator, support, auditor)
STAFF_POSTS = {
    ("POST", "/recon/breaks/{break_id}/propose"): {"oper": 404, "supp": 403, "audi": 403},
    ("POST", "/recon/resolutions/{resolution_id}/approve"): {"oper": 404, "supp": 403, "audi": 403},
    ("POST", "/recon/resolutions/{resolution_id}/reject"): {"oper": 404, "supp": 403, "audi": 403},
    # the case is opened and the page shown again with it (200)
    ("POST", "/m/{merchant_id}/troubleshoot/case"): {"oper": 200, "supp": 200, "audi": 403},
    ("POST", "/merchants/{merchant_id}/troubleshoot/case"): {"oper": 200, "supp": 200, "audi": 403},
}


# an operator's answer to the walk's merchant forms: a refused registration, no file, no reason
MERCHANT_FORMS = {("POST", "/merchants/new"): 422, ("POST", "/merchants/import"): 422,
                  ("POST", "/merchants/{merchant_id}/status"): 409,
                  ("POST", "/risk/{merchant_no}/hold"): 409, ("POST", "/risk/{merchant_no}/release"): 409}


def test_every_console_route_is_covered_by_the_isolation_walk(world: World) -> None:
    assert console_routes(world.app) == set(EXPECTED) == set(concrete(world, world.paid_b))


def test_merchant_user_never_sees_another_merchants_pages(world: World) -> None:
    c = sign_in(world, "mera")
    token = csrf(c, "/m")
    other = world.paid_b
    other_case = open_case(world.engine, merchant_no=other.merchant.merchant_no, category="other", title="商户乙的工单",
                           actor="supp", now=SEND_AT, tz="Asia/Shanghai")
    before = case_state(world.engine, other_case)
    for key, (path, body) in concrete(world, other, other_case).items():
        method = key[0]
        data = body if body is None or key[1] in ("/login", "/logout") else {"csrf_token": token, **body}
        r = c.request(method, path, data=data)
        assert r.status_code == EXPECTED[key][0], (key, r.status_code, r.text[:300])
        assert other.merchant.merchant_no not in r.text, key
        assert_no_pan(world, r.text, str(key))
    assert status_of(world.engine, world.held_c.payout_id) == "held"
    s = t.settlement_accounts
    with world.engine.connect() as conn:
        bound = conn.execute(select(s.c.id).where(s.c.merchant_id == other.merchant.id)).all()
    assert len(bound) == 1  # nothing bound for merchant b
    assert case_state(world.engine, other_case) == before  # nothing done to merchant b's case
    assert status_of(world.engine, other.payout_id) == "succeeded"
    assert c.get(f"/m/{world.held_a.merchant.id}").status_code == 200  # its own page still works
    assert c.get(f"/payouts/{world.held_a.payout_id}").status_code == 200
    assert c.get(f"/merchants/{world.held_a.merchant.id}").status_code == 200


@pytest.mark.parametrize("who", STAFF)
def test_each_staff_role_on_every_route(world: World, who: str) -> None:
    c = sign_in(world, who)
    token = csrf(c, "/")
    for key, (path, body) in concrete(world, world.paid_b).items():
        method, template = key
        data = body if body is None or template in ("/login", "/logout") else {"csrf_token": token, **body}
        r = c.request(method, path, data=data)
        want = EXPECTED[key][1]
        if key == ("POST", "/payouts/release"):
            want = 200 if who == "oper" else 403
        if key == ("POST", "/m/{merchant_id}/card"):
            want = 200 if who == "oper" else 403  # an operator may bind for any merchant, as with card bind
        if template.startswith("/cases/{case_id}/"):
            want = 303 if who in ("oper", "supp") else 403  # done, back to the case page
        if key in MERCHANT_FORMS:  # an operator's refused form (nothing changed); other staff may not
            want = MERCHANT_FORMS[key] if who == "oper" else 403
        if key == ("POST", "/payouts/{payout_id}/feedback"):
            want = 409 if who in ("oper", "supp") else 403  # a paid payout shows no guidance; auditors may not
        if key in (("POST", "/payouts/{payout_id}/cancel"), ("POST", "/payouts/{payout_id}/release")):
            want = 409 if who == "oper" else 403  # a paid payout cannot be cancelled or released
        if key in STAFF_POSTS:
            want = STAFF_POSTS[key][who]
        assert r.status_code == want, (who, key, r.status_code, r.text[:300])
        assert_no_pan(world, r.text, str(key))
    # the operator's bulk release skips it: held for a card problem on the card that failed, unchanged (issue 16)
    assert status_of(world.engine, world.held_c.payout_id) == "held"
    assert status_of(world.engine, world.paid_b.payout_id) == "succeeded"
    case = case_state(world.engine, world.case_id)
    assert case[:2] == (("waiting_bank", "supp") if who in ("oper", "supp") else ("open", None))
