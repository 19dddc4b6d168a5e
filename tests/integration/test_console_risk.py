"""The console's risk queue (web/console/routes_risk.py, issue 22) on SQLite and PostgreSQL, over a corpus generated
by the scan's own acceptance test (test_risk_scan.build_corpus: merchants with planted card-cashing patterns) and
scanned through risk.service: the queue of the latest scanned day sorted by score, its filters (day, minimum score,
rule), explanations zh first, rules by name (never a bare rule id), case links and hold state; a merchant's page
with its features against its own baseline (chart data), the evidence transactions and its holds; staff only (a
merchant user gets 403 everywhere and changes nothing; support and auditors read only); an operator's hold and
release through the form (CSRF) change the payouts exactly as ``settleguard risk hold|release`` does, with a
hostile reason bounded and its card number masked."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from test_risk_scan import DAY, NOW, build_corpus
from typer.testing import CliRunner

from payout_helpers import SEND_AT, VALUE_DAY, ScriptedBank, entries, make_payouts, payout
from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.labels import RISK_RULE
from settleguard.payouts.merchant_holds import RISK_HOLD_CODE
from settleguard.payouts.service import send_due
from settleguard.risk import service as risk
from settleguard.web.app import create_app

PASSWORD = "correct-horse-battery"
LOGIN = re.compile(r'name="login_token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAN = "6222021234567890128"


def _users(engine: Engine, merchant_no: str) -> None:
    for name, role, m in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None), ("audi", Role.AUDITOR, None),
                          ("shop", Role.MERCHANT, merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=m, display_name=name,
                 now=SEND_AT - timedelta(days=1), actor="admin")


def sign_in(engine: Engine, who: str, clock: object = None) -> TestClient:
    c = TestClient(create_app(engine, now=clock or (lambda: SEND_AT)), follow_redirects=False)  # type: ignore[arg-type]
    token = LOGIN.search(c.get("/login").text)
    assert token is not None
    r = c.post("/login", data={"username": who, "password": PASSWORD, "login_token": token.group(1)})
    assert r.status_code == 303, r.text
    return c


def csrf(c: TestClient, path: str = "/") -> str:
    got = CSRF.search(c.get(path).text)
    assert got is not None
    return got.group(1)


def visible(html: str) -> str:
    """The page's text: no tags or attributes (links carry codes in their query), no <head>, no inline JSON."""
    body = html.split("<body", 1)[1]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def bare_rule_ids(html: str) -> list[str]:
    """Rule ids read as text other than inside an explanation's "规则 <id>" / "rule <id>" (named before it)."""
    text = re.sub(r"(规则|rule) [A-Za-z0-9_]+", " ", visible(html))
    for _zh, en in RISK_RULE.values():  # English names are words ("busy after a long silence")
        text = text.replace(en, " ")
    return [r for r in RISK_RULE if re.search(rf"(?<![\w-]){r}(?![\w-])", text)]


def browser_codes(html: str, lang: str) -> list[str]:
    """The e2e acceptance's check (tests/e2e/test_browser_no_codes.codes_in: payout statuses, categories, roles,
    case statuses as stored) over the page's text; a Chinese reader's text without the English glosses."""
    import sys

    e2e = str(Path(__file__).resolve().parents[1] / "e2e")
    if e2e not in sys.path:
        sys.path.append(e2e)
    from test_browser_no_codes import codes_in

    if lang == "zh":
        html = re.sub(r'<span class="en">.*?</span>', " ", html, flags=re.S)
    return list(codes_in(visible(html), lang))


def rows_of(html: str) -> list[str]:
    return re.findall(r'<a href="/risk/([0-9A-Za-z_-]+)\?date=', html)


def test_the_risk_queue_and_merchant_pages(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    corpus = build_corpus(engine, vault, seed=5)
    with engine.connect() as conn:
        nos = dict(conn.execute(select(t.merchants.c.id, t.merchants.c.merchant_no)).all())
    planted_no = {nos[m]: p for m, p in corpus.planted.items()}
    _users(engine, nos[corpus.normal[0]])
    ops = sign_in(engine, "oper")
    empty = ops.get("/risk")
    assert empty.status_code == 200
    assert "尚未扫描" in empty.text
    res = risk.scan(engine, DAY, risk.load_rules(), tz="Asia/Shanghai", now=NOW)
    assert res.flagged
    assert res.cases_opened

    page = ops.get("/risk")
    assert page.status_code == 200
    assert "风险队列" in page.text
    assert DAY.isoformat() in page.text  # the latest scanned day by default
    shown = rows_of(page.text)
    assert len(shown) == len(res.flagged)
    scores = {f.merchant_no: f.score for f in res.flagged}
    assert [scores[n] for n in shown] == sorted(scores.values(), reverse=True)  # highest score first
    assert {n for n, p in planted_no.items() if p != "silence"} <= set(shown)
    for word in ("同一张卡当日多次交易", "整数金额占比高", "工单", "正常出款"):
        assert word in page.text, word
    assert page.text.index("同一张卡当日多次交易") < page.text.index("the same card several times a day")  # zh first
    for case_id in res.cases_opened:
        assert f'href="/cases/{case_id}"' in page.text
    assert bare_rule_ids(page.text) == []
    en = ops.get("/risk?lang=en")
    assert "the same card several times a day" in en.text
    assert "Risk queue" in en.text
    assert bare_rule_ids(en.text) == []
    ops.get("/risk?lang=zh")

    same = ops.get("/risk?rule=same_card")
    assert set(rows_of(same.text)) == {f.merchant_no for f in res.flagged if "same_card" in f.rules}
    assert {n for n, p in planted_no.items() if p == "same_card"} <= set(rows_of(same.text))
    top = max(scores.values())
    assert set(rows_of(ops.get(f"/risk?min_score={top}").text)) == {n for n, s in scores.items() if s >= top}
    other_day = ops.get(f"/risk?date={(DAY - timedelta(days=3)).isoformat()}")
    assert other_day.status_code == 200
    assert rows_of(other_day.text) == []
    assert "没有符合条件的预警" in other_day.text
    for bad in ("/risk?min_score=101", "/risk?date=2026-13-01", "/risk?rule=a%27b", "/risk?page=0"):
        r = ops.get(bad)
        assert r.status_code == 400, bad
        assert "<html" in r.text

    mid = next(m for m, p in corpus.planted.items() if p == "same_card")
    one = ops.get(f"/risk/{nos[mid]}")
    assert one.status_code == 200
    text = " ".join(visible(one.text).split())
    assert "同一张卡当日多次交易" in text
    assert "同一卡当日最多笔数" in text  # the feature by name
    assert all(ref in one.text for ref in sorted(corpus.planted_refs[mid])[:5])  # the evidence transactions
    assert "证据交易" in text
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text)  # local time to the second
    assert bare_rule_ids(one.text) == []
    for path in ("/risk", f"/risk/{nos[mid]}"):
        for lang in ("en", "zh"):
            assert browser_codes(ops.get(f"{path}?lang={lang}").text, lang) == [], (path, lang)
    data = json.loads(re.search(r'<script id="hist-data" type="application/json">(.*?)</script>', one.text,
                                re.S).group(1))  # type: ignore[union-attr]
    assert data["x"][-1] == DAY.isoformat()
    assert len(data["x"]) == 30
    volume = {s["name"]: s["values"] for s in data["volume"]["series"]}
    baseline = next(v for k, v in volume.items() if k.startswith("基线"))
    assert baseline[-1] is not None
    assert baseline[-1] > 0
    assert "echarts.min.js" in one.text
    assert "风控暂停出款" in one.text  # the operator's form
    assert ops.get("/risk/NO-SUCH-MERCHANT").status_code == 404
    assert ops.get("/risk/bad%20no").status_code in (400, 404)

    # staff read; only an operator acts; a merchant user sees nothing
    for who in ("supp", "audi"):
        c = sign_in(engine, who)
        assert c.get("/risk").status_code == 200
        page = c.get(f"/risk/{nos[mid]}")
        assert page.status_code == 200
        assert 'action="/risk/' not in page.text  # no hold form
        r = c.post(f"/risk/{nos[mid]}/hold", data={"csrf_token": csrf(c), "reason": "疑似套现"})
        assert r.status_code == 403
    shop = sign_in(engine, "shop")
    token = csrf(shop, f"/m/{corpus.normal[0]}")
    for path in ("/risk", f"/risk/{nos[mid]}", f"/risk/{nos[corpus.normal[0]]}"):
        r = shop.get(path)
        assert r.status_code == 403, path
        assert nos[mid] not in r.text
    for what in ("hold", "release"):
        assert shop.post(f"/risk/{nos[corpus.normal[0]]}/{what}",
                         data={"csrf_token": token, "reason": "x"}).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(t.risk_holds)).first() is None  # nothing changed


def test_hold_and_release_through_the_console_change_payouts_as_the_cli_does(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    by_console, by_cli = make_payouts(engine, vault, tmp_path, [88_800, 20_000])
    _users(engine, by_console.merchant.merchant_no)
    no = by_console.merchant.merchant_no
    ops = sign_in(engine, "oper")
    token = csrf(ops, f"/risk/{no}")
    # refused: no CSRF token, a wrong one, no reason, a reason over the form's bound; nothing changes
    assert ops.post(f"/risk/{no}/hold", data={"reason": "疑似套现"}).status_code == 403
    assert ops.post(f"/risk/{no}/hold", data={"reason": "疑似套现", "csrf_token": "forged"}).status_code == 403
    empty = ops.post(f"/risk/{no}/hold", data={"reason": "  \t ", "csrf_token": token})
    assert empty.status_code == 409
    assert "须填写原因" in empty.text
    assert ops.post(f"/risk/{no}/hold", data={"reason": "x" * 5000, "csrf_token": token}).status_code == 400
    assert ops.post("/risk/NO-SUCH/hold", data={"reason": "x", "csrf_token": token}).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(t.risk_holds)).first() is None

    hostile = f"疑似套现 卡号 {PAN}\x1b[31m\x00<script>alert(1)</script>" + "长" * 3000
    done = ops.post(f"/risk/{no}/hold", data={"reason": hostile, "csrf_token": token})
    assert done.status_code == 303, done.text[:300]
    assert done.headers["location"] == f"/risk/{no}?done=hold"
    cli_run = CliRunner()
    got = cli_run.invoke(cli, ["--db", db_url, "risk", "hold", by_cli.merchant.merchant_no, "--by", "oper", "--reason",
                               "疑似套现"])
    assert got.exit_code == 0, got.output
    again = ops.post(f"/risk/{no}/hold", data={"reason": "again", "csrf_token": token})
    assert again.status_code == 409  # one hold at a time
    assert "已在风控暂停中" in again.text

    with engine.connect() as conn:
        h = conn.execute(select(t.risk_holds).where(t.risk_holds.c.merchant_id == by_console.merchant.id)).one()
        audit = conn.execute(select(t.audit_events.c.actor, t.audit_events.c.payload)
                             .where(t.audit_events.c.kind == "risk.hold").order_by(t.audit_events.c.id)).all()
    assert h.placed_by == "oper"
    assert len(h.reason) <= 256
    assert PAN not in h.reason
    assert "622202*********0128" in h.reason
    assert "\x00" not in h.reason
    assert "\x1b" not in h.reason
    assert [a for a, _ in audit] == ["oper", "oper"]
    assert all(PAN not in p for _, p in audit)
    page = ops.get(f"/risk/{no}")
    assert "风控暂停出款中" in page.text
    assert PAN not in page.text
    assert "<script>alert(1)" not in page.text
    assert "解除风控暂停并放行出款" in page.text

    send_due(engine, ScriptedBank(), vault, as_of=VALUE_DAY, now=SEND_AT)
    a, b = payout(engine, by_console.payout_id), payout(engine, by_cli.payout_id)
    assert (a["status"], a["category"], a["last_code"]) == ("held", "risk_or_compliance_block", RISK_HOLD_CODE)
    assert (b["status"], b["category"], b["last_code"]) == (a["status"], a["category"], a["last_code"])
    assert entries(engine, by_console.payout_id) == entries(engine, by_cli.payout_id) == ["payout_submit", "payout_hold"]
    queue = ops.get("/risk")  # nothing scanned: the queue says so; the hold shows on the merchant page
    assert queue.status_code == 200

    for who in ("supp", "audi"):
        c = sign_in(engine, who)
        assert c.post(f"/risk/{no}/release", data={"reason": "核实无误", "csrf_token": csrf(c)}).status_code == 403
    assert payout(engine, by_console.payout_id)["status"] == "held"
    released = ops.post(f"/risk/{no}/release", data={"reason": f"核实无误 {PAN}", "csrf_token": token})
    assert released.status_code == 303
    got = cli_run.invoke(cli, ["--db", db_url, "risk", "release", by_cli.merchant.merchant_no, "--by", "oper",
                               "--reason", "核实无误"])
    assert got.exit_code == 0, got.output
    a, b = payout(engine, by_console.payout_id), payout(engine, by_cli.payout_id)
    assert (a["status"], a["instruction_no"]) == (b["status"], b["instruction_no"]) == ("released", 1)
    assert entries(engine, by_console.payout_id) == entries(engine, by_cli.payout_id) == [
        "payout_submit", "payout_hold", "payout_release"]
    with engine.connect() as conn:
        h = conn.execute(select(t.risk_holds).where(t.risk_holds.c.merchant_id == by_console.merchant.id)).one()
    assert (h.released_by, PAN in (h.release_reason or "")) == ("oper", False)
    after = ops.get(f"/risk/{no}?done=release")
    assert "风控暂停已解除" in after.text
    assert "已解除" in after.text
    assert ops.post(f"/risk/{no}/release", data={"reason": "x", "csrf_token": token}).status_code == 409  # not held
