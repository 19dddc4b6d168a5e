"""The console page 今日结算周期 Today's cycle (/day) and GET /api/v1/day, on SQLite and PostgreSQL: the business
day's expected files with their state, what arrived (a rejected file too), what ran, what comes next and its
alerts; zh first, labels never codes, Beijing time; staff only."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from factories import Txn, import_rows, make_merchants, ref
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.bootstrap import Container
from settleguard.cards.vault import Vault
from settleguard.config import Settings
from settleguard.inbox import repository as inbox_repo
from settleguard.settlement.model import CardType, CutOffs, TxnKind
from settleguard.web.app import create_app

Z = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 3)
NOW = datetime.combine(DAY + timedelta(days=1), time(10, 30), Z)
PASSWORD = "correct-horse-battery"
HIDDEN = re.compile(r'name="login_token" value="([^"]+)"')
CODES = ("transactions", "camt053", "clearing_inn", "late", "settle", "done", "rejected", "file_late",
         "day_not_settled", "created", "missing")  # ("What arrived" is a heading: both languages)


def arrive(engine: Engine, kind: str, days: list[date], when: datetime, status: str, name: str) -> None:
    with engine.begin() as conn:
        inbox_repo.record(conn, directory="/inbox", name=name, stored_name=name, sha256=name.ljust(64, "0")[:64],
                          size=10, kind=kind, status=status, reason=None if status != "rejected" else ("坏", "bad"),
                          received_at=when, processed_at=when, days=days)


def visible(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html.split("<body", 1)[1])


def test_today_s_cycle_page_and_api(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.daycycle.service import run_day

    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 2)
    cutoffs = CutOffs(timezone="Asia/Shanghai")
    import_rows(engine, tmp_path, [Txn(ref(), x.merchant_no, x.terminal_no, datetime.combine(DAY, time(12), Z),
                                       TxnKind.SALE, CardType.QR, 50_000) for x in ms], now=NOW, cutoffs=cutoffs)
    arrive(engine, "transactions", [DAY], datetime.combine(DAY, time(23, 30), Z), "done", "pos-20261203.csv")
    arrive(engine, None, [], datetime.combine(DAY, time(23, 40), Z), "rejected", "garbled.csv")  # type: ignore[arg-type]
    container = Container(Settings(inbox_dirs=[tmp_path / "in"]), given_engine=engine, given_vault=vault,
                          clock=lambda: NOW)
    run_day(engine, container.day_config(), vault=vault, now=datetime.combine(DAY, time(20), Z))  # starts the cycle
    run_day(engine, container.day_config(), vault=vault, now=NOW)  # settles; the statement and clearing are late
    for name, role in (("oper", Role.OPERATOR), ("shop", Role.MERCHANT)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=ms[0].merchant_no if
                 role is Role.MERCHANT else None, display_name=name, now=NOW, actor="test")
    app = create_app(container)

    def sign_in(who: str) -> TestClient:
        c = TestClient(app, follow_redirects=False)
        token = HIDDEN.search(c.get("/login").text)
        assert token is not None
        assert c.post("/login", data={"username": who, "password": PASSWORD,
                                      "login_token": token.group(1)}).status_code == 303
        return c

    ops = sign_in("oper")
    page = ops.get(f"/day?date={DAY.isoformat()}")
    assert page.status_code == 200, page.text
    text = visible(page.text)
    for word in ("今日结算周期", "应到文件", "交易文件", "已到", "银行对账单 camt.053", "迟到", "到达的文件",
                 "pos-20261203.csv", "garbled.csv", "已拒收", "已执行", "结算", "已完成", "结算商户 2 户", "告警",
                 "文件迟到", "接下来", "Asia/Shanghai", "12-04 10:00", "12-03 23:30:00", "12-03 23:40:00"):
        assert word in text, word
    for code in CODES:
        found = re.search(rf"(?<![\w.-]){code}(?![\w-])", text)
        assert not found, (code, text[max(0, found.start() - 80):found.end() + 40])
    assert text.index("应到文件") < text.index("到达的文件") < text.index("已执行") < text.index("告警")
    assert 'href="/day"' in page.text  # in the navigation
    en = visible(ops.get(f"/day?date={DAY.isoformat()}&lang=en").text)
    assert "Expected files" in en
    assert "What ran" in en
    assert "late" in en
    yesterday = ops.get("/day")
    assert yesterday.status_code == 200
    assert DAY.isoformat() in yesterday.text

    assert sign_in("shop").get("/day").status_code == 403
    assert TestClient(app, follow_redirects=False).get("/day").status_code == 303  # to the login

    token = issue_token(engine, username="oper", name="tests", now=NOW, actor="test").token
    api = TestClient(app).get(f"/api/v1/day?date={DAY.isoformat()}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["business_day"] == DAY.isoformat()
    assert body["settled"] is True
    assert {f["kind"]: f["state"] for f in body["files"]} == {"transactions": "arrived", "clearing_inn": "late",
                                                             "camt053": "late"}
    assert body["files"][0]["due_at"].endswith("+08:00")
    assert {a["kind"] for a in body["alerts"]} == {"file_late"}
    assert [r["action"] for r in body["runs"] if r["action"] != "alert"] == ["settle"]
