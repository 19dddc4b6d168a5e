"""``settleguard notify prefs set|show``, ``notify deliver --once`` and ``notify log`` as a user runs them
(a subprocess per command, on SQLite and PostgreSQL): a payout held for 户名不符 reaches the merchant by
signed webhook and by email (a local aiosmtpd server); a webhook that is down shows each try in the log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from datetime import time as dtime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from conftest import NOW
from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import load_vault
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db.engine import open_engine
from settleguard.diagnosis import classify
from settleguard.notify.model import NOTICE_HEADER, SIGNATURE_HEADER, verify
from settleguard.payouts.service import send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind

DAY = date(2026, 11, 18)
VALUE_DAY = date(2026, 11, 19)
SEND_AT = datetime.combine(VALUE_DAY, dtime(9), ZoneInfo("Asia/Shanghai"))
SECRET = "merchant-secret-密钥"
FIX = classify("allinpay", "3031", "账号户名不符").merchant_zh  # what a merchant reads (issue 18)


class NameMismatchBank:
    """Every payout fails with allinpay 3031 账号户名不符 (a card_info_error: held)."""

    name = "e2e"

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        return BankOutcome(OutcomeStatus.FAILED, "3031", "账号户名不符", '{"RET_CODE":"3031"}', scheme="allinpay")

    def inquire(self, idempotency_key: str) -> BankOutcome:
        return self.send(None)  # type: ignore[arg-type]


def cli(db: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200",
            **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hook:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[dict[str, str], bytes, str | None]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verify(SECRET, self.headers[SIGNATURE_HEADER], body, now=int(time.time()))
                    err = None
                except Exception as exc:
                    err = str(exc)
                outer.requests.append((dict(self.headers), body, err))
                self.send_response(status if err is None else 401)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Box:
    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.raw.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture
def mail() -> Iterator[tuple[Box, int]]:
    box, port = Box(), free_port()
    c = Controller(box, hostname="127.0.0.1", port=port)
    c.start()
    yield box, port
    c.stop()


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """A migrated database with two merchants, each with one settled payout due on VALUE_DAY."""
    cli(db_url, "db", "upgrade", cwd=tmp_path)
    engine = open_engine(db_url)
    vault = load_vault(None, tmp_path / "e2e.key")
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 2)
    at = datetime.combine(DAY, dtime(12), ZoneInfo("Asia/Shanghai"))
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 50_000 + i)
                                   for i, m in enumerate(ms)], now=NOW)
    settle(engine, DAY, NOW)
    yield engine, ",".join(m.merchant_no for m in ms)
    engine.dispose()


def hold_all(engine: Engine, tmp_path: Path) -> None:
    send_due(engine, NameMismatchBank(), load_vault(None, tmp_path / "e2e.key"), as_of=VALUE_DAY, now=SEND_AT)


def test_a_held_payout_reaches_the_merchant_by_webhook_and_email(shop: tuple[Engine, str], db_url: str,
                                                                  tmp_path: Path, mail: tuple[Box, int]) -> None:
    engine, merchants = shop
    m1 = merchants.split(",")[0]
    hook = Hook()
    try:
        out = cli(db_url, "notify", "prefs", "set", m1, "--webhook", hook.url, "--secret", SECRET, "--email",
                  "boss@shop.example", "--json", cwd=tmp_path)
        prefs = json.loads(out.stdout)
        assert prefs["channels"] == ["webhook", "email"]
        assert prefs["webhook_secret"] == "set"
        shown = cli(db_url, "notify", "prefs", "show", m1, "--json", cwd=tmp_path).stdout
        assert SECRET not in shown
        assert json.loads(shown)["webhook_url"] == hook.url
        assert SECRET not in cli(db_url, "notify", "prefs", "show", m1, cwd=tmp_path).stdout
        hold_all(engine, tmp_path)
        box, port = mail
        env = {"SETTLEGUARD_SMTP_HOST": "127.0.0.1", "SETTLEGUARD_SMTP_PORT": str(port),
               "SETTLEGUARD_SMTP_FROM": "notice@settleguard.example"}
        out = cli(db_url, "notify", "deliver", "--once", "--json", cwd=tmp_path, env=env)
        assert json.loads(out.stdout.splitlines()[-1])["delivered"] == 2
        [(headers, body, err)] = hook.requests
        assert err is None
        doc = json.loads(body)
        assert headers[NOTICE_HEADER] == str(doc["id"])
        assert doc["facts"]["merchant_no"] == m1
        assert all(step in doc["text"]["zh"] for step in FIX)
        [raw] = box.raw
        msg = message_from_bytes(raw, policy=policy.default)
        assert str(msg["Subject"]).startswith("【结算卫士】结算失败")
        plain = msg.get_body(preferencelist=("plain",))
        assert plain is not None
        assert all(step in plain.get_content() for step in FIX)
        log = json.loads(cli(db_url, "notify", "log", "--merchant", m1, "--json", cwd=tmp_path).stdout)
        assert sorted((r["channel"], r["ok"], r["http_status"]) for r in log) == [("email", True, None),
                                                                                  ("webhook", True, 200)]
        # the second merchant chose nothing: its notice stays in the outbox, nothing was sent
        assert cli(db_url, "notify", "log", "--merchant", merchants.split(",")[1], "--json",
                   cwd=tmp_path).stdout.strip() == "[]"
    finally:
        hook.close()


def test_a_down_webhook_shows_each_failed_try_in_the_log(shop: tuple[Engine, str], db_url: str,
                                                        tmp_path: Path) -> None:
    engine, merchants = shop
    m1 = merchants.split(",")[0]
    hook = Hook(status=503)
    try:
        cli(db_url, "notify", "prefs", "set", m1, "--webhook", hook.url, "--secret", SECRET, cwd=tmp_path)
        hold_all(engine, tmp_path)
        env = {"SETTLEGUARD_NOTIFY_BACKOFF_BASE_SECONDS": "0.5", "SETTLEGUARD_NOTIFY_BACKOFF_CAP_SECONDS": "1",
               "SETTLEGUARD_NOTIFY_MAX_ATTEMPTS": "3"}
        for _ in range(3):
            cli(db_url, "notify", "deliver", "--once", cwd=tmp_path, env=env)
            time.sleep(1.1)
        log = json.loads(cli(db_url, "notify", "log", "--json", cwd=tmp_path).stdout)
        assert [(r["attempt_no"], r["ok"], r["http_status"]) for r in reversed(log)] == [
            (1, False, 503), (2, False, 503), (3, False, 503)]
        assert log[0]["delivery_status"] == "gave_up"
        assert len(hook.requests) == 3
        table = cli(db_url, "notify", "log", cwd=tmp_path).stdout
        assert "失败 failed" in table
        assert "503" in table
    finally:
        hook.close()


def test_bad_input_is_refused_in_chinese_first(shop: tuple[Engine, str], db_url: str, tmp_path: Path) -> None:
    _, merchants = shop
    m1 = merchants.split(",")[0]
    bad = cli(db_url, "notify", "prefs", "set", m1, "--webhook", "ftp://x", "--secret", "s", cwd=tmp_path, check=False)
    assert bad.returncode == 2
    assert bad.stderr.index("错误") < bad.stderr.index("Error")
    nosecret = cli(db_url, "notify", "prefs", "set", m1, "--webhook", "https://x.example/h", cwd=tmp_path,
                   check=False)
    assert nosecret.returncode == 2
    assert "--secret" in nosecret.stderr
    unknown = cli(db_url, "notify", "prefs", "show", "000", cwd=tmp_path, check=False)
    assert unknown.returncode == 2
    assert "没有商户" in unknown.stderr
