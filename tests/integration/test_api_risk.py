"""``/api/v1/risk`` (web/api_risk.py, issue 22) on SQLite and PostgreSQL over a scanned corpus of merchants with
planted card-cashing patterns (test_risk_scan.build_corpus): the alerts of the latest scanned day (or ?date=),
highest score first, paginated as every list ({items, total, limit, offset}), each with merchant_no, score, rule
ids, their names and the explanation {zh, en}; filters by minimum score and rule; one merchant's picture (alert
with its baseline, evidence transactions with ISO times, 30 days of features, holds); staff only (action
case_read: a merchant user gets 403); errors are JSON with a zh/en message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from test_risk_scan import DAY, NOW, build_corpus

from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.risk import service as risk
from settleguard.web.app import create_app

PASSWORD = "correct-horse-battery"


def test_alerts_and_a_merchants_risk_picture(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    corpus = build_corpus(engine, vault, seed=11)
    with engine.connect() as conn:
        nos = dict(conn.execute(select(t.merchants.c.id, t.merchants.c.merchant_no)).all())
    tokens = {}
    for name, role, m in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None), ("audi", Role.AUDITOR, None),
                          ("shop", Role.MERCHANT, nos[corpus.normal[0]])):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=m, display_name=name, now=NOW,
                 actor="test")
        tokens[name] = issue_token(engine, username=name, name="tests", now=NOW, actor="test").token
    app = create_app(engine, now=lambda: NOW + timedelta(minutes=5))

    def get(path: str, who: str | None = "oper", status: int = 200) -> Any:
        c = TestClient(app)
        if who:
            c.headers["Authorization"] = f"Bearer {tokens[who]}"
        r = c.get(path)
        assert r.status_code == status, (path, who, r.text[:300])
        return r.json()

    nothing = get("/api/v1/risk/alerts")
    assert (nothing["items"], nothing["total"], nothing["date"]) == ([], 0, None)
    res = risk.scan(engine, DAY, risk.load_rules(), tz="Asia/Shanghai", now=NOW)
    assert res.flagged
    risk.hold(engine, res.flagged[0].merchant_no, by="oper", reason="疑似套现", now=NOW)

    for who in ("oper", "supp", "audi"):
        body = get("/api/v1/risk/alerts", who)
        assert set(body) >= {"items", "total", "limit", "offset"}
        assert (body["total"], body["limit"], body["offset"], body["date"]) == (len(res.flagged), 50, 0,
                                                                                DAY.isoformat())
    items = body["items"]
    assert [x["score"] for x in items] == sorted((f.score for f in res.flagged), reverse=True)[:50]
    by_no = {f.merchant_no: f for f in res.flagged}
    for x in items:
        f = by_no[x["merchant_no"]]
        assert (x["score"], x["rules"], x["explanation"]) == (f.score, f.rules,
                                                               {"zh": f.explanation_zh, "en": f.explanation_en})
        assert x["date"] == DAY.isoformat()
        assert [r["id"] for r in x["rule_names"]] == x["rules"]
        assert all(r["name_zh"] and r["name_en"] and r["name_zh"] != r["id"] for r in x["rule_names"])
        assert x["on_hold"] is (x["merchant_no"] == res.flagged[0].merchant_no)
    planted = {nos[m] for m, p in corpus.planted.items() if p != "silence"}
    all_nos = {x["merchant_no"] for x in get("/api/v1/risk/alerts?limit=500")["items"]}
    assert planted <= all_nos

    second = get("/api/v1/risk/alerts?limit=2&offset=2")
    assert [x["merchant_no"] for x in second["items"]] == [x["merchant_no"] for x in items[2:4]]
    assert (second["total"], second["limit"], second["offset"]) == (len(res.flagged), 2, 2)
    assert get("/api/v1/risk/alerts?offset=100000")["items"] == []
    same = get("/api/v1/risk/alerts?rule=same_card&limit=500")
    assert {x["merchant_no"] for x in same["items"]} == {f.merchant_no for f in res.flagged if "same_card" in f.rules}
    assert all("same_card" in x["rules"] for x in same["items"])
    assert get("/api/v1/risk/alerts?rule=same_car_&limit=500")["total"] == 0  # "_" is no LIKE wildcard here
    top = max(f.score for f in res.flagged)
    assert {x["merchant_no"] for x in get(f"/api/v1/risk/alerts?min_score={top}&limit=500")["items"]} == {
        f.merchant_no for f in res.flagged if f.score >= top}
    earlier = get(f"/api/v1/risk/alerts?date={(DAY - timedelta(days=2)).isoformat()}")
    assert (earlier["total"], earlier["date"]) == (0, (DAY - timedelta(days=2)).isoformat())

    mid = next(m for m, p in corpus.planted.items() if p == "same_card")
    one = get(f"/api/v1/risk/merchants/{nos[mid]}")
    assert one["merchant_no"] == nos[mid]
    a = one["alert"]
    assert "same_card" in a["rules"]
    assert {r["id"] for r in a["details"]} == set(a["rules"])
    hit = next(r for r in a["details"] if r["id"] == "same_card")
    assert (hit["feature"], hit["name_zh"]) == ("same_card_max", "同一张卡当日多次交易")
    assert hit["value"] >= hit["threshold"]
    assert a["baseline"]["active_days"] >= 7
    refs = {e["external_ref"] for e in one["evidence"] if e["rule"] == "same_card"}
    assert sorted(corpus.planted_refs[mid])[:5]
    assert set(sorted(corpus.planted_refs[mid])[:5]) <= refs
    assert all(e["occurred_at"].endswith(("Z", "+00:00")) for e in one["evidence"])  # ISO with offset
    assert [f["date"] for f in one["features"]][-1] == DAY.isoformat()
    assert len(one["features"]) >= 28
    assert one["alerts"][0]["date"] == DAY.isoformat()
    held = get(f"/api/v1/risk/merchants/{res.flagged[0].merchant_no}")
    assert held["on_hold"] is True
    assert held["holds"][0]["placed_by"] == "oper"
    assert held["holds"][0]["placed_at"].endswith(("Z", "+00:00"))
    quiet = get(f"/api/v1/risk/merchants/{nos[corpus.normal[0]]}?date={(DAY - timedelta(days=1)).isoformat()}")
    assert quiet["alert"] is None
    assert quiet["evidence"] == []

    # staff only; errors as JSON with zh / en
    for path in ("/api/v1/risk/alerts", f"/api/v1/risk/merchants/{nos[corpus.normal[0]]}"):
        err = get(path, "shop", 403)
        assert err["error"]["code"] == "forbidden"
        assert err["error"]["message_zh"]
        assert err["error"]["message_en"]
        get(path, None, 401)
    missing = get("/api/v1/risk/merchants/NO-SUCH", status=404)
    assert missing["error"]["code"] == "merchant_not_found"
    assert "不存在" in missing["error"]["message_zh"]
    for bad in ("/api/v1/risk/alerts?min_score=101", "/api/v1/risk/alerts?date=2026-02-30",
                "/api/v1/risk/alerts?rule=a%27%20OR%201=1", "/api/v1/risk/alerts?limit=0",
                "/api/v1/risk/merchants/" + "9" * 40):
        assert get(bad, status=422)["error"]["code"] == "validation_failed", bad
    assert "/api/v1/risk/alerts" in get("/api/v1/openapi.json")["paths"]
