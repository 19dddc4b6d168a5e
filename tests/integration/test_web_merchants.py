"""Merchant onboarding and lifecycle through the API and the console (SQLite and PostgreSQL), issue 19 item 1:
operators register, import and change status; support reads; a merchant user sees its own merchant only; a bad
USCC is a 422 naming the field; an import is atomic; the console's form keeps the values (never a card number)
and no response carries a full card number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from merchant_files import enterprise, micro, uscc, write_csv
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.bootstrap import Container
from settleguard.cards.service import CardSettings
from settleguard.cards.vault import Vault
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.merchants.onboarding import add_merchant
from settleguard.web.app import create_app
from settleguard.web.console import CardTools, set_card_tools
from settleguard.web.services import Services

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"
TABLES = (t.merchants, t.settlement_accounts, t.terminals, t.imports)


@dataclass
class World:
    engine: Engine
    app: FastAPI
    tokens: dict[str, str]
    own_id: int  # merchant 1 (the merchant user's)
    other_id: int  # merchant 2

    def client(self, who: str | None = None) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        if who is not None:
            c.headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return c


def _id(engine: Engine, merchant_no: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(t.merchants.c.id).where(t.merchants.c.merchant_no == merchant_no)).scalar_one())


@pytest.fixture
def world(engine: Engine, vault: Vault) -> World:
    for i in (1, 2):
        add_merchant(engine, [micro(i)], vault=vault, now=NOW, actor="test")
    tokens = {}
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None),
                                 ("audi", Role.AUDITOR, None), ("mera", Role.MERCHANT, micro(1)["merchant_no"])):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name,
                 now=NOW, actor="test")
        tokens[name] = issue_token(engine, username=name, name="tests", now=NOW, actor="test").token
    app = create_app(engine, now=lambda: NOW)
    app.state.services = Services(Container(Settings(), given_engine=engine, given_vault=vault))
    set_card_tools(app, CardTools(vault, SimulatedVerifier(1), CardSettings()))
    return World(engine, app, tokens, _id(engine, micro(1)["merchant_no"]), _id(engine, micro(2)["merchant_no"]))


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {tb.name: int(c.execute(select(func.count()).select_from(tb)).scalar_one()) for tb in TABLES}


def body_of(row: dict[str, str]) -> dict[str, Any]:
    """An API registration body from a merchant file row."""
    out: dict[str, Any] = {k: v for k, v in row.items() if not k.startswith("terminal_")}
    out["terminals"] = [{"serial_no": row["terminal_sn"], "terminal_no": row["terminal_no"],
                         "model": row["terminal_model"]}]
    return out


def error(resp: Any) -> dict[str, Any]:
    err = resp.json()["error"]
    assert err["message_zh"]
    assert err["message_en"]
    return dict(err)


# --- the API ----------------------------------------------------------------------------------------------


def test_operators_register_support_reads_and_cannot_post(world: World) -> None:
    before = counts(world.engine)
    for who in ("supp", "audi", "mera"):
        r = world.client(who).post("/api/v1/merchants", json=body_of(micro(3)))
        assert (r.status_code, error(r)["code"]) == (403, "forbidden"), who
        r = world.client(who).post("/api/v1/merchants/import", files={"file": ("m.csv", b"x", "text/csv")})
        assert r.status_code == 403, who
        r = world.client(who).patch(f"/api/v1/merchants/{world.other_id}", json={"action": "freeze", "reason": "x"})
        assert r.status_code == 403, who
    assert counts(world.engine) == before
    r = world.client("oper").post("/api/v1/merchants", json=body_of(micro(3)))
    assert r.status_code == 201, r.text
    assert r.json()["registered"] == 1
    assert micro(3)["card_no"] not in r.text
    listed = world.client("supp").get("/api/v1/merchants", params={"limit": 2}).json()
    assert listed["total"] == 3
    assert len(listed["items"]) == 2
    assert listed["limit"] == 2
    found = world.client("supp").get("/api/v1/merchants", params={"q": micro(3)["merchant_no"]}).json()
    assert [m["merchant_no"] for m in found["items"]] == [micro(3)["merchant_no"]]
    with world.engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(t.audit_events.c.kind).where(t.audit_events.c.actor == "oper"))]
    assert "merchant.register" in kinds


def test_a_bad_uscc_is_a_422_naming_the_field_in_both_languages(world: World) -> None:
    before = counts(world.engine)
    bad = enterprise(5, uscc=uscc(5)[:-1] + ("0" if uscc(5)[-1] != "0" else "1"))
    r = world.client("oper").post("/api/v1/merchants", json=body_of(bad))
    assert r.status_code == 422
    err = error(r)
    assert err["code"] == "merchant_refused"
    fields = {p["field"]: p for p in err["details"]["problems"]}
    assert "uscc" in fields
    assert fields["uscc"]["field_zh"] == "统一社会信用代码"
    assert fields["uscc"]["zh"]
    assert fields["uscc"]["en"]
    assert bad["card_no"] not in r.text
    assert bad["legal_person_id"] not in r.text
    assert counts(world.engine) == before


def test_a_merchant_user_sees_only_its_own_merchant(world: World) -> None:
    ma = world.client("mera")
    listed = ma.get("/api/v1/merchants").json()
    assert [m["id"] for m in listed["items"]] == [world.own_id]
    assert listed["total"] == 1
    assert ma.get("/api/v1/merchants", params={"q": micro(2)["merchant_no"]}).json()["total"] == 0
    assert ma.get(f"/api/v1/merchants/{world.other_id}").status_code == 404
    assert ma.get(f"/api/v1/merchants/{world.own_id}").status_code == 200
    assert micro(2)["merchant_no"] not in ma.get("/api/v1/merchants").text


def test_an_import_is_atomic_and_reports_each_line_and_field(world: World, tmp_path: Path) -> None:
    rows = [micro(6), enterprise(7, uscc="91110105000000007X"), micro(8, mcc="9999")]
    path = write_csv(tmp_path / "入网.csv", rows)
    before = counts(world.engine)
    r = world.client("oper").post("/api/v1/merchants/import", files={"file": (path.name, path.read_bytes(), "text/csv")})
    assert r.status_code == 422, r.text
    err = error(r)
    found = {(p["line"], p["field"]) for p in err["details"]["problems"]}
    assert (3, "uscc") in found
    assert (4, "mcc") in found
    assert err["details"]["total_problems"] == len(err["details"]["problems"])
    assert "/tmp" not in r.text
    for row in rows:
        assert row["card_no"] not in r.text
    assert counts(world.engine) == before  # nothing half-registered
    good = write_csv(tmp_path / "good.csv", [micro(6), micro(8)])
    ok = world.client("oper").post("/api/v1/merchants/import", files={"file": ("good.csv", good.read_bytes())})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["registered"], ok.json()["file"]) == (2, "good.csv")
    again = world.client("oper").post("/api/v1/merchants/import", files={"file": ("good.csv", good.read_bytes())})
    assert again.json()["already_imported"] is True
    assert counts(world.engine)["merchants"] == before["merchants"] + 2


def test_an_upload_over_the_limit_is_413(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from settleguard.merchants import service

    monkeypatch.setattr(service, "MAX_UPLOAD", 1000)
    r = world.client("oper").post("/api/v1/merchants/import", files={"file": ("big.csv", b"a" * 5000)})
    assert (r.status_code, error(r)["code"]) == (413, "too_large")


def test_patch_freezes_unfreezes_and_closes_with_a_reason(world: World) -> None:
    op = world.client("oper")
    url = f"/api/v1/merchants/{world.other_id}"
    assert op.patch(url, json={"action": "freeze", "reason": ""}).status_code == 422
    r = op.patch(url, json={"action": "freeze", "reason": "风控审查"})
    assert r.status_code == 200, r.text
    assert (r.json()["from_status"], r.json()["to_status"]) == ("active", "frozen")
    assert op.patch(url, json={"action": "freeze", "reason": "again"}).status_code == 409
    assert op.patch(url, json={"action": "unfreeze", "reason": "审查完毕"}).json()["to_status"] == "active"
    assert op.patch(url, json={"action": "close", "reason": "注销"}).json()["to_status"] == "closed"
    r = op.patch(url, json={"action": "unfreeze", "reason": "x"})
    assert (r.status_code, error(r)["code"]) == (409, "merchant_status_refused")
    assert op.patch("/api/v1/merchants/999999", json={"action": "freeze", "reason": "x"}).status_code == 404
    with world.engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(t.audit_events.c.kind).where(
            t.audit_events.c.subject_type == "merchant", t.audit_events.c.subject_id == str(world.other_id)))]
    assert kinds == ["merchant.register", "merchant.freeze", "merchant.unfreeze", "merchant.close"]
    assert world.client("supp").get("/api/v1/merchants", params={"status": "closed"}).json()["total"] == 1


# --- the console ------------------------------------------------------------------------------------------


def sign_in(w: World, who: str) -> TestClient:
    c = TestClient(w.app, raise_server_exceptions=False)
    page = c.get("/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', page)
    data = {"username": who, "password": PASSWORD, **({"login_token": token.group(1)} if token else {})}
    r = c.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return c


def csrf(c: TestClient, page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', c.get(page).text)
    assert found
    return found.group(1)


LONG_DIGITS = re.compile(r"\d{16,19}")


def test_console_form_error_keeps_the_values_but_never_the_card_or_id_number(world: World) -> None:
    c = sign_in(world, "oper")
    token = csrf(c, "/merchants/new")
    row = micro(9, mcc="9999")
    r = c.post("/merchants/new", data={"csrf_token": token, **row}, follow_redirects=False)
    assert r.status_code == 422
    assert row["registered_name"] in r.text  # kept
    assert f'value="{row["merchant_no"]}"' in r.text
    assert "MCC" in r.text
    assert row["card_no"] not in r.text
    assert row["legal_person_id"] not in r.text
    assert not LONG_DIGITS.search(r.text)
    good = c.post("/merchants/new", data={"csrf_token": token, **micro(9)}, follow_redirects=False)
    assert good.status_code == 303
    page = c.get(good.headers["location"])
    assert page.status_code == 200
    assert "商户已登记" in page.text
    assert micro(9)["card_no"] not in page.text


def test_console_import_shows_the_line_report_and_status_buttons_are_for_operators(world: World,
                                                                                   tmp_path: Path) -> None:
    c = sign_in(world, "oper")
    token = csrf(c, "/merchants/import")
    bad = write_csv(tmp_path / "bad.csv", [micro(10), micro(11, mcc="9999")])
    r = c.post("/merchants/import", data={"csrf_token": token}, files={"file": ("bad.csv", bad.read_bytes())})
    assert r.status_code == 422
    assert "MCC" in r.text
    assert ">3<" in r.text  # the line
    assert not LONG_DIGITS.search(r.text)
    page = c.get(f"/merchants/{world.other_id}").text
    assert 'value="freeze"' in page
    r = c.post(f"/merchants/{world.other_id}/status", data={"csrf_token": token, "action": "freeze",
                                                           "reason": "风控审查"}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get(f"/merchants/{world.other_id}").text
    assert "风控审查" in page  # in the history
    assert "已冻结" in page or "冻结" in page
    assert not LONG_DIGITS.search(page)
    s = sign_in(world, "supp")
    page = s.get(f"/merchants/{world.other_id}").text
    assert 'value="unfreeze"' not in page
    assert s.post(f"/merchants/{world.other_id}/status", data={"csrf_token": csrf(s, "/merchants"),
                                                              "action": "unfreeze", "reason": "x"}).status_code == 403
    listing = s.get("/merchants", params={"q": micro(2)["merchant_no"]})
    assert listing.status_code == 200
    assert micro(2)["registered_name"] in listing.text
    assert micro(1)["registered_name"] not in listing.text
