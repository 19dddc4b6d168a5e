"""Texts from outside never bring a full card number into the database (SQLite and PostgreSQL): an HTTP bank's
answers, a card verifier's answers and notification receivers' replies are masked where they enter; migration
0009 masks what earlier versions stored, and leaves the hash-chained audit log alone."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from notify_helpers import set_prefs
from sqlalchemy import Engine, insert, select, update
from test_payout_send import SEND_AT, VALUE_DAY

from conftest import NOW
from factories import make_merchants
from pan_echo import forms, http_answer
from payout_helpers import ID_NUMBER, PHONE, make_payouts, new_pan
from settleguard.audit import service as audit
from settleguard.audit.model import Fault
from settleguard.audit.service import record
from settleguard.cards.service import BindRequest, bind_card
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardStatus, CardStatusResult, VerificationResult
from settleguard.cards.verifier_sim import Holder, SimulatedVerifier
from settleguard.channels.http_bank import HttpBankChannel
from settleguard.db import tables as t
from settleguard.db.engine import alembic_config, current_revision, head_revision
from settleguard.notify.channels import SendResult
from settleguard.notify.delivery import Deliverer
from settleguard.payouts.service import send_due

OTHER = "6217000000000008009"  # a number the outside world puts in its texts (not Luhn-valid)
OTHER_MASK = "621700*********8009"
TABLES = [t.payouts, t.payout_attempts, t.payout_events, t.ops_alerts, t.notifications, t.notification_attempts,
          t.card_verifications, t.card_events]


def dump(engine: Engine, tables: list[Any] = TABLES) -> str:
    """Every value of ``tables`` as text (JSON columns as stored)."""
    out = []
    with engine.connect() as conn:
        for table in tables:
            for row in conn.execute(select(table)):
                out.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(out)


def full_numbers(text: str, pans: list[str]) -> list[str]:
    """The card numbers of ``pans`` found in ``text`` in any written form."""
    return [p[:6] + "…" for p in pans if any(f in text for f in forms(p))]


def echoing_bank() -> HttpBankChannel:
    """A bank that answers 3031 and echoes the account it was sent, and another number, in every field."""
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        data = http_answer(body["req_sn"], body["acct_no"], n=len(body["req_sn"]) % 5)
        data["ret_msg"] = f"{data['ret_msg']}（参考卡号 {forms(OTHER)[1]}）"
        return httpx.Response(200, json=data)
    return HttpBankChannel("http://bank.test", transport=httpx.MockTransport(answer))


def test_an_http_banks_echoes_are_stored_masked_only(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    dues = make_payouts(engine, vault, tmp_path, [10_000, 20_000, 30_000])
    with echoing_bank() as bank:
        summary = send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    assert summary.held == 3
    pans = [d.merchant.pan for d in dues] + [OTHER]
    text = dump(engine)
    assert full_numbers(text, pans) == []
    assert OTHER_MASK in text
    assert dues[0].merchant.pan[:6] + "*" * (len(dues[0].merchant.pan) - 10) + dues[0].merchant.pan[-4:] in text
    with engine.connect() as conn:
        messages = [m for (m,) in conn.execute(select(t.payout_attempts.c.message))]
    assert all("户名不符" in m for m in messages)


class EchoingVerifier:
    """A verification service that echoes the card number in its codes and messages."""

    name = "echo"

    def __init__(self, pan: str) -> None:
        # the card normal whatever number the serial gave (the simulated status of a number is its own: a test run
        # in another order drew a "lost" card and the binding was refused before anything was echoed)
        self.sim = SimulatedVerifier(1, holders={pan: Holder("张三", ID_NUMBER, PHONE)},
                                     overrides={pan: CardStatus.NORMAL})

    def verify_four_elements(self, pan: str, name: str, id_number: str, phone: str) -> VerificationResult:
        r = self.sim.verify_four_elements(pan, name, id_number, phone)
        return VerificationResult(r.outcome, r.code, f"{r.message}（卡号 {forms(pan)[2]}）", r.mismatched,
                                  r.card_status)

    def inquire_status(self, pan: str) -> CardStatusResult:
        r = self.sim.inquire_status(pan)
        return CardStatusResult(r.status, r.code, f"{r.message} 卡号{forms(pan)[3]}")


def test_a_card_verifiers_echoes_are_stored_masked_only(engine: Engine, vault: Vault) -> None:
    with engine.begin() as conn:
        m = make_merchants(conn, vault, 1)[0]
    pan = new_pan()
    bind_card(engine, EchoingVerifier(pan), vault, BindRequest(m.merchant_no, pan, "张三", ID_NUMBER, PHONE,
                                                               actor="ops:test"), now=NOW + timedelta(days=1))
    text = dump(engine)
    assert full_numbers(text, [pan, m.pan]) == []
    with engine.connect() as conn:
        answers = [m_ for (m_,) in conn.execute(select(t.card_verifications.c.bank_message))]
    assert any(f"卡号 {pan[:6]}" in (a or "") and pan[-4:] in (a or "") for a in answers)


class RefusingSms:
    """An SMS provider whose refusals quote a card number; the second try raises with one."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, phone: str, text: str, *, notice_id: int) -> SendResult:
        self.calls += 1
        if self.calls == 1:
            return SendResult(False, f"拒绝：内容含卡号 {forms(OTHER)[4]} " + "x" * 2000)
        raise RuntimeError(f"provider error for {forms(OTHER)[2]}")


def test_a_notification_receivers_replies_are_logged_masked_only(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [88_888])
    set_prefs(engine, vault, d.merchant.id, SEND_AT, sms="13912345678")
    with echoing_bank() as bank:
        send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    sms = RefusingSms()
    worker = Deliverer(engine, vault, sms=sms, rand=lambda: 0.0)
    worker.run(lambda: SEND_AT, once=True)
    worker.run(lambda: SEND_AT + timedelta(hours=1), once=True)
    assert sms.calls == 2
    with engine.connect() as conn:
        details = [x for (x,) in conn.execute(select(t.notification_attempts.c.detail).order_by(
            t.notification_attempts.c.id))]
    assert len(details) == 2
    assert all(len(x) <= 512 for x in details)
    assert "拒绝：内容含卡号 ６２１７００*********８００９" in details[0]
    assert details[1] == f"RuntimeError: provider error for {OTHER_MASK}"
    assert full_numbers(dump(engine), [OTHER, d.merchant.pan]) == []


def test_migration_0009_masks_what_was_stored_before_and_leaves_the_audit_log(engine: Engine, vault: Vault,
                                                                           tmp_path: Path) -> None:
    [d] = make_payouts(engine, vault, tmp_path, [77_777])
    with echoing_bank() as bank:
        send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    cfg = alembic_config(engine)
    # as if at 0008 (stamped: later revisions' schema changes do not matter to 0009, which only rewrites texts)
    command.stamp(cfg, "0008", purge=True)
    assert current_revision(engine) == "0008"
    pan, grouped = d.merchant.pan, forms(OTHER)[1]
    escaped = "".join(f"\\u{ord(c):04x}" for c in pan)
    with engine.begin() as conn:  # what versions before 0009 stored
        conn.execute(update(t.payouts).values(last_code=f"E{pan}", last_message=f"账号{pan}户名不符"))
        conn.execute(update(t.payout_attempts).values(
            code="3031", message=f"账号{grouped}户名不符",
            raw_response=f'{{"ret_msg":"账号{escaped}户名不符","acct_no":{pan},"x":"{OTHER}"}}'))
        conn.execute(update(t.payout_events).values(reason=f"退票 returned AC04 账号{pan}已销户"))
        conn.execute(insert(t.ops_alerts).values(kind="conflicting_report", dedupe_key="k1",
                                                 message=f"银行报告 {forms(pan)[3]}", created_at=NOW))
        conn.execute(update(t.notifications).values(payload={"zh": f"账号{pan}", "facts": {"n": [f"{OTHER}"]},
                                                             "amount_fen": 77_777}))
        conn.execute(insert(t.card_verifications).values(merchant_id=d.merchant.id, kind="status",
                                                         pan_masked="621226******0001", result="card_problem",
                                                         bank_code=f"B{pan}", bank_message=f"卡号{pan}已冻结",
                                                         at=NOW, actor="worker"))
        conn.execute(insert(t.card_events).values(merchant_id=d.merchant.id, kind="status_changed",
                                                  payload={"answer_message": f"卡号{pan}已冻结", "ids": [int(pan)]},
                                                  actor="worker", created_at=NOW))
        nid = conn.execute(select(t.notifications.c.id)).scalars().first()
        did = conn.execute(insert(t.notification_deliveries).values(
            notification_id=nid, channel="sms", target="139****5678", status="pending", next_attempt_at=NOW,
            created_at=NOW).returning(t.notification_deliveries.c.id)).scalar_one()
        conn.execute(insert(t.notification_attempts).values(delivery_id=did, attempt_no=1, started_at=NOW,
                                                            detail=f"HTTP 400 bad {OTHER}"))
        record(conn, "test", "test.note", ("payout", d.payout_id), {"note": pan}, SEND_AT)
    assert full_numbers(dump(engine), [pan, OTHER]) != []
    before = audit.verify(engine)  # the masked payout_events rows are covered by audit events' digests
    assert before.problem is not None
    assert before.problem.fault is Fault.COVERED_ROWS

    command.upgrade(cfg, "0009")
    assert current_revision(engine) == "0009"
    command.stamp(cfg, "head", purge=True)
    assert current_revision(engine) == head_revision(engine)
    text = dump(engine)
    assert full_numbers(text, [pan, OTHER]) == []
    masked = pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    with engine.connect() as conn:
        p = conn.execute(select(t.payouts.c.last_code, t.payouts.c.last_message)).one()
        raw = conn.execute(select(t.payout_attempts.c.raw_response)).scalars().first()
        events = conn.execute(select(t.card_events.c.payload).where(t.card_events.c.kind == "status_changed")
                              ).scalars().all()
        kept = conn.execute(select(t.audit_events.c.payload).where(t.audit_events.c.kind == "test.note")
                            ).scalar_one()
        reattested = conn.execute(select(t.audit_events.c.actor, t.audit_events.c.payload)
                                  .where(t.audit_events.c.kind == "covers_reattested")).one()
    assert (p.last_code, p.last_message) == (f"E{masked}", f"账号{masked}户名不符")
    assert json.loads(raw) == {"ret_msg": f"账号{masked}户名不符", "acct_no": masked, "x": OTHER_MASK}
    assert {"answer_message": f"卡号{masked}已冻结", "ids": [masked]} in events
    assert json.loads(kept) == {"note": pan}  # hash-chained: left as it was
    # the audit events covering the rows that were masked are attested again, in the chain: it verifies
    assert reattested.actor == "migration:0009"
    assert json.loads(reattested.payload)["reattests"]
    assert audit.verify(engine).ok
    with engine.begin() as conn:  # and a later edit of those rows is still found
        conn.execute(update(t.payout_events).values(reason="edited"))
    assert audit.verify(engine).problem is not None


def test_migration_0009_masks_exactly_as_settleguard_masking_does() -> None:
    import importlib.util

    from settleguard import masking
    from settleguard.db import migrations

    path = Path(migrations.__file__).parent / "versions" / "0009_mask_stored_bank_texts.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._RUN.pattern == masking._RUN.pattern  # the copy is the same definition
    for text in [f"账号{f}户名不符" for f in forms(OTHER)] + ["3031 账号户名不符", "SG20261118M12", "1" * 40]:
        assert module.mask(text) == masking.mask_card_numbers(text)
