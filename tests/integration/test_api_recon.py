"""``/api/v1/recon`` on SQLite and PostgreSQL over a world reconciled through the project's own import and run
(recon_web_helpers.py): the day's summary (matched, breaks by type and status, drift), the break queue with
filters and paging, a break with both sides, the runs; staff only (a merchant user gets 403); errors as JSON;
card numbers masked even when a stored line carries one in the clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from recon_web_helpers import BOOKED, RUN_AT, RUN_DATE, STRANGER_PAN, ReconWorld, reconciled
from sqlalchemy import Engine, update

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.reconciliation.breaks import run
from settleguard.web.app import create_app

API = "/api/v1/recon"


@pytest.fixture
def world(engine: Engine, vault: Vault, tmp_path: Path) -> ReconWorld:
    return reconciled(engine, vault, tmp_path)


def client(w: ReconWorld, who: str | None = "oper") -> TestClient:
    c = TestClient(create_app(w.engine), raise_server_exceptions=True)
    if who is not None:
        c.headers["Authorization"] = f"Bearer {w.tokens[who]}"
    return c


def get(w: ReconWorld, path: str, who: str | None = "oper", status: int = 200) -> Any:
    r = client(w, who).get(f"{API}{path}")
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    return r.json()


def check_the_summary_of_the_latest_statement_day(world: ReconWorld) -> None:
    a, b, c, d = world.dues
    s = get(world, "/summary")
    assert s["date"] == BOOKED.isoformat()  # the latest statement date with data, by default
    assert s["booked"] == {"count": 5, "amount_fen": a.amount + b.amount - 1 + 2 * c.amount + 4_321}
    assert s["matched"] == {"count": 2, "amount_fen": a.amount + c.amount}  # a, and c's first debit
    day = {(x["type"], x["status"]): x for x in s["breaks"]}
    assert set(day) == {("amount_mismatch", "open"), ("duplicate_debit", "open"), ("bank_only", "open"),
                        ("balance_drift", "open")}  # ledger_only has no bank line: dated by its run
    assert day[("amount_mismatch", "open")]["amount_fen"] == -1
    assert day[("bank_only", "open")]["type_zh"] == "银行有、账上无"
    assert day[("bank_only", "open")]["status_en"] == "open"
    assert s["drift_fen"] == 1
    (st,) = s["statements"]
    assert (st["statement_id"], st["drift_fen"]) == ("STMT-20261120", 1)
    assert {x["type"] for x in s["open_breaks"]} == {"amount_mismatch", "duplicate_debit", "bank_only",
                                                     "balance_drift", "ledger_only"}
    assert s["run"]["run_date"] == RUN_DATE.isoformat()  # the run that covered the day (run later)
    on_run = get(world, f"/summary?date={RUN_DATE}")
    assert [(x["type"], x["count"]) for x in on_run["breaks"]] == [("ledger_only", 1)]
    assert on_run["run"]["matched"] == 2
    assert on_run["statements"] == []
    assert on_run["booked"]["count"] == 0
    assert get(world, "/summary?date=2026-11-24")["run"] is None  # no run covered that day yet
    empty = get(world, "/summary?date=2020-01-01")
    assert (empty["matched"]["count"], empty["breaks"], empty["drift_fen"]) == (0, [], 0)


def check_the_break_queue_filters_pages_and_labels(world: ReconWorld) -> None:
    a, b, c, d = world.dues
    everything = get(world, "/breaks")
    assert everything["total"] == 5
    assert (everything["limit"], everything["offset"]) == (50, 0)
    ids = [x["id"] for x in everything["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    item = {x["type"]: x for x in everything["items"]}
    assert set(item) == {"amount_mismatch", "duplicate_debit", "ledger_only", "bank_only", "balance_drift"}
    for key in ("id", "type", "status", "amount_fen", "end_to_end_id", "bank_ref", "booking_date", "payout_id",
                "type_zh", "type_en", "status_zh", "status_en"):
        assert key in item["bank_only"], key
    assert item["bank_only"]["bank_ref"] == "BANK-E5"
    assert item["bank_only"]["end_to_end_id"] is None
    assert item["bank_only"]["payout_id"] is None
    assert item["duplicate_debit"]["payout_id"] == c.payout_id
    assert item["duplicate_debit"]["end_to_end_id"] == c.key
    assert item["duplicate_debit"]["merchant_no"] == c.merchant.merchant_no
    assert item["ledger_only"]["booking_date"] is None
    assert item["ledger_only"]["day"] == RUN_DATE.isoformat()
    assert (item["ledger_only"]["type_zh"], item["ledger_only"]["type_en"]) == ("账上已付、银行未记账", "ledger only")
    assert (item["ledger_only"]["status_zh"], item["ledger_only"]["status_en"]) == ("未解决", "open")
    only = get(world, "/breaks?type=ledger_only")
    assert [x["payout_id"] for x in only["items"]] == [d.payout_id]
    assert only["total"] == 1
    assert get(world, "/breaks?status=cleared")["total"] == 0
    assert get(world, "/breaks?status=open&type=bank_only")["total"] == 1
    assert get(world, f"/breaks?date_from={BOOKED}&date_to={BOOKED}")["total"] == 4
    assert [x["type"] for x in get(world, f"/breaks?date_from={RUN_DATE}")["items"]] == ["ledger_only"]
    assert get(world, "/breaks?date_to=2026-11-19")["total"] == 0
    first = get(world, "/breaks?limit=2")
    second = get(world, "/breaks?limit=2&offset=2")
    beyond = get(world, "/breaks?limit=2&offset=10")
    assert (first["total"], len(first["items"]), len(second["items"]), beyond["items"]) == (5, 2, 2, [])
    assert [x["id"] for x in first["items"] + second["items"]] == ids[:4]


def check_a_break_shows_both_sides(world: ReconWorld) -> None:
    a, b, c, d = world.dues
    by_type = {x["type"]: x["id"] for x in get(world, "/breaks")["items"]}
    dup = get(world, f"/breaks/{by_type['duplicate_debit']}")
    assert dup["break"]["type"] == "duplicate_debit"
    assert dup["break"]["type_zh"] == "银行重复扣款"
    lines = dup["bank_lines"]
    assert [ln["entry_ref"] for ln in lines] == ["E3", "E4"]  # the first (matched) debit and the duplicate
    assert [ln["matched_rule"] for ln in lines] == ["e2e", None]
    assert {ln["end_to_end_id"] for ln in lines} == {c.key}
    (ours,) = dup["payouts"]
    assert (ours["id"], ours["amount_fen"], ours["status"]) == (c.payout_id, c.amount, "succeeded")
    assert ours["pan_masked"]
    assert "*" in ours["pan_masked"]
    assert [(x["kind"], x["idempotency_key"], x["outcome"]) for x in ours["attempts"]] == [("send", c.key, "succeeded")]
    missing = get(world, f"/breaks/{by_type['ledger_only']}")
    assert missing["bank_lines"] == []
    assert [p["id"] for p in missing["payouts"]] == [d.payout_id]
    assert missing["break"]["detail"]["due"] == RUN_DATE.isoformat()
    stranger = get(world, f"/breaks/{by_type['bank_only']}")
    assert stranger["payouts"] == []
    assert [ln["acct_svcr_ref"] for ln in stranger["bank_lines"]] == ["BANK-E5"]
    drift = get(world, f"/breaks/{by_type['balance_drift']}")
    assert drift["statement"]["statement_id"] == "STMT-20261120"
    assert drift["break"]["amount_fen"] == 1
    off = get(world, f"/breaks/{by_type['amount_mismatch']}")
    assert off["bank_lines"][0]["amount_fen"] == b.amount - 1
    assert off["payouts"][0]["amount_fen"] == b.amount


def check_card_numbers_are_masked_even_when_stored_in_the_clear(world: ReconWorld) -> None:
    """The import masks the stranger's card number; a line stored in the clear (an older version, a hand fix)
    is masked on its way out all the same."""
    by_type = {x["type"]: x["id"] for x in get(world, "/breaks")["items"]}
    shown = client(world).get(f"{API}/breaks/{by_type['bank_only']}").text
    assert STRANGER_PAN not in shown
    assert STRANGER_PAN[:6] in shown
    with world.engine.begin() as conn:
        conn.execute(update(t.bank_lines).where(t.bank_lines.c.entry_ref == "E5").values(
            raw=f"<AddtlNtryInf>卡号 {STRANGER_PAN}</AddtlNtryInf>", acct_svcr_ref=STRANGER_PAN))
        conn.execute(update(t.recon_breaks).where(t.recon_breaks.c.type == "bank_only").values(bank_ref=STRANGER_PAN))
    for path in (f"/breaks/{by_type['bank_only']}", "/breaks", "/breaks?type=bank_only"):
        text = client(world).get(f"{API}{path}").text
        assert STRANGER_PAN not in text, path
        assert "6217002" in text or "621700" in text, path


def check_the_runs_are_listed_newest_first(world: ReconWorld) -> None:
    run(world.engine, RUN_DATE, now=RUN_AT)
    runs = get(world, "/runs")
    assert runs["total"] == 2
    assert [r["run_date"] for r in runs["items"]] == [RUN_DATE.isoformat()] * 2
    assert runs["items"][0]["id"] > runs["items"][1]["id"]
    assert runs["items"][0]["matched"] == 2
    assert get(world, "/runs?limit=1&offset=1")["items"][0]["id"] == runs["items"][1]["id"]


def check_staff_only_and_errors_are_json(world: ReconWorld) -> None:
    bid = get(world, "/breaks")["items"][0]["id"]
    paths = ["/summary", "/breaks", f"/breaks/{bid}", "/runs"]
    for who in ("supp", "audi"):
        for path in paths:
            get(world, path, who)
    for path in paths:
        denied = get(world, path, "mera", 403)
        assert denied["error"]["code"] == "forbidden"
        assert denied["error"]["message_zh"]
        assert get(world, path, None, 401)["error"]["code"] == "unauthenticated"
    missing = get(world, "/breaks/999999", status=404)["error"]
    assert (missing["code"], missing["message_zh"], missing["message_en"]) == (
        "break_not_found", "差错 999999 不存在", "break 999999 not found")
    for bad in ("/breaks?type=lost", "/breaks?status=gone", "/breaks?date_from=2026-13-01", "/summary?date=tomorrow",
                "/breaks/0", "/breaks/abc", "/breaks?limit=0", f"/breaks?date_from={RUN_DATE}&date_to={BOOKED}"):
        err = get(world, bad, status=422)["error"]
        assert err["code"] == "validation_failed", bad
    reversed_range = get(world, f"/breaks?date_from={RUN_DATE}&date_to={BOOKED}", status=422)["error"]
    assert "date_from" in reversed_range["message_zh"]
    assert "recon" in {tag for p in client(world).get("/api/v1/openapi.json").json()["paths"].values()
                       for op in p.values() for tag in op.get("tags", [""])[0].split()}


# One world per database for all the checks (building it pays, imports and runs): read-only checks first.
def test_summary_queue_and_a_break_with_both_sides(world: ReconWorld) -> None:
    check_the_summary_of_the_latest_statement_day(world)
    check_the_break_queue_filters_pages_and_labels(world)
    check_a_break_shows_both_sides(world)
    check_staff_only_and_errors_are_json(world)


def test_runs_and_masking_of_lines_stored_in_the_clear(world: ReconWorld) -> None:
    check_the_runs_are_listed_newest_first(world)
    check_card_numbers_are_masked_even_when_stored_in_the_clear(world)
