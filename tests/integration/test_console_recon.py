"""The console's reconciliation pages (web/console/routes_recon.py) on SQLite and PostgreSQL over a world
reconciled through the project's own import and run (recon_web_helpers.py): the day's page, the break queue
with filters, a break page with the bank side and our side; zh first, labels never codes, local time to the
second; staff only (a merchant user gets 403, nobody signed in is sent to the login); card numbers masked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from recon_web_helpers import PASSWORD, STRANGER_PAN, ReconWorld, reconciled
from sqlalchemy import Engine, update

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.web.app import create_app

HIDDEN = re.compile(r'name="login_token" value="([^"]+)"')
CODES = ("bank_only", "ledger_only", "amount_mismatch", "duplicate_debit", "balance_drift", "succeeded", "DBIT", "BOOK")


@pytest.fixture
def world(engine: Engine, vault: Vault, tmp_path: Path) -> ReconWorld:
    return reconciled(engine, vault, tmp_path)


def sign_in(w: ReconWorld, who: str) -> TestClient:
    c = TestClient(create_app(w.engine), follow_redirects=False)
    token = HIDDEN.search(c.get("/login").text)
    assert token is not None
    r = c.post("/login", data={"username": who, "password": PASSWORD, "login_token": token.group(1)})
    assert r.status_code == 303, r.text
    return c


def visible(html: str) -> str:
    """The page's text without tags, attributes (links carry codes in their query), the <head> or a closed
    <details> (the bank's original record, shown as it came, on request)."""
    body = re.sub(r"<details>.*?</details>", " ", html.split("<body", 1)[1], flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def no_codes(html: str, where: str) -> None:
    text = visible(html)
    for code in CODES:
        assert not re.search(rf"(?<![\w-]){code}(?![\w-])", text), (where, code)


def test_the_reconciliation_pages(world: ReconWorld) -> None:
    a, b, c, d = world.dues
    ops = sign_in(world, "oper")
    day = ops.get("/recon")
    assert day.status_code == 200
    assert "对账" in day.text
    assert "2026-11-20" in day.text  # the latest statement date with data
    for word in ("银行有、账上无", "金额不符", "余额不平", "已匹配", "STMT-20261120"):
        assert word in day.text, word
    assert "0.01" in day.text  # the statement's drift, in yuan
    assert "2026-11-23 09:02:03" in day.text  # the run, Beijing time to the second
    no_codes(day.text, "/recon")
    en = ops.get("/recon?lang=en")
    assert "duplicate debit" in en.text
    assert "Balance proof" in en.text
    no_codes(en.text, "/recon?lang=en")
    other_day = ops.get("/recon?date=2026-11-23&lang=zh")  # (the language is kept in a cookie)
    assert "账上已付、银行未记账" in other_day.text
    assert "当日没有对账单" in other_day.text

    queue = ops.get("/recon/breaks")
    assert queue.status_code == 200
    rows = re.findall(r'<a href="/recon/breaks/(\d+)">', queue.text)
    assert len(rows) == 5
    no_codes(queue.text, "/recon/breaks")
    only = ops.get("/recon/breaks?type=ledger_only&status=open")
    assert re.findall(r'<a href="/recon/breaks/(\d+)">', only.text) != []
    assert "账上已付、银行未记账" in only.text
    assert f"/payouts/{d.payout_id}" in only.text
    assert len(re.findall(r'<a href="/recon/breaks/(\d+)">', only.text)) == 1
    ranged = ops.get("/recon/breaks?from=2026-11-20&to=2026-11-20")
    assert len(re.findall(r'<a href="/recon/breaks/(\d+)">', ranged.text)) == 4
    assert len(re.findall(r'<a href="/recon/breaks/(\d+)">', ops.get("/recon/breaks?status=cleared").text)) == 0
    for bad in ("/recon/breaks?type=lost", "/recon/breaks?from=2026-13-01", "/recon/breaks?from=2026-11-23&to=2026-11-20",
                "/recon?date=x", "/recon/breaks/abc"):
        r = ops.get(bad)
        assert r.status_code == 400, bad
        assert "<html" in r.text
    assert ops.get("/recon/breaks/999999").status_code == 404

    by_type = {x["type"]: x["id"] for x in world.breaks().values()}
    dup = ops.get(f"/recon/breaks/{by_type['duplicate_debit']}")
    assert dup.status_code == 200
    page = dup.text
    assert page.index("银行一侧") < page.index("我方一侧")  # side by side: bank, then ours
    assert c.key in page
    assert "BANK-E3" in page
    assert "BANK-E4" in page
    assert "按指令号匹配" in page
    assert "未匹配" in page
    assert f"/payouts/{c.payout_id}" in page
    assert "成功" in page  # the payout's status and the attempt's outcome, as labels
    assert "2026-11-23 09:02:03" in page
    no_codes(page, "duplicate break")
    missing = ops.get(f"/recon/breaks/{by_type['ledger_only']}").text
    assert "银行没有对应的流水" in missing
    assert "转查询" in missing
    stranger = ops.get(f"/recon/breaks/{by_type['bank_only']}").text
    assert "我们没有对应的出款" in stranger
    assert STRANGER_PAN not in stranger
    drift = ops.get(f"/recon/breaks/{by_type['balance_drift']}?lang=en").text
    assert "Opening" in drift
    assert "STMT-20261120" in drift
    no_codes(drift, "drift break (en)")


def test_staff_only_and_card_numbers_masked(world: ReconWorld) -> None:
    by_type = {x["type"]: x["id"] for x in world.breaks().values()}
    pages = ["/recon", "/recon/breaks", f"/recon/breaks/{by_type['bank_only']}"]
    anon = TestClient(create_app(world.engine), follow_redirects=False)
    merchant = sign_in(world, "mera")
    for path in pages:
        assert anon.get(path).headers["location"].startswith("/login?next=/recon"), path
        refused = merchant.get(path)
        assert refused.status_code == 403, path
        assert "无权" in refused.text
    assert 'href="/recon"' not in merchant.get(f"/m/{world.dues[0].merchant.id}").text  # no link for a merchant
    for who in ("supp", "audi"):
        staff = sign_in(world, who)
        for path in pages:
            assert staff.get(path).status_code == 200, (who, path)
        assert 'href="/recon"' in staff.get("/recon").text  # the nav link
    with world.engine.begin() as conn:  # a line stored in the clear (an older version, a hand fix)
        conn.execute(update(t.bank_lines).where(t.bank_lines.c.entry_ref == "E5").values(
            raw=f"<AddtlNtryInf>卡号 {STRANGER_PAN}</AddtlNtryInf>", acct_svcr_ref=STRANGER_PAN))
        conn.execute(update(t.recon_breaks).where(t.recon_breaks.c.type == "bank_only").values(bank_ref=STRANGER_PAN))
    ops = sign_in(world, "oper")
    for path in pages[1:]:
        shown = ops.get(path).text
        assert STRANGER_PAN not in shown, path
        assert STRANGER_PAN[:6] in shown, path


def test_a_break_is_resolved_with_four_eyes(world: ReconWorld) -> None:
    from recon_web_helpers import RUN_AT

    from settleguard.access.model import Role
    from settleguard.access.service import add_user

    add_user(world.engine, username="oper2", password=PASSWORD, role=Role.OPERATOR, merchant_no=None,
             display_name="OPER2", now=RUN_AT, actor="test")
    bid = world.breaks()["duplicate_debit"]["id"]
    page = f"/recon/breaks/{bid}"
    maker, checker, support = sign_in(world, "oper"), sign_in(world, "oper2"), sign_in(world, "supp")

    def token(c: TestClient) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', c.get(page).text)
        assert found is not None
        return found.group(1)

    assert "提出处理方案" in maker.get(page).text
    assert "提出处理方案" not in support.get(page).text  # support reads only
    assert support.post(f"{page}/propose", data={"action": "bank_receivable", "note": "x",
                                                 "csrf_token": token(support)}).status_code == 403
    assert maker.post(f"{page}/propose", data={"action": "bank_receivable", "note": "重复扣款，向银行追索",
                                               "csrf_token": "forged"}).status_code == 403
    empty = maker.post(f"{page}/propose", data={"action": "bank_receivable", "note": "", "csrf_token": token(maker)})
    assert empty.status_code == 422
    assert "未执行" in empty.text
    assert "尚无处理方案" in empty.text  # nothing changed
    done = maker.post(f"{page}/propose", data={"action": "bank_receivable", "note": "重复扣款，向银行追索",
                                               "csrf_token": token(maker)})
    assert (done.status_code, done.headers["location"]) == (303, f"{page}?done=proposed")
    shown = maker.get(done.headers["location"]).text
    assert "等待另一名操作员复核" in shown
    assert "待复核" in shown
    assert "向银行追索" in shown
    assert "须由另一名操作员批准" in shown  # the maker sees no approve button
    rid = re.search(r'action="/recon/resolutions/(\d+)/approve"', shown)
    assert rid is not None
    own = maker.post(f"/recon/resolutions/{rid.group(1)}/approve", data={"csrf_token": token(maker)})
    assert own.status_code == 403
    assert "不能批准自己" in own.text
    assert world.breaks()["duplicate_debit"]["status"] == "open"
    ok = checker.post(f"/recon/resolutions/{rid.group(1)}/approve", data={"note": "已核对", "csrf_token": token(checker)})
    assert (ok.status_code, ok.headers["location"]) == (303, f"{page}?done=approved")
    assert world.breaks()["duplicate_debit"]["status"] == "resolved"
    after = checker.get(page).text
    assert "已批准" in after
    assert "oper2" in after
    assert "提出处理方案" not in after  # resolved: nothing more to propose
    no_codes(after, "resolved break")
