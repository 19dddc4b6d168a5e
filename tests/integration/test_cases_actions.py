"""Operator actions on cases (cases/service.py) on SQLite and PostgreSQL: open by hand, assign, contact
log, notes, status changes, resolve and close; refused actions change nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from test_payout_send import SEND_AT, make_payouts

from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.vault import Vault
from settleguard.cases import repository as crepo
from settleguard.cases import service as cs
from settleguard.cases.model import CaseStatus, Method, Party, Priority

BEIJING = "Asia/Shanghai"  # the business time zone (config.Settings.timezone), passed in


def staff(engine: Engine, *names: str) -> None:
    """Support users a case may be assigned to (cases.service.may_be_assigned)."""
    for name in names:
        add_user(engine, username=name, password="correct horse battery", role=Role.SUPPORT, merchant_no=None,
                 display_name=name, now=SEND_AT, actor="test")


def test_case_lifecycle_with_contacts_and_notes(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    a, b = make_payouts(engine, vault, tmp_path, [10_000, 20_000])
    now = SEND_AT
    cid = cs.open_case(engine, merchant_no=a.merchant.merchant_no, category="card_info_error",
                       title="户名不符 name mismatch", actor="alice", now=now, priority=Priority.P2,
                       payout_ids=[a.payout_id], tz=BEIJING)
    with pytest.raises(cs.CaseActionRefused):  # b's payout is not a's merchant's
        cs.open_case(engine, merchant_no=a.merchant.merchant_no, category="other", title="x", actor="alice",
                     now=now, payout_ids=[b.payout_id], tz=BEIJING)
    with pytest.raises(cs.CaseActionRefused):
        cs.open_case(engine, merchant_no="NOPE", category="other", title="x", actor="alice", now=now, tz=BEIJING)

    staff(engine, "bob", "carol")
    cs.assign(engine, cid, "bob", "alice", now + timedelta(minutes=1))
    talked = now + timedelta(minutes=3)
    cs.add_contact(engine, cid, party=Party.BANK_SUPPORT, method=Method.PHONE, who="工行客服 95588 工号1234",
                   said="户名与账户不一致，请商户核对", actor="bob", now=now + timedelta(minutes=10), at=talked)
    with pytest.raises(cs.CaseActionRefused):  # a contact in the future
        cs.add_contact(engine, cid, party=Party.MERCHANT, method=Method.ONLINE, who="", said="x", actor="bob",
                       now=now, at=now + timedelta(hours=1))
    cs.add_note(engine, cid, "已通知商户重新绑卡", "bob", now + timedelta(minutes=11))
    cs.set_status(engine, cid, CaseStatus.WAITING_MERCHANT, "bob", now + timedelta(minutes=12))
    with pytest.raises(cs.CaseActionRefused):  # close only after resolve
        cs.close(engine, cid, "bob", now + timedelta(minutes=13))
    with pytest.raises(cs.CaseActionRefused):
        cs.resolve(engine, cid, "  ", "bob", now + timedelta(minutes=13))
    cs.resolve(engine, cid, "商户已换卡，重新出款成功", "bob", now + timedelta(hours=2))
    cs.close(engine, cid, "alice", now + timedelta(hours=3))
    for act in (lambda: cs.add_note(engine, cid, "late", "bob", now + timedelta(hours=4)),
                lambda: cs.assign(engine, cid, "carol", "bob", now + timedelta(hours=4)),
                lambda: cs.set_status(engine, cid, CaseStatus.OPEN, "bob", now + timedelta(hours=4))):
        with pytest.raises(cs.CaseActionRefused):
            act()

    with engine.connect() as conn:
        case = crepo.get(conn, cid)
        assert case is not None
        assert (case["status"], case["assignee"], case["resolution"]) == ("closed", "bob", "商户已换卡，重新出款成功")
        assert case["resolved_at"] == now + timedelta(hours=2)
        assert case["sla_due_at"] == now + timedelta(days=1)  # p2: one business day (Thu -> Fri)
        (contact,) = crepo.contacts(conn, cid)
        assert (contact["party"], contact["method"], contact["contact_name"], contact["at"]) == (
            "bank_support", "phone", "工行客服 95588 工号1234", talked)
        bodies = [n["body"] for n in crepo.notes(conn, cid)]
        assert [p["id"] for p in crepo.case_payouts(conn, cid)] == [a.payout_id]
    assert bodies == ["[指派 assigned] - → bob", "已通知商户重新绑卡", "[状态 status] open → waiting_merchant",
                      "[状态 status] waiting_merchant → resolved", "[状态 status] resolved → closed"]


def test_listing_filters_and_overdue(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    (a,) = make_payouts(engine, vault, tmp_path, [10_000])
    now = SEND_AT
    urgent = cs.open_case(engine, merchant_no=a.merchant.merchant_no, category="risk_or_compliance_block",
                          title="风控", actor="alice", now=now, priority=Priority.P1, tz=BEIJING)
    slow = cs.open_case(engine, merchant_no=a.merchant.merchant_no, category="other", title="其他", actor="alice",
                        now=now, priority=Priority.P4, tz=BEIJING)
    staff(engine, "bob")
    cs.assign(engine, slow, "bob", "alice", now)
    later = now + timedelta(hours=5)
    with engine.connect() as conn:
        assert [c["id"] for c in crepo.listing(conn, overdue_at=later)] == [urgent]
        assert [c["id"] for c in crepo.listing(conn, assignee="bob")] == [slow]
        assert [c["id"] for c in crepo.listing(conn, status="open")] == [urgent, slow]
    cs.resolve(engine, urgent, "误报 false alarm", "alice", later)
    with engine.connect() as conn:
        assert crepo.listing(conn, overdue_at=later) == []
        assert [c["id"] for c in crepo.listing(conn, status="resolved")] == [urgent]
    cs.set_status(engine, urgent, CaseStatus.OPEN, "alice", later)  # reopened
    with engine.connect() as conn:
        case = crepo.get(conn, urgent)
        assert case is not None
        assert case["status"] == "open"
        assert case["resolved_at"] is None
