"""Acceptance test of issue 6, "People in the loop", run as a user runs it: one ``settleguard --db URL ...``
subprocess per step (the installed console script), on SQLite and PostgreSQL.

A payout fails at the (simulated) bank with allinpay 3031 账号户名不符 and is held; the merchant receives a
signed webhook (the test recomputes the HMAC) and an email in Chinese first (read back from a local aiosmtpd
server) saying how to fix the card and how much is held; the operator opens a case, records the call to the
bank, exports the evidence bundle and verifies it; one changed byte of the bundle, and one edited audit row,
are each detected and named.

Only the merchant (with its bound card) is created in Python (no CLI registers merchants); transactions are
imported, settled and paid by the CLI through the in-process bank simulator. The simulator's seed is chosen
so that this merchant's card fails with 3031 on the first send and the card verifier finds the card normal.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from datetime import time as dtime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from factories import Txn, make_merchants, ref, write_csv
from settleguard.cards.vault import load_vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.channels.simulator import MESSAGES, NAME_MISMATCH, SimulatedBank
from settleguard.db.engine import open_engine
from settleguard.diagnosis import classify
from settleguard.settlement.model import CardType, TxnKind

SETTLEGUARD = Path(sys.executable).with_name("settleguard")  # .venv/bin/settleguard
SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)  # a Wednesday: T+1 pays on Thursday 2026-11-19
VALUE_DAY = date(2026, 11, 19)
SALE_FEN = 123_456
SECRET = "商户密钥-acceptance-6"
EMAIL = "owner@xiaochi.example"
WHO = "工行客服 95588 工号1234"
SAID = "银行确认户名与开户名不一致，请商户核对户名后重新绑卡"


def sg(db: str, *args: str, cwd: Path, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``settleguard --db URL args`` and insist on its exit code."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
    proc = subprocess.run([str(SETTLEGUARD), "--db", db, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**base, "COLUMNS": "200", **env})
    assert proc.returncode == code, (f"settleguard {' '.join(args)} exited {proc.returncode}, expected {code}\n"
                                     f"{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """The merchant's webhook endpoint: keeps every POST's headers and raw body, answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/settleguard/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """An aiosmtpd handler keeping (envelope recipients, raw message) of every mail."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.mails.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def hmac_v1(secret: str, timestamp: int, body: bytes) -> str:
    """What docs/notifications.md tells a receiver to compute: HMAC-SHA256 over ``"<t>." + body``."""
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def pick_seed(pan: str, key: str) -> int:
    """A seed with which the simulated bank answers 3031 for this card on the payout's first send (no
    busy/cut-over/timeout blip), and the simulated card verifier finds the card normal."""
    for seed in range(1, 200_000):
        bank = SimulatedBank(seed)
        if (bank.card_fault(pan) == NAME_MISMATCH and bank.attempt_fault(key, 1) is None
                and SimulatedVerifier(seed).status_of(pan) is CardStatus.NORMAL):
            return seed
    raise AssertionError("no simulator seed fails this card with 3031")


def mime_text(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def test_people_in_the_loop(db_url: str, tmp_path: Path, hook: Receiver, smtp: tuple[Mailbox, int]) -> None:
    assert SETTLEGUARD.exists(), SETTLEGUARD
    cwd = tmp_path
    env = {"SETTLEGUARD_KEY_FILE": str(cwd / "merchant-cards.key")}

    # -- 1. a merchant with a bound card; its day is imported and settled; the bank says 户名不符 -------------
    sg(db_url, "db", "upgrade", cwd=cwd, env=env)
    engine = open_engine(db_url)
    with engine.begin() as conn:
        [m] = make_merchants(conn, load_vault(None, cwd / "merchant-cards.key"), 1)
    engine.dispose()
    sale_at = datetime.combine(DAY, dtime(12, 5), SH)
    csv_path = write_csv(cwd / "pos-2026-11-18.csv",
                         [Txn(ref(), m.merchant_no, m.terminal_no, sale_at, TxnKind.SALE, CardType.QR, SALE_FEN)])
    imported = json.loads(sg(db_url, "import", "transactions", str(csv_path), "--json", cwd=cwd, env=env).stdout)
    assert imported["rows"] == 1
    settled = json.loads(sg(db_url, "settle", "--date", DAY.isoformat(), "--json", cwd=cwd, env=env).stdout)
    assert settled["payouts_created"] == 1
    [due] = json.loads(sg(db_url, "payouts", "list", "--merchant", m.merchant_no, "--json", cwd=cwd,
                          env=env).stdout)
    assert (due["status"], due["value_date"]) == ("created", VALUE_DAY.isoformat())
    pid, key, amount_fen = int(due["id"]), str(due["idempotency_key"]), int(due["amount_fen"])
    assert 0 < amount_fen < SALE_FEN  # the sale less its fee
    seed = str(pick_seed(m.pan, key))
    env |= {"SETTLEGUARD_SIM_SEED": seed, "SETTLEGUARD_CARD_VERIFIER_SEED": seed}

    sent = json.loads(sg(db_url, "payouts", "send", "--as-of", VALUE_DAY.isoformat(), "--json", cwd=cwd,
                         env=env).stdout)
    assert (sent["sent"], sent["held"], sent["held_fen"], sent["succeeded"]) == (1, 1, amount_fen, 0)
    assert sent["categories"] == {"card_info_error": 1}
    assert sent["reasons"] == {f"3031 {MESSAGES[NAME_MISMATCH]}": 1}

    # -- 2. the payout is held, card_info_error; the knowledge base rule is allinpay.3031 ---------------------
    kb = classify("allinpay", "3031", MESSAGES[NAME_MISMATCH])
    assert kb.category.value == "card_info_error"
    assert "户名不符" in kb.meaning_zh
    shown = json.loads(sg(db_url, "payouts", "show", str(pid), "--json", cwd=cwd, env=env).stdout)
    assert (shown["payout"]["status"], shown["payout"]["category"]) == ("held", "card_info_error")
    assert [(a["code"], a["rule_id"], a["decision"]) for a in shown["attempts"]] == [
        ("3031", "allinpay.3031", "hold")]
    assert [e["to_status"] for e in shown["events"]] == ["created", "submitted", "failed", "held"]
    page = sg(db_url, "payouts", "show", str(pid), cwd=cwd, env=env).stdout
    assert "挂账 held" in page
    assert "账号户名不符" in page
    assert page.index(kb.guidance_zh[0]) < page.index(kb.guidance_en[0])  # Chinese first

    # -- 3. the merchant's channels; delivery: a signed webhook and a Chinese-first email ---------------------
    prefs = json.loads(sg(db_url, "notify", "prefs", "set", m.merchant_no, "--webhook", hook.url, "--secret",
                          SECRET, "--email", EMAIL, "--json", cwd=cwd, env=env).stdout)
    assert prefs["channels"] == ["webhook", "email"]
    box, port = smtp
    mail_env = env | {"SETTLEGUARD_SMTP_HOST": "127.0.0.1", "SETTLEGUARD_SMTP_PORT": str(port),
                      "SETTLEGUARD_SMTP_FROM": "notice@settleguard.example"}
    delivered = sg(db_url, "notify", "deliver", "--once", "--json", cwd=cwd, env=mail_env).stdout
    assert json.loads(delivered.splitlines()[-1])["delivered"] == 2

    [(path, headers, body)] = hook.posts
    assert path == "/settleguard/hook"
    sig = dict(part.split("=", 1) for part in headers["x-settleguard-signature"].split(","))
    ts = int(sig["t"])
    assert abs(time.time() - ts) < 300
    assert hmac.compare_digest(hmac_v1(SECRET, ts, body), sig["v1"])
    # the same check refuses a body changed by one byte, a wrong secret and another timestamp
    forged = body.replace(str(amount_fen).encode(), str(amount_fen + 1).encode(), 1)
    assert forged != body
    assert not hmac.compare_digest(hmac_v1(SECRET, ts, forged), sig["v1"])
    assert not hmac.compare_digest(hmac_v1(SECRET + "x", ts, body), sig["v1"])
    assert not hmac.compare_digest(hmac_v1(SECRET, ts + 1, body), sig["v1"])
    doc = json.loads(body)
    assert headers["x-settleguard-notice"] == str(doc["id"])
    assert doc["kind"] == "card_info_error"
    facts = doc["facts"]
    assert (facts["payout_id"], facts["payout_key"], facts["merchant_no"]) == (pid, key, m.merchant_no)
    assert (facts["amount_fen"], facts["bank_code"], facts["rule"]) == (amount_fen, "3031", "allinpay.3031")
    assert "户名" in facts["meaning_zh"]
    assert "户名" in doc["text"]["zh"]
    assert facts["steps_zh"] == list(kb.merchant_zh)  # the merchant's steps, never an operations instruction
    assert not any("保留银行返回原文" in step for step in facts["steps_zh"])
    assert m.pan not in body.decode("utf-8")

    [(rcpts, raw)] = box.mails
    assert rcpts == [EMAIL]
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    subject = str(msg["Subject"])
    assert subject.startswith("【结算卫士】结算失败")
    assert subject.index("结算卡信息有误") < subject.index("Settlement failed")
    assert msg["X-Settleguard-Notice"] == str(doc["id"])
    yuan = f"{amount_fen // 100}.{amount_fen % 100:02d}"
    plain = mime_text(msg, "plain")
    assert plain.index("您需要做的") < plain.index("-- English --") < plain.index("What you need to do")
    zh_part = plain[:plain.index("-- English --")]
    for line in ("原因：账号户名不符", "银行返回：3031 账号户名不符", f"挂账金额（暂未付给您的资金）：{yuan} 元",
                 f"出款编号：{pid}（{key}）", "请核对开户名是否与银行预留户名完全一致", "重新绑定结算卡"):
        assert line in zh_part, line
    html = mime_text(msg, "html")
    assert html.index("重新绑定结算卡") < html.index("What you need to do")
    assert f"<td>{yuan} 元</td>" in html
    assert m.pan not in plain + html
    masked = m.pan[:6] + "*" * (len(m.pan) - 10) + m.pan[-4:]
    assert f"结算卡：{masked}" in zh_part

    # -- 4. the operator opens a case and records the call to the bank ---------------------------------------
    opened = sg(db_url, "cases", "open", "--merchant", m.merchant_no, "--payout", str(pid), "--category",
                "card_info_error", "--title", "户名不符 holder name mismatch", "--priority", "p2", "--actor",
                "ops.li", cwd=cwd, env=env).stdout
    assert "已开工单 case opened" in opened
    cid = int(re.findall(r"\d+", opened)[-1])
    listed = json.loads(sg(db_url, "cases", "list", "--merchant", m.merchant_no, "--json", cwd=cwd,
                           env=env).stdout)
    assert [(c["id"], c["status"], c["category"]) for c in listed] == [(cid, "open", "card_info_error")]
    sg(db_url, "cases", "contact", str(cid), "--party", "bank_support", "--method", "phone", "--who", WHO,
       "--said", SAID, "--actor", "ops.li", cwd=cwd, env=env)
    case = json.loads(sg(db_url, "cases", "show", str(cid), "--json", cwd=cwd, env=env).stdout)
    assert case["case"]["status"] == "open"
    assert [p["id"] for p in case["payouts"]] == [pid]
    assert [(c["party"], c["method"], c["contact_name"], c["summary"], c["recorded_by"])
            for c in case["contacts"]] == [
        ("bank_support", "phone", WHO, SAID, "ops.li")]
    page = sg(db_url, "cases", "show", str(cid), cwd=cwd, env=env).stdout
    for want in ("银行客服 bank support", "电话 phone", WHO, SAID, "账号户名不符", "诊断 diagnosis 银行卡信息错误 card info error"):
        assert want in page, want
    assert page.index("诊断 diagnosis") < page.index("Diagnosis:")

    # -- 5. the evidence bundle verifies; one changed byte is detected and named -----------------------------
    bundle = cwd / f"case-{cid}.zip"
    sg(db_url, "evidence", "export", str(cid), "--out", str(bundle), cwd=cwd, env=env)
    ok = sg(db_url, "evidence", "verify", str(bundle), cwd=cwd, env=env).stdout
    assert "证据包完整 bundle verified" in ok
    with zipfile.ZipFile(bundle) as z:
        infos = z.infolist()
        members = {i.filename: z.read(i) for i in infos}
    responses = json.loads(members["bank_responses.json"])
    assert any("户名不符" in json.dumps(r, ensure_ascii=False) and "3031" in json.dumps(r) for r in responses)
    raw_answers = members["bank_responses.json"].decode("utf-8")
    assert "账号户名不符" in raw_answers
    assert key in raw_answers
    contacts = list(csv.DictReader(io.StringIO(members["contacts.csv"].decode("utf-8-sig"))))  # CSVs carry a BOM
    assert [(c["联系对象 party"], c["方式 method"], c["联系人 contact_name"], c["内容 summary"]) for c in contacts] == [
        ("bank_support", "phone", WHO, SAID)]
    assert all(m.pan.encode() not in data for data in members.values())

    # one byte flipped inside bank_responses.json's content, the zip otherwise rebuilt as it was
    victim = "bank_responses.json"
    content = bytearray(members[victim])
    at = bytes(content).index(b"3031")
    content[at] ^= 0x01  # "3031" -> "2031"
    edited = cwd / "edited-member.zip"
    with zipfile.ZipFile(edited, "w") as z:
        for info in infos:
            z.writestr(info, bytes(content) if info.filename == victim else members[info.filename])
    bad = sg(db_url, "evidence", "verify", str(edited), cwd=cwd, env=env, code=1)
    assert f"被修改 changed: {victim}" in bad.stderr
    assert bad.stderr.index("证据包校验失败") < bad.stderr.index("FAILED")
    report = json.loads(sg(db_url, "evidence", "verify", str(edited), "--json", cwd=cwd, env=env, code=1).stdout)
    assert (report["ok"], report["changed"], report["missing"], report["extra"]) == (False, [victim], [], [])

    # one byte flipped in the zip file itself, inside contacts.csv's stored data
    info = next(i for i in infos if i.filename == "contacts.csv")
    blob = bytearray(bundle.read_bytes())
    data_at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    blob[data_at + info.compress_size // 2] ^= 0x01
    flipped = cwd / "flipped-byte.zip"
    flipped.write_bytes(bytes(blob))
    bad = sg(db_url, "evidence", "verify", str(flipped), cwd=cwd, env=env, code=1)
    assert "被修改 changed: contacts.csv" in bad.stderr

    # -- 6. the audit chain verifies; one edited row (the hold) is named -------------------------------------
    intact = sg(db_url, "audit", "verify", cwd=cwd, env=env).stdout
    assert "审计链完整 audit chain intact" in intact
    events = json.loads(sg(db_url, "audit", "list", "--subject", f"payout:{pid}", "--json", "--limit", "100",
                           cwd=cwd, env=env).stdout)
    [hold] = [e for e in events if e["kind"] == "payout.status" and e["payload"].get("to") == ["held"]]
    case_events = json.loads(sg(db_url, "audit", "list", "--subject", f"case:{cid}", "--json", cwd=cwd,
                                env=env).stdout)  # the operator's actions on the case are in the chain too
    assert [(e["kind"], e["actor"]) for e in sorted(case_events, key=lambda e: int(e["id"]))] == [
        ("case.open", "ops.li"), ("case.contact", "ops.li")]
    assert SAID not in json.dumps(case_events, ensure_ascii=False)  # ids and codes only, no free text
    eng = create_engine(db_url)
    with eng.begin() as conn:
        changed = conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = :i"), {"i": hold["id"]})
        assert changed.rowcount == 1
    eng.dispose()
    tampered = sg(db_url, "audit", "verify", cwd=cwd, env=env, code=1)
    assert f"first bad event: {hold['id']}" in tampered.stderr
    assert tampered.stderr.index("审计链被篡改") < tampered.stderr.index("edited")
    problem = json.loads(sg(db_url, "audit", "verify", "--json", cwd=cwd, env=env, code=1).stdout)["problem"]
    assert (problem["event_id"], problem["fault"]) == (hold["id"], "edited")
