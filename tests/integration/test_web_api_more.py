"""The API's cards, settlements, cases, evidence and notification-log routes (web/api_cards.py,
api_settlements.py, api_cases.py, api_evidence.py, api_notifications.py) through FastAPI's TestClient on
SQLite and PostgreSQL: the same effects as the CLI, roles, merchant isolation, pagination, and no full
card number in any answer."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from notify_helpers import set_prefs
from sqlalchemy import Engine, func, select
from test_web_api import CLIENT_NOW, PASSWORD, Clock, error_code, login

from conftest import NOW
from payout_helpers import (
    DAY,
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
)
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.bootstrap import Container
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import Holder, SimulatedVerifier
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.evidence.builder import export, verify
from settleguard.notify.delivery import Deliverer
from settleguard.payouts.service import send_due
from settleguard.web.app import create_app
from settleguard.web.services import Services

SMS = "13900001111"


@dataclass
class Api:
    engine: Engine
    app: FastAPI
    clock: Clock
    a: Due  # held (name mismatch); SMS notices
    b: Due  # paid
    c: Due  # held; SMS notices
    tokens: dict[str, str]
    seen: list[Response] = field(default_factory=list)  # every answer, for the card-number scan

    def client(self, who: str | None = None) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)

        def keep(r: Response) -> None:
            r.read()
            self.seen.append(r)

        c.event_hooks["response"].append(keep)
        if who is not None:
            c.headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return c


@pytest.fixture
def api(engine: Engine, vault: Vault, tmp_path: Path) -> Api:
    a, b, c = make_payouts(engine, vault, tmp_path, [12_345, 20_000, 33_300])
    for d in (a, c):
        set_prefs(engine, vault, d.merchant.id, SEND_AT, sms=SMS)
    send_due(engine, ScriptedBank(sends={a.key: [NAME_MISMATCH], b.key: [OK], c.key: [NAME_MISMATCH]}), vault,
             as_of=VALUE_DAY, now=SEND_AT)
    Deliverer(engine, vault).run(lambda: SEND_AT)  # SMS through the logging sender: one try per notice
    tokens = {}
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None),
                                 ("audi", Role.AUDITOR, None), ("mera", Role.MERCHANT, a.merchant.merchant_no),
                                 ("merb", Role.MERCHANT, b.merchant.merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name,
                 now=NOW, actor="test")
        tokens[name] = issue_token(engine, username=name, name="tests", now=NOW, actor="test").token
    clock = Clock(CLIENT_NOW)
    return Api(engine, create_app(engine, now=clock), clock, a, b, c, tokens)


def use_verifier(api: Api, vault: Vault, *pans: str, attempts_per_day: int = 5) -> None:
    """The bank's verification service knows these cards as 张三's (the factories' legal person)."""
    verifier = SimulatedVerifier(1, holders={p: Holder("张三", ID_NUMBER, PHONE) for p in pans},
                                 overrides={p: CardStatus.NORMAL for p in pans})
    api.app.state.services = Services(Container(Settings(card_attempts_per_day=attempts_per_day),
                                                given_engine=api.engine, given_verifier=verifier, given_vault=vault))


def rows(engine: Engine, table: Any, **where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        q = select(table).order_by(table.c.id)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return [dict(r._mapping) for r in conn.execute(q)]


def card_body(pan: str, **kw: str) -> dict[str, str]:
    return {"pan": pan, "name": "张三", "id_number": ID_NUMBER, "phone": PHONE, **kw}


# --- cards ----------------------------------------------------------------------------------------


def test_a_card_check_answers_the_cli_checks_and_stores_nothing(api: Api) -> None:
    before = rows(api.engine, t.card_verifications)
    pan = new_pan()
    for who in ("oper", "audi", "mera"):
        r = api.client(who).post("/api/v1/cards/check", json={"pan": pan, "name": "张三", "id_number": ID_NUMBER,
                                                                "kind": "personal"})
        assert r.status_code == 200, who
        body = r.json()
        assert (body["valid"], body["bank_code"], body["card_type"]) == (True, "ICBC", "DC")
        assert body["masked"] == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
        assert body["problems"] == []
    bad = pan[:-1] + str((int(pan[-1]) + 1) % 10)  # a known BIN with a wrong check digit: a warning only
    body = api.client("oper").post("/api/v1/cards/check", json={"pan": bad}).json()
    assert [p["code"] for p in body["problems"]] == ["luhn_failed"]
    assert body["problems"][0]["zh"]
    body = api.client("oper").post("/api/v1/cards/check", json={"pan": "4" + bad[1:], "kind": "personal"}).json()
    assert body["valid"] is False
    assert body["problems"]
    assert "error" in {p["severity"] for p in body["problems"]}
    r = api.client("oper").post("/api/v1/cards/check", json={"pan": ""})
    assert (r.status_code, error_code(r)) == (422, "validation_failed")
    assert rows(api.engine, t.card_verifications) == before
    r = api.client().post("/api/v1/cards/check", json={"pan": pan})
    assert (r.status_code, error_code(r)) == (401, "unauthenticated")


def test_a_merchant_rebinds_its_own_card_and_sees_it_with_its_history(api: Api, vault: Vault) -> None:
    mine, other = api.a.merchant, api.b.merchant
    pan = new_pan()
    use_verifier(api, vault, pan)
    ma = api.client("mera")
    r = ma.post(f"/api/v1/merchants/{mine.id}/card", json=card_body(pan))
    assert r.status_code == 200, r.text
    bound = r.json()
    assert (bound["bound"], bound["rebound"], bound["bank_code"], bound["card_status"]) == (True, True, "ICBC", "normal")
    assert bound["masked"] == pan[:6] + "*" * 9 + pan[-4:]
    old = [a for a in rows(api.engine, t.settlement_accounts, merchant_id=mine.id) if a["id"] != bound["account_id"]]
    assert bound["replaced_account_ids"] == [old[0]["id"]]
    assert old[0]["status"] == "replaced"
    # the held payout's card failure (card_info_error) marked the old card unusable before the re-binding
    *failure, event = rows(api.engine, t.card_events, merchant_id=mine.id)
    assert [(e["kind"], e["account_id"]) for e in failure] == [("status_changed", old[0]["id"]),
                                                                ("marked_unusable", old[0]["id"])]
    assert (event["kind"], event["actor"], event["account_id"]) == ("card_rebound", "mera", bound["account_id"])
    shown = ma.get(f"/api/v1/merchants/{mine.id}/card").json()
    assert shown["current"]["id"] == bound["account_id"]
    assert shown["current"]["masked"] == bound["masked"]
    assert [c["status"] for c in shown["cards"]] == ["active", "replaced"]
    assert sorted(e["kind"] for e in shown["events"]) == ["card_rebound", "marked_unusable", "status_changed"]
    assert ("four_elements", "match", "mera") in [(v["kind"], v["result"], v["actor"]) for v in shown["verifications"]]
    # Another merchant's card: 404 exactly like a merchant that does not exist; nothing is tried at the bank.
    tried = rows(api.engine, t.card_verifications, merchant_id=other.id)
    for path in (f"/api/v1/merchants/{other.id}/card", "/api/v1/merchants/999999/card"):
        r = ma.post(path, json=card_body(new_pan()))
        assert (r.status_code, error_code(r)) == (404, "merchant_not_found"), path
        r = ma.get(path)
        assert (r.status_code, error_code(r)) == (404, "merchant_not_found"), path
    assert rows(api.engine, t.card_verifications, merchant_id=other.id) == tried
    for who in ("supp", "audi"):  # staff other than operators bind nothing
        r = api.client(who).post(f"/api/v1/merchants/{other.id}/card", json=card_body(new_pan()))
        assert (r.status_code, error_code(r)) == (403, "forbidden"), who
    assert api.client("audi").get(f"/api/v1/merchants/{mine.id}/card").json()["current"]["id"] == bound["account_id"]


def test_binding_refusals_carry_the_reasons_and_the_daily_quota_is_kept(api: Api, vault: Vault) -> None:
    m = api.c.merchant
    good = new_pan()
    use_verifier(api, vault, good, attempts_per_day=2)
    op = api.client("oper")
    r = op.post(f"/api/v1/merchants/{m.id}/card", json=card_body(good, name="李四"))  # not the merchant's own
    assert (r.status_code, error_code(r)) == (422, "card_bind_refused")
    assert r.json()["error"]["details"]["code"] == "check_failed"
    assert r.json()["error"]["details"]["problems"]
    r = op.post(f"/api/v1/merchants/{m.id}/card", json=card_body(good, phone="13900000000"))  # not the bank's
    assert (r.status_code, error_code(r)) == (422, "card_bind_refused")
    assert r.json()["error"]["details"]["code"] != "check_failed"
    assert r.json()["error"]["message_zh"]
    r = op.post(f"/api/v1/merchants/{m.id}/card", json=card_body(good))
    assert r.status_code == 200, r.text
    r = op.post(f"/api/v1/merchants/{m.id}/card", json=card_body(new_pan()))
    assert (r.status_code, error_code(r)) == (429, "card_bind_rate_limited")
    results = [(v["result"], v["actor"]) for v in rows(api.engine, t.card_verifications, merchant_id=m.id,
                                                         kind="four_elements")]
    assert results == [("refused", "oper"), ("mismatch", "oper"), ("match", "oper"), ("rate_limited", "oper")]
    r = op.post(f"/api/v1/merchants/{m.id}/card", json={"pan": good})
    assert (r.status_code, error_code(r)) == (422, "validation_failed")


def test_no_answer_ever_holds_a_full_card_number(api: Api, vault: Vault) -> None:
    pan = new_pan()
    use_verifier(api, vault, pan)
    m = api.a.merchant
    stored = [pan, api.a.merchant.pan, api.b.merchant.pan, api.c.merchant.pan]
    op, ma = api.client("oper"), api.client("mera")
    op.post("/api/v1/cards/check", json={"pan": pan, "name": "张三"})
    op.post("/api/v1/cards/check", json={"pan": pan[:-1], "name": "张三"})
    ma.post(f"/api/v1/merchants/{m.id}/card", json=card_body(pan))
    ma.post(f"/api/v1/merchants/{m.id}/card", json=card_body(pan))  # already bound: refused
    op.post(f"/api/v1/merchants/{api.b.merchant.id}/card", json=card_body(pan, name="李四"))
    op.post(f"/api/v1/merchants/{m.id}/card", json=card_body(pan + "1"))
    for who in ("oper", "mera"):
        c = api.client(who)
        c.get(f"/api/v1/merchants/{m.id}/card")
        c.get(f"/api/v1/merchants/{m.id}")
        c.get("/api/v1/settlements")
        c.get("/api/v1/notifications")
        c.get(f"/api/v1/payouts/{api.a.payout_id}")
    assert len(api.seen) >= 15
    assert {200, 422} <= {r.status_code for r in api.seen}
    for r in api.seen:
        text = r.content.decode()
        for p in stored:
            assert p not in text, (r.request.url, r.status_code)
            assert p[6:-4] not in text, (r.request.url, r.status_code)


# --- settlements --------------------------------------------------------------------------------


def test_settlements_are_listed_filtered_paginated_and_shown(api: Api) -> None:
    op = api.client("oper")
    everything = op.get("/api/v1/settlements").json()
    assert everything["total"] == 3
    by_merchant = {s["merchant_id"]: s for s in everything["items"]}
    assert set(by_merchant) == {api.a.merchant.id, api.b.merchant.id, api.c.merchant.id}
    for d in (api.a, api.b, api.c):
        s = by_merchant[d.merchant.id]
        assert (s["cycle_date"], s["txn_count"], s["merchant_no"]) == (DAY.isoformat(), 1, d.merchant.merchant_no)
        assert s["net_fen"] == d.amount
        assert s["sale_fen"] - s["fee_fen"] == s["net_fen"]
    first = op.get("/api/v1/settlements?limit=2").json()
    second = op.get("/api/v1/settlements?limit=2&offset=2").json()
    assert [s["id"] for s in first["items"] + second["items"]] == [s["id"] for s in everything["items"]]
    assert (first["total"], second["total"], len(second["items"])) == (3, 3, 1)
    assert op.get(f"/api/v1/settlements?cycle_from={DAY}&cycle_to={DAY}").json()["total"] == 3
    assert op.get(f"/api/v1/settlements?cycle_from={VALUE_DAY}").json()["total"] == 0
    assert op.get(f"/api/v1/settlements?cycle_to={DAY.replace(day=DAY.day - 1)}").json()["total"] == 0
    only_b = op.get(f"/api/v1/settlements?merchant_id={api.b.merchant.id}").json()
    assert [s["merchant_id"] for s in only_b["items"]] == [api.b.merchant.id]
    for query in ("cycle_from=yesterday", "merchant_id=0", "limit=501"):
        r = op.get(f"/api/v1/settlements?{query}")
        assert (r.status_code, error_code(r)) == (422, "validation_failed"), query
    sid = by_merchant[api.a.merchant.id]["id"]
    detail = api.client("audi").get(f"/api/v1/settlements/{sid}").json()
    assert detail["settlement"]["id"] == sid
    assert [(p["id"], p["status"], p["amount_fen"]) for p in detail["payouts"]] == [
        (api.a.payout_id, "held", api.a.amount)]
    r = op.get("/api/v1/settlements/999999")
    assert (r.status_code, error_code(r)) == (404, "settlement_not_found")


def test_a_merchant_sees_its_own_settlements_only(api: Api) -> None:
    ma = api.client("mera")
    own = ma.get("/api/v1/settlements").json()
    assert [s["merchant_id"] for s in own["items"]] == [api.a.merchant.id]
    assert own["total"] == 1
    got = ma.get(f"/api/v1/settlements?merchant_id={api.b.merchant.id}").json()
    assert (got["items"], got["total"]) == ([], 0)
    assert ma.get(f"/api/v1/settlements/{own['items'][0]['id']}").status_code == 200
    other = api.client("oper").get(f"/api/v1/settlements?merchant_id={api.b.merchant.id}").json()["items"][0]["id"]
    a, b = ma.get(f"/api/v1/settlements/{other}"), ma.get("/api/v1/settlements/999999")
    assert (a.status_code, error_code(a)) == (b.status_code, error_code(b)) == (404, "settlement_not_found")
    assert api.b.merchant.merchant_no not in a.text


# --- cases --------------------------------------------------------------------------------------


def case_audit(engine: Engine, case_id: int) -> list[tuple[str, str]]:
    e = t.audit_events
    with engine.connect() as conn:
        return [(r.actor, r.kind) for r in conn.execute(
            select(e.c.actor, e.c.kind).where(e.c.subject_id == str(case_id), e.c.kind.like("case.%")).order_by(e.c.id))]


def test_a_case_goes_through_its_whole_lifecycle_with_the_cli_rules_and_audit(api: Api) -> None:
    sp, op = api.client("supp"), api.client("oper")
    r = sp.post("/api/v1/cases", json={"merchant_id": api.a.merchant.id, "category": "card_info_error",
                                       "title": "户名不符 name mismatch", "payout_ids": [api.a.payout_id]})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json() == {"id": cid, "status": "open", "assignee": None, "contact_id": None, "note_id": None,
                        "status_label": {"zh": "处理中", "en": "open"}}
    assert sp.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "supp"}).json()["assignee"] == "supp"
    r = sp.post(f"/api/v1/cases/{cid}/contact", json={
        "party": "bank_support", "method": "phone", "who": "工行客服 95588 工号1234", "said": "户名须与开户名一致",
        "at": (CLIENT_NOW - timedelta(hours=1)).isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["contact_id"] >= 1
    assert sp.post(f"/api/v1/cases/{cid}/note", json={"body": "已通知商户更正户名"}).json()["note_id"] >= 1
    assert sp.post(f"/api/v1/cases/{cid}/status", json={"status": "waiting_merchant"}).json()["status"] == \
        "waiting_merchant"
    assert op.post(f"/api/v1/cases/{cid}/resolve", json={"resolution": "商户已换绑"}).json()["status"] == "resolved"
    detail = api.client("audi").get(f"/api/v1/cases/{cid}").json()
    assert (detail["case"]["status"], detail["case"]["resolution"], detail["case"]["created_by"]) == (
        "resolved", "商户已换绑", "supp")
    assert detail["case"]["overdue"] is False
    [p] = detail["payouts"]
    assert (p["id"], p["fail_code"]) == (api.a.payout_id, "3031")
    assert p["diagnosis_zh"]["category"] == "card_info_error"
    assert p["diagnosis_en"]["guidance"]
    assert [(c["contact_name"], c["party"], c["recorded_by"]) for c in detail["contacts"]] == [
        ("工行客服 95588 工号1234", "bank_support", "supp")]
    assert detail["contacts"][0]["at"].startswith((CLIENT_NOW - timedelta(hours=1)).date().isoformat())
    assert "已通知商户更正户名" in [n["body"] for n in detail["notes"]]
    assert op.post(f"/api/v1/cases/{cid}/close").json()["status"] == "closed"
    # A closed case refuses everything (409, the service's reason) and changes nothing.
    for action, body in (("note", {"body": "x"}), ("assign", {"assignee": "x"}), ("close", None),
                         ("status", {"status": "open"}), ("resolve", {"resolution": "x"})):
        r = sp.post(f"/api/v1/cases/{cid}/{action}", json=body)
        assert (r.status_code, error_code(r)) == (409, "case_action_refused"), action
    assert case_audit(api.engine, cid) == [("supp", "case.open"), ("supp", "case.assign"), ("supp", "case.contact"),
                                           ("supp", "case.note"), ("supp", "case.status"), ("oper", "case.status"),
                                           ("oper", "case.status")]


def test_case_refusals_and_validation(api: Api) -> None:
    sp = api.client("supp")
    r = sp.post("/api/v1/cases", json={"merchant_id": api.a.merchant.id, "category": "other", "title": "x",
                                       "payout_ids": [api.b.payout_id]})  # another merchant's payout
    assert (r.status_code, error_code(r)) == (409, "case_action_refused")
    assert f"payouts [{api.b.payout_id}] do not belong" in r.json()["error"]["message_en"]
    assert rows(api.engine, t.cases) == []
    r = sp.post("/api/v1/cases", json={"merchant_id": 999999, "category": "other", "title": "x"})
    assert (r.status_code, error_code(r)) == (404, "merchant_not_found")
    for body in ({"merchant_id": api.a.merchant.id, "category": " ", "title": "x"},
                 {"merchant_id": api.a.merchant.id, "category": "other", "title": "x", "priority": "p9"}):
        r = sp.post("/api/v1/cases", json=body)
        assert (r.status_code, error_code(r)) == (422, "validation_failed"), body
    cid = sp.post("/api/v1/cases", json={"merchant_id": api.a.merchant.id, "category": "other",
                                         "title": "x"}).json()["id"]
    r = sp.post(f"/api/v1/cases/{cid}/status", json={"status": "resolved"})  # resolve has its own route
    assert (r.status_code, error_code(r)) == (409, "case_action_refused")
    r = sp.post(f"/api/v1/cases/{cid}/close")  # only a resolved case closes
    assert (r.status_code, error_code(r)) == (409, "case_action_refused")
    r = sp.post(f"/api/v1/cases/{cid}/contact", json={"party": "merchant", "method": "phone", "who": "x",
                                                      "said": "x", "at": "2030-01-01T00:00:00+08:00"})
    assert (r.status_code, error_code(r)) == (409, "case_action_refused")
    r = sp.post(f"/api/v1/cases/{cid}/contact", json={"party": "merchant", "method": "phone", "who": "x",
                                                      "said": "x", "at": "2026-11-20T10:30:00"})  # no time zone
    assert (r.status_code, error_code(r)) == (422, "validation_failed")
    r = sp.post(f"/api/v1/cases/{cid}/note", json={"body": "   "})
    assert (r.status_code, error_code(r)) == (422, "validation_failed")
    for path in ("/api/v1/cases/999999", "/api/v1/cases/999999/note"):
        r = sp.request("GET" if path.endswith("999") else "POST", path, json={"body": "x"})
        assert (r.status_code, error_code(r)) == (404, "case_not_found"), path
    assert case_audit(api.engine, cid) == [("supp", "case.open")]


def test_cases_are_staff_only_and_auditors_only_read(api: Api) -> None:
    cid = api.client("oper").post("/api/v1/cases", json={"merchant_id": api.a.merchant.id, "category": "other",
                                                         "title": "x"}).json()["id"]
    for who in ("mera", "merb"):
        c = api.client(who)
        for method, path in (("GET", "/api/v1/cases"), ("GET", f"/api/v1/cases/{cid}"),
                             ("GET", f"/api/v1/cases/{cid}/evidence"), ("POST", f"/api/v1/cases/{cid}/note"),
                             ("POST", "/api/v1/cases")):
            r = c.request(method, path, json={"body": "x"})
            assert (r.status_code, error_code(r)) == (403, "forbidden"), (who, path)
    au = api.client("audi")
    assert au.get(f"/api/v1/cases/{cid}").status_code == 200
    for action, body in (("note", {"body": "x"}), ("assign", {"assignee": "x"})):
        r = au.post(f"/api/v1/cases/{cid}/{action}", json=body)
        assert (r.status_code, error_code(r)) == (403, "forbidden"), action
    assert case_audit(api.engine, cid) == [("oper", "case.open")]


def test_the_case_list_is_filtered_and_paginated(api: Api) -> None:
    op = api.client("oper")
    ids = [op.post("/api/v1/cases", json={"merchant_id": d.merchant.id, "category": "other", "title": f"t{i}"})
           .json()["id"] for i, d in enumerate((api.a, api.b, api.c, api.a))]
    add_user(api.engine, username="bob", password=PASSWORD, role=Role.SUPPORT, merchant_no=None, display_name="bob",
             now=NOW, actor="test")  # cases go to staff users only (cases.service.may_be_assigned)
    op.post(f"/api/v1/cases/{ids[1]}/assign", json={"assignee": "bob"})
    op.post(f"/api/v1/cases/{ids[2]}/status", json={"status": "waiting_bank"})
    every = op.get("/api/v1/cases").json()
    assert ([c["id"] for c in every["items"]], every["total"]) == (ids, 4)
    assert every["items"][0]["merchant_no"] == api.a.merchant.merchant_no
    assert every["items"][0]["overdue"] is False
    page2 = op.get("/api/v1/cases?limit=3&offset=3").json()
    assert ([c["id"] for c in page2["items"]], page2["total"]) == ([ids[3]], 4)
    assert [c["id"] for c in op.get("/api/v1/cases?assignee=bob").json()["items"]] == [ids[1]]
    assert [c["id"] for c in op.get("/api/v1/cases?status=waiting_bank").json()["items"]] == [ids[2]]
    got = op.get(f"/api/v1/cases?merchant_id={api.a.merchant.id}&status=open").json()
    assert ([c["id"] for c in got["items"]], got["total"]) == ([ids[0], ids[3]], 2)
    api.clock.at = CLIENT_NOW.replace(year=CLIENT_NOW.year + 1)
    late = op.get("/api/v1/cases?overdue=true").json()
    assert [c["id"] for c in late["items"]] == ids
    assert all(c["overdue"] for c in late["items"])
    r = op.get("/api/v1/cases?status=lost")
    assert (r.status_code, error_code(r)) == (422, "validation_failed")


# --- evidence -----------------------------------------------------------------------------------


def test_the_evidence_zip_is_the_cli_export_and_verifies(api: Api, tmp_path: Path) -> None:
    cid = api.client("supp").post("/api/v1/cases", json={"merchant_id": api.a.merchant.id, "category": "other",
                                                         "title": "证据", "payout_ids": [api.a.payout_id]}).json()["id"]
    r = api.client("audi").get(f"/api/v1/cases/{cid}/evidence")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == f'attachment; filename="case-{cid}-evidence.zip"'
    out = tmp_path / "cli.zip"
    export(api.engine, cid, out, CLIENT_NOW, tz="Asia/Shanghai")
    assert r.content == out.read_bytes()  # the same bytes as `settleguard evidence export` at the same time
    got = tmp_path / "api.zip"
    got.write_bytes(r.content)
    report = verify(got)
    assert report.ok
    assert report.case_id == cid
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert {"manifest.json", "summary.html", "case.json", "attempts.csv"} <= set(names)
    assert api.a.merchant.pan not in r.content.decode("latin-1")
    r = api.client("oper").get("/api/v1/cases/999999/evidence")
    assert (r.status_code, error_code(r)) == (404, "case_not_found")


# --- notifications ------------------------------------------------------------------------------


def test_the_delivery_log_is_paginated_and_a_merchant_sees_its_own(api: Api) -> None:
    with api.engine.connect() as conn:
        tries = int(conn.execute(select(func.count()).select_from(t.notification_attempts)).scalar_one())
    assert tries >= 2
    op = api.client("oper")
    log = op.get("/api/v1/notifications").json()
    assert log["total"] == tries
    ids = [x["attempt_id"] for x in log["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert {x["merchant_id"] for x in log["items"]} == {api.a.merchant.id, api.c.merchant.id}
    assert {(x["channel"], x["ok"]) for x in log["items"]} == {("sms", True)}
    one = op.get("/api/v1/notifications?limit=1&offset=1").json()
    assert ([x["attempt_id"] for x in one["items"]], one["total"]) == (ids[1:2], tries)
    only_c = op.get(f"/api/v1/notifications?merchant_id={api.c.merchant.id}").json()
    assert {x["merchant_id"] for x in only_c["items"]} == {api.c.merchant.id}
    assert only_c["total"] < tries
    ma = api.client("mera")
    own = ma.get("/api/v1/notifications").json()
    assert own["total"] == tries - only_c["total"]
    assert {x["merchant_no"] for x in own["items"]} == {api.a.merchant.merchant_no}
    got = ma.get(f"/api/v1/notifications?merchant_id={api.c.merchant.id}").json()
    assert (got["items"], got["total"]) == ([], 0)
    assert api.client("merb").get("/api/v1/notifications").json()["total"] == 0


def test_browser_writes_need_the_csrf_token_here_too(api: Api, vault: Vault) -> None:
    browser = api.client()
    csrf = login(browser, "supp").json()["csrf_token"]
    body = {"merchant_id": api.a.merchant.id, "category": "other", "title": "x"}
    r = browser.post("/api/v1/cases", json=body)
    assert (r.status_code, error_code(r)) == (403, "csrf_failed")
    assert rows(api.engine, t.cases) == []
    assert browser.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    pan = new_pan()
    use_verifier(api, vault, pan)
    merchant = api.client()
    csrf = login(merchant, "mera").json()["csrf_token"]
    r = merchant.post(f"/api/v1/merchants/{api.a.merchant.id}/card", json=card_body(pan))
    assert (r.status_code, error_code(r)) == (403, "csrf_failed")
    r = merchant.post(f"/api/v1/merchants/{api.a.merchant.id}/card", json=card_body(pan),
                      headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
