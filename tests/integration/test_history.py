"""History review (issue 22 item 5, docs/history.md) on SQLite and PostgreSQL: a merchant's days reconcile to the
fen with the transactions table; failures by category and holds land on the local day they happened; the console
page, the portal page (a merchant sees only its own: 404) and /trends render with their chart data; the trends
say which bank got worse; ``settleguard history`` and ``settleguard feedback report`` through CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from conftest import NOW
from factories import Txn, import_rows, ref
from payout_helpers import NAME_MISMATCH, OK, SEND_AT, VALUE_DAY, Due, ScriptedBank, make_payouts
from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.history.model import HistoryRefused, build_trends, day_index
from settleguard.history.service import merchant_history
from settleguard.payouts.service import send_due
from settleguard.settlement.model import CardType, TxnKind
from settleguard.web.app import create_app

BJ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-battery"
START, END = date(2026, 11, 16), date(2026, 11, 20)


def world(engine: Engine, vault: Vault, tmp_path: Path) -> tuple[Due, Due]:
    a, b = make_payouts(engine, vault, tmp_path, [12_345, 20_000])  # a QR sale each on 2026-11-18, settled
    m = a.merchant
    rows = [Txn(ref(), m.merchant_no, m.terminal_no, datetime(2026, 11, 17, 10, tzinfo=BJ), TxnKind.SALE,
                CardType.CREDIT, 10_000),
            Txn(ref(), m.merchant_no, m.terminal_no, datetime(2026, 11, 17, 11, tzinfo=BJ), TxnKind.SALE,
                CardType.DEBIT, 5_555),
            Txn(ref(), m.merchant_no, m.terminal_no, datetime(2026, 11, 17, 12, tzinfo=BJ), TxnKind.REFUND,
                CardType.CREDIT, 2_000),
            Txn(ref(), m.merchant_no, m.terminal_no, datetime(2026, 11, 19, 10, tzinfo=BJ), TxnKind.SALE,
                CardType.QR, 101)]
    import_rows(engine, tmp_path, rows, now=NOW)
    send_due(engine, ScriptedBank(sends={a.key: [NAME_MISMATCH], b.key: [OK]}), vault, as_of=VALUE_DAY, now=SEND_AT)
    return a, b


def test_a_merchants_days_reconcile_to_the_fen_and_failures_and_holds_land_on_their_day(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    a, b = world(engine, vault, tmp_path)
    h = merchant_history(engine, START, END, BJ, merchant_no=a.merchant.merchant_no)
    x = t.transactions
    with engine.connect() as conn:
        for d in h.days:
            for kind, count, fen in ((TxnKind.SALE, d.sales, d.sale_fen), (TxnKind.REFUND, d.refunds, d.refund_fen)):
                want = conn.execute(select(func.count(), func.coalesce(func.sum(x.c.amount_fen), 0)).where(
                    x.c.merchant_id == a.merchant.id, x.c.cycle_date == d.day, x.c.kind == int(kind))).one()
                assert (count, fen) == (int(want[0]), int(want[1])), (d.day, kind)
            fee = conn.execute(select(func.coalesce(func.sum(x.c.fee_fen), 0)).where(
                x.c.merchant_id == a.merchant.id, x.c.cycle_date == d.day)).scalar_one()
            assert d.fee_fen == int(fee)
        paid = conn.execute(select(t.payouts.c.amount_fen).where(t.payouts.c.id == a.payout_id)).scalar_one()
    assert h.totals()["sales"] >= 4
    assert h.totals()["refunds"] == 1
    by_day = {d.day: d for d in h.days}
    send_day = SEND_AT.astimezone(BJ).date()
    assert by_day[send_day].failures == 1
    assert by_day[send_day].failures_by_category == {"card_info_error": 1}
    assert (by_day[send_day].holds, by_day[send_day].hold_fen) == (1, int(paid))
    assert sum(d.failures for d in h.days) == 1
    assert sum(d.holds for d in h.days) == 1
    assert h.has_risk  # migration 0018's risk tables: the anomaly column is there
    assert "risk_score" in h.as_dict()["days"][0]
    other = merchant_history(engine, START, END, BJ, merchant_no=b.merchant.merchant_no)
    assert sum(d.failures for d in other.days) == 0
    assert sum(d.sends for d in other.days) == 1
    with pytest.raises(HistoryRefused) as refused:
        merchant_history(engine, END, START, BJ, merchant_no=a.merchant.merchant_no)
    assert refused.value.zh.startswith("结束日期")
    with pytest.raises(HistoryRefused):
        merchant_history(engine, START, END, BJ, merchant_no="no-such-merchant")


def _client(app: object, who: str) -> TestClient:
    c = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
    form = c.get("/login")
    token = dict(__import__("re").findall(r'name="(login_token)" value="([^"]+)"', form.text))["login_token"]
    r = c.post("/login", data={"username": who, "password": PASSWORD, "login_token": token, "next": ""})
    assert r.status_code == 303, r.text
    return c


def test_history_pages_trends_and_merchant_isolation(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    a, b = world(engine, vault, tmp_path)
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("mera", Role.MERCHANT, a.merchant.merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name,
                 now=NOW, actor="test")
    app = create_app(engine, now=lambda: SEND_AT + timedelta(hours=3))
    q = f"from={START}&to={END}"
    mer = _client(app, "mera")
    own = mer.get(f"/m/{a.merchant.id}/history?{q}")
    assert own.status_code == 200, own.text[:500]
    assert "hist-data" in own.text
    assert "银行卡信息错误" in own.text
    assert "card_info_error" not in own.text.split(
        'id="hist-data"')[0]
    for path in (f"/m/{b.merchant.id}/history", f"/merchants/{b.merchant.id}/history", "/m/999999/history"):
        r = mer.get(path)
        assert r.status_code == 404, path
        assert b.merchant.merchant_no not in r.text
    assert mer.get("/trends").status_code == 403
    assert mer.get("/guidance-feedback").status_code == 403
    ops = _client(app, "oper")
    page = ops.get(f"/merchants/{a.merchant.id}/history?{q}&lang=en")
    assert page.status_code == 200
    assert "Daily volume and count" in page.text
    data = json.loads(page.text.split('<script id="hist-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["x"]) == 5
    assert data["failures"]["series"][0]["name"] == "card info error"
    assert sum(data["volume"]["series"][0]["values"]) * 100 == pytest.approx(
        sum(d.sale_fen for d in merchant_history(engine, START, END, BJ, merchant_id=a.merchant.id).days))
    trends = ops.get(f"/trends?{q}")
    assert trends.status_code == 200
    assert "银行是否在变差" in trends.text
    assert ops.get(f"/trends?from={END}&to={START}").status_code == 422
    assert ops.get("/trends?from=2020-01-01&to=2026-01-01").status_code == 422  # over 366 days
    assert ops.get("/trends?from=not-a-day").status_code == 400


def test_trends_say_which_bank_got_worse() -> None:
    start = date(2026, 11, 1)
    rows = []
    for i in range(10):
        at = datetime(2026, 11, 1 + i, 2, tzinfo=UTC)  # 10:00 Beijing time, the same day
        for k in range(10):
            rows.append((at, "failed" if k < (1 if i < 5 else 4) else "succeeded", "limit_exceeded", "ICBC", "工商银行"))
            rows.append((at, "failed" if k < 2 else "succeeded", "card_info_error", "CCB", "建设银行"))
    tr = build_trends(start, date(2026, 11, 10), BJ, rows)
    assert tr.bank_trend("ICBC") == {"first_ppm": 100_000, "second_ppm": 400_000, "worse": True}
    assert tr.bank_trend("CCB")["worse"] is False
    assert sum(tr.by_category["limit_exceeded"]) == 25
    assert tr.sends == [20] * 10


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe"]),
       offset=st.integers(min_value=-2 * 86400, max_value=14 * 86400))
def test_a_time_lands_on_its_local_day_in_any_zone(zone: str, offset: int) -> None:
    z = ZoneInfo(zone)
    start, end = date(2026, 3, 1), date(2026, 3, 10)  # spring-forward days of New York, London (29 March: no)
    at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=offset)
    local = at.astimezone(z).date()
    want = (local - start).days if start <= local <= end else None
    assert day_index(start, end, z)(at) == want


def test_cli_history_and_feedback_report(db_url: str, engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.cli.main import app

    a, _ = world(engine, vault, tmp_path)
    env = {"SETTLEGUARD_DB": db_url, "SETTLEGUARD_KEY_FILE": str(tmp_path / "k.key"), "COLUMNS": "200"}
    runner = CliRunner()
    got = runner.invoke(app, ["history", a.merchant.merchant_no, "--from", str(START), "--to", str(END), "--json"],
                        env=env)
    assert got.exit_code == 0, got.output
    out = json.loads(got.output)
    assert out["merchant_no"] == a.merchant.merchant_no
    assert len(out["days"]) == 5
    assert out["totals"]["sale_fen"] == sum(d["sale_fen"] for d in out["days"])
    assert out["totals"]["failures"] == 1
    assert {m["card_type"] for m in out["months"]} >= {1, 2, 3}
    text = runner.invoke(app, ["history", a.merchant.merchant_no, "--from", str(START), "--to", str(END)], env=env)
    assert text.exit_code == 0, text.output
    assert "2026-11-19" in text.output
    assert "card_info_error" not in text.output
    assert "失败分类 failure categories: 银行卡信息错误 card info error 1" in text.output
    bad = runner.invoke(app, ["history", "nobody", "--from", str(START), "--to", str(END)], env=env)
    assert bad.exit_code == 2
    assert bad.output.index("不存在") < bad.output.index("no merchant")
    report = runner.invoke(app, ["feedback", "report", "--json"], env=env)
    assert report.exit_code == 0, report.output
    rows = json.loads(report.output)
    assert [(r["category"], r["failed_payouts"], r["fixed"]) for r in rows] == [("card_info_error", 1, 0)]
    table = runner.invoke(app, ["feedback", "report"], env=env)
    assert table.exit_code == 0
    assert "处理建议效果 How guidance worked" in table.output
