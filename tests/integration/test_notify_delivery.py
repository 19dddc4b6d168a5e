"""Delivering notices for real: a signed webhook to an HTTP receiver that checks the signature, an
email read back from a local SMTP server (aiosmtpd), SMS through the logging port, retries with
backoff against an endpoint that is down (each try in the log), and a worker killed mid-delivery
(SIGKILL) whose notice the next worker delivers once the lease has expired."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notify_helpers import deliveries, payout_notices, set_prefs, tries
from sqlalchemy import Engine
from test_payout_send import ScriptedBank, run

from payout_helpers import NAME_MISMATCH, SEND_AT, make_payouts
from settleguard.cards.vault import Vault
from settleguard.diagnosis import classify
from settleguard.notify.channels import LoggingSmsSender, SmtpConfig
from settleguard.notify.delivery import Deliverer, DeliverySettings
from settleguard.notify.model import NOTICE_HEADER, SIGNATURE_HEADER, Backoff, SignatureError, verify

SECRET = "whsec-测试-123"
DIAG = classify("allinpay", "3031", "账号户名不符")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A merchant's webhook endpoint: checks every signature with its own clock and answers from a
    script of status codes (default 200); ``hang_first`` makes the first request wait."""

    def __init__(self, secret: str, statuses: list[int] | None = None, hang_first: bool = False) -> None:
        self.secret = secret
        self.statuses = list(statuses or [])
        self.requests: list[dict[str, Any]] = []
        self.got_request = threading.Event()
        self.release = threading.Event()
        self.hang_first = hang_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verify(outer.secret, self.headers[SIGNATURE_HEADER], body, now=int(time.time()))
                    valid: str | None = None
                except (SignatureError, TypeError) as exc:
                    valid = str(exc)
                n = len(outer.requests)
                outer.requests.append({"body": body, "notice": self.headers[NOTICE_HEADER], "sig_error": valid,
                                       "path": self.path})
                outer.got_request.set()
                if outer.hang_first and n == 0:
                    outer.release.wait(60)
                code = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(code if valid is None else 401)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/settleguard/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        r = Receiver(SECRET, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def held_notice(engine: Engine, vault: Vault, tmp_path: Path, **prefs: Any) -> tuple[Any, dict[str, Any]]:
    [d] = make_payouts(engine, vault, tmp_path, [88_888])
    set_prefs(engine, vault, d.merchant.id, SEND_AT, **prefs)
    run(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault)
    [n] = payout_notices(engine, d.payout_id)
    return d, n


def test_the_webhook_is_signed_and_carries_the_chinese_fix(engine: Engine, vault: Vault, tmp_path: Path,
                                                           receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    d, n = held_notice(engine, vault, tmp_path, webhook=r.url, secret=SECRET)
    s = Deliverer(engine, vault).run(lambda: SEND_AT)
    assert (s.claimed, s.delivered, s.failed) == (1, 1, 0)
    [req] = r.requests
    assert req["sig_error"] is None
    assert req["notice"] == str(n["id"])
    doc = json.loads(req["body"])
    assert doc["id"] == n["id"]
    assert doc["kind"] == "card_info_error"
    assert all(step in doc["text"]["zh"] for step in DIAG.merchant_zh)
    assert doc["facts"]["amount_fen"] == d.amount
    assert doc["facts"]["payout_id"] == d.payout_id
    assert doc["facts"]["meaning_zh"] == DIAG.meaning_zh
    assert "*" in doc["facts"]["card_masked"]
    [dl] = deliveries(engine, n["id"])
    assert (dl["status"], dl["attempts"], dl["delivered_at"]) == ("delivered", 1, SEND_AT)
    [tr] = tries(engine, dl["id"])
    assert (tr["attempt_no"], tr["ok"], tr["http_status"]) == (1, True, 200)
    assert payout_notices(engine, d.payout_id)[0]["delivered_at"] == SEND_AT
    # delivered notices are not sent again
    assert Deliverer(engine, vault).run(lambda: SEND_AT + timedelta(hours=1)).claimed == 0
    assert len(r.requests) == 1


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(engine: Engine, vault: Vault, tmp_path: Path,
                                                                receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    _, n = held_notice(engine, vault, tmp_path, webhook=r.url, secret="not-the-merchant's-secret")
    s = Deliverer(engine, vault).run(lambda: SEND_AT)
    assert (s.delivered, s.failed) == (0, 1)
    assert r.requests[0]["sig_error"] == "mismatch"
    [dl] = deliveries(engine, n["id"])
    assert dl["status"] == "pending"
    assert dl["next_attempt_at"] > SEND_AT
    assert tries(engine, dl["id"])[0]["http_status"] == 401


def test_the_email_arrives_in_chinese_first_with_the_fix(engine: Engine, vault: Vault, tmp_path: Path,
                                                         smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    d, n = held_notice(engine, vault, tmp_path, email="owner@merchant.example")
    cfg = DeliverySettings(smtp=SmtpConfig("127.0.0.1", port, "notice@settleguard.example"))
    s = Deliverer(engine, vault, cfg).run(lambda: SEND_AT)
    assert s.delivered == 1
    [msg] = box.messages
    assert box.envelopes == [("notice@settleguard.example", ["owner@merchant.example"])]
    subject = str(msg["Subject"])
    assert subject.startswith("【结算卫士】结算失败")
    assert subject.index("结算失败") < subject.index("Settlement failed")
    assert msg[NOTICE_HEADER] == str(n["id"])
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    plain, markup = text.get_content(), html.get_content()
    assert all(step in plain for step in DIAG.merchant_zh)
    assert plain.index(DIAG.merchant_zh[0]) < plain.index("-- English --") < plain.index(DIAG.merchant_en[0])
    yuan = f"{d.amount // 100}.{d.amount % 100:02d}"
    assert f"挂账金额（暂未付给您的资金）：{yuan} 元" in plain
    assert DIAG.meaning_zh in markup
    assert "<li>" in markup
    assert deliveries(engine, n["id"])[0]["status"] == "delivered"


def test_an_sms_goes_through_the_port_with_the_phone_masked_in_the_queue(engine: Engine, vault: Vault,
                                                                       tmp_path: Path) -> None:
    _, n = held_notice(engine, vault, tmp_path, sms="13912345678")
    sms = LoggingSmsSender()
    assert Deliverer(engine, vault, sms=sms).run(lambda: SEND_AT).delivered == 1
    [(masked, text, nid)] = sms.sent
    assert (masked, nid) == ("139****5678", n["id"])
    assert text.startswith("【结算卫士】结算失败")
    assert DIAG.merchant_zh[0] in text
    assert deliveries(engine, n["id"])[0]["target"] == "139****5678"


def test_a_down_endpoint_is_retried_with_backoff_and_each_try_is_logged(engine: Engine, vault: Vault,
                                                                       tmp_path: Path,
                                                                       receiver: Callable[..., Receiver]) -> None:
    r = receiver(statuses=[503, 502])
    _, n = held_notice(engine, vault, tmp_path, webhook=r.url, secret=SECRET)
    backoff = Backoff(base_seconds=10, cap_seconds=100, max_attempts=5, floor_seconds=1)
    worker = Deliverer(engine, vault, DeliverySettings(backoff=backoff), rand=lambda: 0.5)
    t0 = SEND_AT
    assert worker.run(lambda: t0).failed == 1
    [dl] = deliveries(engine, n["id"])
    first_wait = 1 + (10 - 1) * 0.5
    assert (dl["status"], dl["attempts"], dl["next_attempt_at"]) == ("pending", 1, t0 + timedelta(seconds=first_wait))
    assert worker.run(lambda: t0 + timedelta(seconds=first_wait - 1)).claimed == 0  # not yet due
    t1 = t0 + timedelta(seconds=first_wait)
    assert worker.run(lambda: t1).failed == 1
    second_wait = 1 + (20 - 1) * 0.5
    assert deliveries(engine, n["id"])[0]["next_attempt_at"] == t1 + timedelta(seconds=second_wait)
    t2 = t1 + timedelta(seconds=second_wait)
    assert worker.run(lambda: t2).delivered == 1
    log = tries(engine, dl["id"])
    assert [(x["attempt_no"], x["ok"], x["http_status"], x["started_at"]) for x in log] == [
        (1, False, 503, t0), (2, False, 502, t1), (3, True, 200, t2)]
    assert len({q["notice"] for q in r.requests}) == 1
    assert len(r.requests) == 3


def test_an_unreachable_endpoint_is_given_up_after_the_last_try(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    _, n = held_notice(engine, vault, tmp_path, webhook=f"http://127.0.0.1:{free_port()}/hook", secret=SECRET)
    backoff = Backoff(base_seconds=2, cap_seconds=8, max_attempts=3, floor_seconds=0)
    worker = Deliverer(engine, vault, DeliverySettings(backoff=backoff, webhook_timeout=2), rand=lambda: 0.999)
    now = SEND_AT
    for _ in range(3):
        worker.run(lambda at=now: at)
        nxt = deliveries(engine, n["id"])[0]["next_attempt_at"]
        now = max(now, nxt)
    [dl] = deliveries(engine, n["id"])
    assert (dl["status"], dl["attempts"]) == ("gave_up", 3)
    log = tries(engine, dl["id"])
    assert [x["ok"] for x in log] == [False, False, False]
    assert all("Connect" in (x["detail"] or "") and x["http_status"] is None for x in log)
    waits = [(b["started_at"] - a["started_at"]).total_seconds() for a, b in zip(log, log[1:], strict=False)]
    assert waits[0] <= 2
    assert waits[1] <= 4
    assert waits[1] > waits[0]
    assert worker.run(lambda: now + timedelta(days=1)).claimed == 0


def test_a_worker_killed_mid_delivery_loses_nothing(engine: Engine, db_url: str, vault: Vault, tmp_path: Path,
                                                    receiver: Callable[..., Receiver]) -> None:
    r = receiver(hang_first=True)
    _, n = held_notice(engine, vault, tmp_path, webhook=r.url, secret=SECRET)
    env = {**os.environ, "SETTLEGUARD_DB": db_url, "SETTLEGUARD_KEY_FILE": str(tmp_path / "test.key"),
           "SETTLEGUARD_NOTIFY_LEASE_SECONDS": "3", "SETTLEGUARD_WEBHOOK_TIMEOUT_SECONDS": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "settleguard", "notify", "deliver", "--once"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert r.got_request.wait(60), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    [dl] = deliveries(engine, n["id"])
    assert (dl["status"], dl["attempts"]) == ("delivering", 1)
    assert [x["finished_at"] for x in tries(engine, dl["id"])] == [None]
    killed_at = datetime.now(dl["lease_until"].tzinfo)
    # while the lease holds, no other worker takes it
    assert Deliverer(engine, vault).run(lambda: datetime.now(killed_at.tzinfo)).claimed == 0
    time.sleep(max(0.0, (dl["lease_until"] - datetime.now(killed_at.tzinfo)).total_seconds()) + 0.5)
    s = Deliverer(engine, vault).run(lambda: datetime.now(killed_at.tzinfo))
    assert (s.claimed, s.delivered) == (1, 1)
    [dl] = deliveries(engine, n["id"])
    assert (dl["status"], dl["attempts"]) == ("delivered", 2)
    log = tries(engine, dl["id"])
    assert [(x["attempt_no"], x["ok"]) for x in log] == [(1, False), (2, True)]
    assert "lease expired" in log[0]["detail"]
    assert [q["notice"] for q in r.requests] == [str(n["id"])] * 2  # same idempotency key: receivers de-duplicate
    assert all(q["sig_error"] is None for q in r.requests)


def test_card_notices_and_notices_written_before_preferences_are_queued_by_the_worker(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.cards.service import OUTBOX

    [d] = make_payouts(engine, vault, tmp_path, [1000])
    run(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault)  # no preferences yet: outbox only
    with engine.begin() as conn:
        OUTBOX.notify(conn, merchant_id=d.merchant.id, kind="card_unusable", dedupe_key="card_unusable:1:frozen",
                      zh="您的结算卡已冻结，请换绑。", en="Your card is frozen; bind another.",
                      facts={"masked": "622202*********0018"}, now=SEND_AT)
        OUTBOX.notify(conn, merchant_id=d.merchant.id, kind="card_bound", dedupe_key="card_bound:old",
                      zh="旧通知", en="old", facts={}, now=SEND_AT - timedelta(days=3))
    assert deliveries(engine) == []
    set_prefs(engine, vault, d.merchant.id, SEND_AT, sms="13912345678")
    sms = LoggingSmsSender()
    s = Deliverer(engine, vault, sms=sms).run(lambda: SEND_AT + timedelta(minutes=5))
    assert (s.queued, s.delivered) == (2, 2)  # the hold and the card notice; the 3-day-old one is not sent
    texts_ = sorted(text for _, text, _ in sms.sent)
    assert any(t.startswith("【结算卫士】结算卡不可用") and "0018" in t for t in texts_)
    assert any(t.startswith("【结算卫士】结算失败") for t in texts_)


def test_the_payout_worker_cycle_ends_with_a_delivery_pass(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.worker import cycle

    [d] = make_payouts(engine, vault, tmp_path, [3000])
    set_prefs(engine, vault, d.merchant.id, SEND_AT, sms="13912345678")
    summary = cycle(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH]}), vault, None,
                    as_of=SEND_AT.date(), now=SEND_AT)
    assert summary.send.held == 1
    assert summary.notices is not None
    assert (summary.notices.claimed, summary.notices.delivered) == (1, 1)
    [n] = payout_notices(engine, d.payout_id)
    assert n["delivered_at"] == SEND_AT


def test_two_workers_at_once_deliver_each_notice_once(engine: Engine, db_url: str, vault: Vault, tmp_path: Path,
                                                       receiver: Callable[..., Receiver]) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several delivery workers at once: PostgreSQL (SQLite runs one worker)")
    r = receiver()
    ds = make_payouts(engine, vault, tmp_path, [1000 + i for i in range(12)])
    for d in ds:
        set_prefs(engine, vault, d.merchant.id, SEND_AT, webhook=r.url, secret=SECRET)
    run(engine, ScriptedBank(sends={d.key: [NAME_MISMATCH] for d in ds}), vault)
    settings = DeliverySettings(batch=2)
    results: list[Any] = []
    workers = [threading.Thread(target=lambda: results.append(Deliverer(engine, vault, settings).run(lambda: SEND_AT)))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sum(s.delivered for s in results) == 12
    assert sorted(q["notice"] for q in r.requests) == sorted({q["notice"] for q in r.requests})
    assert len(r.requests) == 12
    assert {x["status"] for x in deliveries(engine)} == {"delivered"}
