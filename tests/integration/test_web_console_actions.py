"""The console's write actions (web/console/routes_cases.py, routes_ops.py) on SQLite and PostgreSQL: case
assign, contact, note and every allowed status change through cases.service, payout cancel through
payouts.release.cancel; each with its CSRF token, only for the roles that may, refusals shown with the zh/en
reason and changing nothing, and a cancel from the page writing what ``settleguard payouts cancel`` writes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import test_web_console
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from test_web_console import CLIENT_NOW, World, case_state, csrf, sign_in, status_of
from typer.testing import CliRunner

from payout_helpers import assert_families, balances
from settleguard.cases.model import TRANSITIONS, CaseStatus
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.ledger.model import Account
from settleguard.payouts.release import release

world = test_web_console.world  # the fixture: two held and two paid payouts, users of each role, one case

CASE_FORMS = ("assign", "contact", "note", "status")


def audit_kinds(engine: Engine, subject_type: str, subject_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    a = t.audit_events
    with engine.connect() as conn:
        rows = conn.execute(select(a.c.actor, a.c.kind, a.c.payload).where(
            a.c.subject_type == subject_type, a.c.subject_id == str(subject_id)).order_by(a.c.id)).all()
    return [(actor, kind, json.loads(payload)) for actor, kind, payload in rows]


def posted_targets(page: str, case_id: int) -> set[str]:
    """The statuses the case page offers to move to (one small form each)."""
    return set(re.findall(rf'action="/cases/{case_id}/status"[^>]*>\s*<input type="hidden" name="csrf_token" '
                          rf'value="[^"]+">\s*<input type="hidden" name="status" value="([a-z_]+)"', page))


def forms_of(page: str) -> set[str]:
    return set(re.findall(r'<form method="post" action="(/(?:cases|payouts)/\d+/[a-z]+)"', page))


def go_back(c: TestClient, r: Any, case_id: int, done: str) -> str:
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"] == f"/cases/{case_id}?done={done}"
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    return page.text


# --- cases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["oper", "supp"])
def test_staff_work_a_case_from_its_page_through_every_status(world: World, who: str) -> None:
    cid = world.case_id
    c = sign_in(world, who)
    page = c.get(f"/cases/{cid}").text
    feedback = {f for f in forms_of(page) if f.endswith("/feedback")}  # guidance feedback (docs/history.md)
    assert forms_of(page) - feedback == {f"/cases/{cid}/{f}" for f in CASE_FORMS}
    assert feedback == {f"/payouts/{world.held_a.payout_id}/feedback"}  # its linked payout's guidance
    assert posted_targets(page, cid) == {str(s) for s in TRANSITIONS[CaseStatus.OPEN]}
    token = csrf(c, f"/cases/{cid}")

    page = go_back(c, c.post(f"/cases/{cid}/assign", data={"assignee": "supp", "csrf_token": token}), cid, "assign")
    assert "已指派处理人" in page
    assert "[指派 assigned] - → supp" in page

    r = c.post(f"/cases/{cid}/contact", data={"party": "bank_support", "method": "phone", "who": "工行客服 95588 工号1234",
                                              "said": "银行确认户名不符", "at": "2026-11-19T10:30", "csrf_token": token})
    page = go_back(c, r, cid, "contact")
    assert "已记录联系" in page
    assert "银行确认户名不符" in page
    assert "银行客服" in page  # the party in Chinese
    assert "2026-11-19 10:30" in page  # China time, as typed

    page = go_back(c, c.post(f"/cases/{cid}/note", data={"body": "等待商户换卡", "csrf_token": token}), cid, "note")
    assert "已添加备注" in page
    assert "等待商户换卡" in page

    walk = [("waiting_bank", "status", {}), ("waiting_merchant", "status", {}),
            ("resolved", "resolved", {"resolution": "商户已换卡，重新出款成功"}), ("open", "status", {}),
            ("resolved", "resolved", {"resolution": "再次确认已到账"}), ("closed", "closed", {})]
    for target, done, extra in walk:
        before = case_state(world.engine, cid)[0]
        page = go_back(c, c.post(f"/cases/{cid}/status", data={"status": target, "csrf_token": token, **extra}), cid,
                       done)
        assert f"[状态 status] {before} → {target}" in page
        assert case_state(world.engine, cid)[0] == target
        if target != "closed":
            assert posted_targets(page, cid) == {str(s) for s in TRANSITIONS[CaseStatus(target)]}, target
    assert "工单已关闭" in page
    assert "再次确认已到账" in page
    assert forms_of(page) == set()  # nothing more to do on a closed case

    status, assignee, resolution, _, contacts, notes = case_state(world.engine, cid)
    assert (status, assignee, resolution) == ("closed", "supp", "再次确认已到账")
    assert contacts == ["已通知商户换绑结算卡", "银行确认户名不符"]
    assert "等待商户换卡" in notes
    with world.engine.connect() as conn:
        at = conn.execute(select(t.case_contacts.c.at).where(t.case_contacts.c.summary == "银行确认户名不符")).scalar_one()
    assert at.astimezone(UTC) == datetime(2026, 11, 19, 2, 30, tzinfo=UTC)
    trail = audit_kinds(world.engine, "case", cid)[2:]  # after the fixture's open and contact
    assert {actor for actor, _, _ in trail} == {who}
    mine = [(kind, payload.get("to")) for _, kind, payload in trail]
    assert mine == [("case.assign", None), ("case.contact", None), ("case.note", None)] + [
        ("case.status", target) for target, _, _ in walk]


def test_english_case_page_and_messages(world: World) -> None:
    c = sign_in(world, "supp")
    token = csrf(c, f"/cases/{world.case_id}?lang=en")
    r = c.post(f"/cases/{world.case_id}/note", data={"body": "called the merchant", "csrf_token": token})
    page = c.get(r.headers["location"]).text
    assert "note added" in page
    assert "Add note" in page
    assert ">添加备注</button>" not in page
    assert "Move to" in page


def test_refused_case_actions_show_the_reason_and_change_nothing(world: World) -> None:
    cid = world.case_id
    c = sign_in(world, "oper")
    token = csrf(c, f"/cases/{cid}")
    before = case_state(world.engine, cid)
    refusals: list[tuple[str, dict[str, str], str, str]] = [
        ("status", {"status": "closed"}, "不能从「处理中」变为「已关闭」", "cannot go from open to closed"),
        ("status", {"status": "open"}, "不能从「处理中」变为「处理中」", "cannot go from open to open"),
        ("status", {"status": "resolved", "resolution": "  "}, "请填写处理结果", "a resolution is required"),
        ("assign", {"assignee": "mera"}, "mera 不是可处理工单的员工用户", "not a staff user who works cases"),
        ("assign", {"assignee": "audi"}, "audi 不是可处理工单的员工用户", "not a staff user who works cases"),
        ("assign", {"assignee": "nobody-here"}, "不是可处理工单的员工用户", "not a staff user"),
        ("assign", {"assignee": " "}, "处理人不能为空", "assignee is required"),
        ("note", {"body": "   "}, "备注不能为空", "the note is empty"),
        ("contact", {"party": "merchant", "method": "phone", "said": "明天再说", "at": "2026-12-30T10:00"},
         "联系时间不能晚于现在", "cannot be in the future"),
        ("contact", {"party": "merchant", "method": "phone", "said": "x", "at": "yesterday"},
         "联系时间格式不正确", "not a contact time"),
        ("contact", {"party": "merchant", "method": "phone", "said": " "}, "请填写沟通内容", "what was said is required"),
    ]
    for form, data, zh, en in refusals:
        r = c.post(f"/cases/{cid}/{form}", data={"csrf_token": token, **data})
        assert r.status_code == 409, (form, data, r.status_code)
        assert zh in r.text, (form, data)
        assert en in r.text, (form, data)
        assert "未执行" in r.text
        assert case_state(world.engine, cid) == before, (form, data)
    kept = c.post(f"/cases/{cid}/note", data={"csrf_token": token, "body": " "})
    assert 'name="body"' in kept.text  # the form is shown again with the reason
    bogus = c.post(f"/cases/{cid}/status", data={"csrf_token": token, "status": "bogus"})
    assert bogus.status_code == 400
    assert "请求参数不正确" in bogus.text
    assert c.post("/cases/999999/note", data={"csrf_token": token, "body": "x"}).status_code == 404
    assert case_state(world.engine, cid) == before
    assert [k for _, k, _ in audit_kinds(world.engine, "case", cid)] == ["case.open", "case.contact"]


def test_a_stale_page_cannot_skip_the_transition_table(world: World) -> None:
    """A form left open on a resolved case's page: the case closed meanwhile; the reopen is refused."""
    cid = world.case_id
    c = sign_in(world, "oper")
    token = csrf(c, f"/cases/{cid}")
    assert c.post(f"/cases/{cid}/status", data={"csrf_token": token, "status": "resolved",
                                                "resolution": "已处理"}).status_code == 303
    stale = c.get(f"/cases/{cid}").text
    assert posted_targets(stale, cid) == {"open", "closed"}
    assert c.post(f"/cases/{cid}/status", data={"csrf_token": token, "status": "closed"}).status_code == 303
    before = case_state(world.engine, cid)
    r = c.post(f"/cases/{cid}/status", data={"csrf_token": token, "status": "open"})
    assert r.status_code == 409
    assert "不能从「已关闭」变为「处理中」" in r.text
    assert c.post(f"/cases/{cid}/note", data={"csrf_token": token, "body": "late"}).status_code == 409
    assert case_state(world.engine, cid) == before


@pytest.mark.parametrize("sent", [None, "", "wrong-token"])
def test_case_actions_need_the_csrf_token(world: World, sent: str | None) -> None:
    cid = world.case_id
    c = sign_in(world, "oper")
    before = case_state(world.engine, cid)
    bodies = {"assign": {"assignee": "oper"}, "note": {"body": "x"}, "status": {"status": "waiting_bank"},
              "contact": {"party": "merchant", "method": "phone", "said": "x"}}
    for form, body in bodies.items():
        r = c.post(f"/cases/{cid}/{form}", data=body if sent is None else {**body, "csrf_token": sent})
        assert r.status_code == 403, form
        assert "CSRF" in r.text
    assert case_state(world.engine, cid) == before


def test_auditor_sees_no_forms_and_gets_403(world: World) -> None:
    cid = world.case_id
    c = sign_in(world, "audi")
    page = c.get(f"/cases/{cid}")
    assert page.status_code == 200
    assert forms_of(page.text) == set()
    assert "当前角色只能查看工单" in page.text
    token = csrf(c, f"/cases/{cid}")
    before = case_state(world.engine, cid)
    for form, body in {"assign": {"assignee": "supp"}, "note": {"body": "x"}, "status": {"status": "waiting_bank"},
                       "contact": {"party": "merchant", "method": "phone", "said": "x"}}.items():
        r = c.post(f"/cases/{cid}/{form}", data={**body, "csrf_token": token})
        assert r.status_code == 403, form
        assert "无权" in r.text
    assert case_state(world.engine, cid) == before


def test_merchant_users_get_404_for_other_cases_and_403_for_their_own(world: World) -> None:
    cid = world.case_id  # merchant a's case
    before = case_state(world.engine, cid)
    for who, want in (("merb", 404), ("mera", 403)):
        c = sign_in(world, who)
        token = csrf(c, "/m")
        assert c.get(f"/cases/{cid}").status_code == 403  # no case pages for merchants at all
        for form in CASE_FORMS:
            r = c.post(f"/cases/{cid}/{form}", data={"csrf_token": token, "body": "x", "assignee": "supp",
                                                     "status": "waiting_bank", "party": "merchant", "method": "phone",
                                                     "said": "x"})
            assert r.status_code == want, (who, form)
            assert "户名不符待换卡" not in r.text
        assert c.post("/cases/999999/note", data={"csrf_token": token, "body": "x"}).status_code == 404
    assert case_state(world.engine, cid) == before


def test_the_queue_filters_by_assignee(world: World) -> None:
    c = sign_in(world, "supp")
    token = csrf(c, "/cases")
    assert "户名不符待换卡" not in c.get("/cases?assignee=supp").text
    assert c.post(f"/cases/{world.case_id}/assign", data={"assignee": "supp", "csrf_token": token}).status_code == 303
    mine = c.get("/cases?assignee=supp")
    assert "户名不符待换卡" in mine.text
    assert "我的工单" in mine.text
    assert "户名不符待换卡" not in c.get("/cases?assignee=oper").text


# --- payout cancel ------------------------------------------------------------------------------


def events(engine: Engine, pid: int) -> list[tuple[str | None, str, str]]:
    ev = t.payout_events
    with engine.connect() as conn:
        return [(f, to, r) for f, to, r in conn.execute(
            select(ev.c.from_status, ev.c.to_status, ev.c.reason).where(ev.c.payout_id == pid).order_by(ev.c.id))]


def entries(engine: Engine, pid: int) -> list[str]:
    le = t.ledger_entries
    with engine.connect() as conn:
        return [k for (k,) in conn.execute(select(le.c.kind).where(le.c.payout_id == pid).order_by(le.c.id))]


def payout_snapshot(engine: Engine, pid: int) -> tuple[Any, ...]:
    return status_of(engine, pid), events(engine, pid), entries(engine, pid), audit_kinds(engine, "payout", pid)


def test_page_shows_cancel_and_evidence_by_role_and_status(world: World) -> None:
    held, paid = world.held_a.payout_id, world.paid_b.payout_id
    for who, cancel_form in (("oper", True), ("supp", False), ("audi", False)):
        c = sign_in(world, who)
        page = c.get(f"/payouts/{held}").text
        assert (f'action="/payouts/{held}/cancel"' in page) is cancel_form, who
        assert ("取消出款" in page) is cancel_form, who
        assert f'href="/api/v1/payouts/{held}/evidence"' in page, who
        assert "下载证据" in page
        assert f'action="/payouts/{paid}/cancel"' not in c.get(f"/payouts/{paid}").text  # succeeded: not cancellable
    mc = sign_in(world, "mera")
    own = mc.get(f"/payouts/{held}").text
    assert "/cancel" not in own
    assert f'href="/api/v1/payouts/{held}/evidence"' in own  # its own payout's evidence, as the API allows
    assert "Cancel payout" in sign_in(world, "oper").get(f"/payouts/{held}?lang=en").text


def test_operator_cancels_a_held_payout_with_a_reason_and_a_confirmation(world: World) -> None:
    pid = world.held_a.payout_id
    c = sign_in(world, "oper")
    token = csrf(c, f"/payouts/{pid}")
    before = payout_snapshot(world.engine, pid)
    for data, zh, en in ((({"reason": "商户已销户"}), "请勾选确认撤销", "tick the box"),
                         ({"reason": "  ", "confirm": "yes"}, "撤销必须填写原因", "a cancellation needs a reason")):
        r = c.post(f"/payouts/{pid}/cancel", data={"csrf_token": token, **data})
        assert r.status_code == 409, data
        assert zh in r.text
        assert en in r.text
        assert f'action="/payouts/{pid}/cancel"' in r.text  # the form again
        assert payout_snapshot(world.engine, pid) == before
    for bad in ({}, {"csrf_token": "stale"}):
        r = c.post(f"/payouts/{pid}/cancel", data={"reason": "商户已销户", "confirm": "yes", **bad})
        assert r.status_code == 403
        assert "CSRF" in r.text
    assert payout_snapshot(world.engine, pid) == before

    r = c.post(f"/payouts/{pid}/cancel", data={"reason": "商户已销户，线下处理", "confirm": "yes", "csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, f"/payouts/{pid}?done=cancelled")
    page = c.get(r.headers["location"]).text
    assert "出款已撤销" in page
    assert "已撤销" in page
    assert f'action="/payouts/{pid}/cancel"' not in page
    assert events(world.engine, pid)[-1] == ("held", "cancelled", "撤销 cancelled by oper: 商户已销户，线下处理")
    assert "撤销 cancelled by oper" in page  # the event in the timeline
    assert audit_kinds(world.engine, "payout", pid)[-1][:2] == ("oper", "operator.payout_cancel")
    assert entries(world.engine, pid) == before[2]  # held money stays held: no ledger entry
    assert balances(world.engine, world.held_a.merchant.id)[Account.MERCHANT_HELD] == world.held_a.amount
    assert_families(world.engine)

    again = c.post(f"/payouts/{pid}/cancel", data={"reason": "再撤一次", "confirm": "yes", "csrf_token": token})
    assert again.status_code == 409
    assert "不能撤销" in again.text
    assert "cannot be cancelled" in again.text


def test_a_paid_payout_cannot_be_cancelled_from_the_page(world: World) -> None:
    pid = world.paid_b.payout_id
    c = sign_in(world, "oper")
    before = payout_snapshot(world.engine, pid)
    r = c.post(f"/payouts/{pid}/cancel", data={"reason": "商户要求", "confirm": "yes", "csrf_token": csrf(c, "/")})
    assert r.status_code == 409
    assert "状态为 succeeded 的出款不能撤销" in r.text
    assert payout_snapshot(world.engine, pid) == before
    assert c.post("/payouts/999999/cancel", data={"reason": "x", "confirm": "yes",
                                                  "csrf_token": csrf(c, "/")}).status_code == 404


@pytest.mark.parametrize(("who", "want"), [("supp", 403), ("audi", 403), ("mera", 403), ("merb", 404)])
def test_only_operators_cancel(world: World, who: str, want: int) -> None:
    pid = world.held_a.payout_id  # merchant a's
    c = sign_in(world, who)
    before = payout_snapshot(world.engine, pid)
    r = c.post(f"/payouts/{pid}/cancel", data={"reason": "商户要求", "confirm": "yes", "csrf_token": csrf(c, "/m")})
    assert r.status_code == want
    assert payout_snapshot(world.engine, pid) == before


def test_a_cancel_from_the_page_writes_what_the_cli_writes(world: World, db_url: str) -> None:
    """Two released payouts (money in transit): one cancelled on the page, one with ``settleguard payouts
    cancel``; ``payouts show --json`` tells the same story for both, and the ledger moved both alike."""
    a, c_ = world.held_a, world.held_c
    for d in (a, c_):
        release(world.engine, d.payout_id, "oper", CLIENT_NOW - timedelta(minutes=5), override=True, reason="银行确认")
    assert (status_of(world.engine, a.payout_id), status_of(world.engine, c_.payout_id)) == ("released", "released")
    reason = "商户要求线下处理"
    page = sign_in(world, "oper")
    r = page.post(f"/payouts/{a.payout_id}/cancel", data={"reason": reason, "confirm": "yes",
                                                          "csrf_token": csrf(page, "/")})
    assert r.status_code == 303
    runner = CliRunner()
    done = runner.invoke(cli, ["--db", db_url, "payouts", "cancel", str(c_.payout_id), "--reason", reason,
                               "--actor", "oper"])
    assert done.exit_code == 0, done.output

    def show(pid: int) -> dict[str, Any]:
        out = runner.invoke(cli, ["--db", db_url, "payouts", "show", str(pid), "--json"])
        assert out.exit_code == 0, out.output
        return dict(json.loads(out.stdout))

    shown = {d.payout_id: show(d.payout_id) for d in (a, c_)}
    for d in (a, c_):
        assert shown[d.payout_id]["payout"]["status"] == "cancelled"
        last = shown[d.payout_id]["events"][-1]
        assert (last["from_status"], last["to_status"], last["reason"]) == (
            "released", "cancelled", f"撤销 cancelled by oper: {reason}")
    strip = {"id", "payout_id", "created_at", "at"}
    assert [{k: v for k, v in e.items() if k not in strip} for e in shown[a.payout_id]["events"]] == \
        [{k: v for k, v in e.items() if k not in strip} for e in shown[c_.payout_id]["events"]]
    assert entries(world.engine, a.payout_id) == entries(world.engine, c_.payout_id)
    assert entries(world.engine, a.payout_id)[-1] == "payout_cancel"
    for d in (a, c_):
        bal = balances(world.engine, d.merchant.id)
        assert (bal[Account.MERCHANT_HELD], bal[Account.PAYOUT_IN_TRANSIT]) == (d.amount, 0)
        actor, kind, payload = audit_kinds(world.engine, "payout", d.payout_id)[-1]
        assert (actor, kind, payload["from"], payload["reason"], payload["amount_fen"]) == (
            "oper", "operator.payout_cancel", "released", reason, d.amount)
    assert_families(world.engine)
