"""The console and the API read from a streaming standby (``read_db``) and write to the primary (``db``).

Against a real primary/standby pair (tests/ha/pg_pair.py): a GET reads through the read engine, and what the
primary committed shows there once replayed; callers are still authenticated on the primary (tokens and
sessions are touched); and every GET page and API route (path parameters: an existing merchant, payout and case) answers without
trying to write, since the standby refuses writes (``cannot execute ... in a read-only transaction``) — a GET handler
that writes fails here. Logins (POST) still work: they go to the primary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pg_pair import PgPair
from sqlalchemy import Engine, event, select
from test_failover import seed, started_pair

from conftest import NOW
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.bootstrap import Container
from settleguard.cards.vault import load_vault
from settleguard.cases.service import open_case
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.web.app import create_app

pytestmark = pytest.mark.slow
PASSWORD = "correct-horse-battery"
HIDDEN = re.compile(r'name="([a-z_]+)" value="([^"]*)"')


@dataclass
class Rig:
    pair: PgPair
    primary: Engine
    app: FastAPI
    container: Container
    token: str
    merchant_no: str
    ids: dict[str, int]  # path parameter -> an existing row's id
    seen: dict[str, list[str]]  # "primary" | "read" -> SQL statements run

    def api(self) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        c.headers["Authorization"] = f"Bearer {self.token}"
        return c

    def console(self) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False, follow_redirects=False)
        form = c.get("/login")  # a GET: rendered from the standby
        assert form.status_code == 200, form.text[:500]
        token = dict(HIDDEN.findall(form.text))["login_token"]
        r = c.post("/login", data={"username": "oper", "password": PASSWORD, "login_token": token, "next": ""})
        assert r.status_code == 303, r.text[:500]  # the session is written on the primary
        return c


def record(engine: Engine, into: list[str]) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _log(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        into.append(statement)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    for pair in started_pair(sync=False):
        work = tmp_path_factory.mktemp("read-standby")
        seed(pair, work, merchants=2)  # two merchants, a settled day, a payout each
        primary = open_engine(pair.primary_url)
        vault = load_vault(None, work / "ha.key")
        with primary.connect() as conn:
            merchant_id, merchant_no = conn.execute(select(t.merchants.c.id, t.merchants.c.merchant_no)
                                                    .order_by(t.merchants.c.id).limit(1)).one()
            payout_id = int(conn.execute(select(t.payouts.c.id).where(t.payouts.c.merchant_id == merchant_id))
                            .scalars().first())
        case_id = open_case(primary, merchant_no=merchant_no, category="other", title="样例 sample", actor="test",
                            now=NOW, tz="Asia/Shanghai", payout_ids=[payout_id])
        ids = {"merchant_id": int(merchant_id), "payout_id": payout_id, "case_id": case_id}
        add_user(primary, username="oper", password=PASSWORD, role=Role.OPERATOR, merchant_no=None,
                 display_name="OPER", now=NOW, actor="test")
        token = issue_token(primary, username="oper", name="tests", now=NOW, actor="test").token
        pair.wait_replayed()
        settings = Settings(db=pair.primary_url, read_db=pair.standby_url, key_file=work / "ha.key")
        container = Container(settings, given_engine=primary, given_vault=vault, clock=lambda: NOW)
        seen: dict[str, list[str]] = {"primary": [], "read": []}
        record(primary, seen["primary"])
        record(container.read_engine, seen["read"])
        yield Rig(pair, primary, create_app(container), container, token, str(merchant_no), ids, seen)
        container.read_engine.dispose()
        primary.dispose()


def test_the_read_engine_is_the_standby_and_get_handlers_read_there(rig: Rig) -> None:
    assert rig.container.read_engine is not rig.container.engine
    assert rig.container.read_engine.url.port == rig.pair.standby_port
    with rig.container.read_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one() is True

    for log in rig.seen.values():
        log.clear()
    r = rig.api().get("/api/v1/payouts")
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 2
    assert any("payouts" in s for s in rig.seen["read"]), "the payout list was not read from the standby"
    assert not any("FROM payouts" in s for s in rig.seen["primary"]), "the payout list was read from the primary"
    assert any("api_tokens" in s or "token" in s for s in rig.seen["primary"]), "the caller is checked on the primary"


def test_what_the_primary_commits_shows_on_the_standby_once_replayed(rig: Rig) -> None:
    before = rig.api().get("/api/v1/cases").json()["total"]
    open_case(rig.primary, merchant_no=rig.merchant_no, category="other", title="备库读取 read from the standby",
              actor="test", now=NOW, tz="Asia/Shanghai")
    rig.pair.wait_replayed()
    after = rig.api().get("/api/v1/cases")
    assert after.status_code == 200, after.text
    assert after.json()["total"] == before + 1


def get_paths(app: FastAPI, ids: dict[str, int]) -> list[str]:
    """Every GET route, its path parameters filled with existing ids (routes with other parameters left out)."""
    out = set()
    for r in iter_route_contexts(app.routes):
        if r.path and "GET" in (r.methods or ()) and isinstance(r.original_route, APIRoute):
            path = r.path
            for name, value in ids.items():
                path = path.replace("{" + name + "}", str(value))
            if "{" not in path:
                out.add(path)
    return sorted(out)


def test_no_get_page_or_api_route_writes_on_the_standby(rig: Rig) -> None:
    api, console = rig.api(), rig.console()
    paths = get_paths(rig.app, rig.ids)
    assert {"/api/v1/payouts", "/", f"/api/v1/payouts/{rig.ids['payout_id']}"} <= set(paths)
    assert len(paths) > 40
    failures: dict[str, Any] = {}
    answered = 0
    rig.seen["read"].clear()
    for path in paths:
        client = api if path.startswith("/api/") or path == "/metrics" else console
        r = client.get(path)
        answered += r.status_code == 200
        if r.status_code >= 500:
            failures[path] = (r.status_code, r.text[:300])
    assert failures == {}, f"GET handlers that failed on the read-only standby: {failures}"
    assert answered >= len(paths) * 2 // 3, f"only {answered} of {len(paths)} GET routes answered 200"
    assert len(rig.seen["read"]) > len(paths), "the pages were not read from the standby"
