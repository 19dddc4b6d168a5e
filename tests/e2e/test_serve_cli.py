"""``settleguard users add|token|list|disable`` and ``settleguard serve`` as an operator runs them: subprocesses
on SQLite and PostgreSQL, the API reached over real HTTP with the printed token and with a browser login."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psutil
import pytest
from sqlalchemy import select

from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import Vault
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.payouts.service import send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)
PASSWORD = "e2e-correct-horse"
NAME_MISMATCH = BankOutcome(OutcomeStatus.FAILED, "3031", "账号户名不符", "{}", scheme="allinpay")
PAID = BankOutcome(OutcomeStatus.SUCCEEDED, "0000", "交易成功", "{}", scheme="allinpay")


class Bank:
    name = "e2e"

    def __init__(self, bad_key: str) -> None:
        self.bad_key = bad_key

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        return NAME_MISMATCH if instruction.idempotency_key == self.bad_key else PAID

    def inquire(self, idempotency_key: str) -> BankOutcome:
        return PAID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sg(db_url: str, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "settleguard", "--db", db_url, *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def seed(db_url: str, vault: Vault, tmp_path: Path) -> dict[str, Any]:
    """Two merchants settled and paid once: the first one's payout held (name mismatch), the second paid."""
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            a, b = make_merchants(conn, vault, 2)
        at = datetime.combine(DAY, dtime(12), SH)
        import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, fen)
                                       for m, fen in ((a, 52_000), (b, 61_000))], now=NOW)
        settle(engine, DAY, NOW)
        with engine.connect() as conn:
            ids = dict(conn.execute(select(t.payouts.c.merchant_id, t.payouts.c.id)).all())
            keys = dict(conn.execute(select(t.payouts.c.id, t.payouts.c.idempotency_key)).all())
        send_due(engine, Bank(keys[ids[a.id]]), vault, as_of=date(2026, 11, 19),
                 now=datetime(2026, 11, 19, 1, 0, tzinfo=UTC))
    finally:
        engine.dispose()
    return {"a": a, "b": b, "held": ids[a.id], "paid": ids[b.id]}


@contextmanager
def running(db_url: str, tmp_path: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``settleguard serve`` with ``options`` until the block ends; (base url, process)."""
    port = free_port()
    env = {**os.environ, "COLUMNS": "160"}
    proc = subprocess.Popen([sys.executable, "-m", "settleguard", "--db", db_url, "serve", "--port", str(port),
                             *options], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{url}/api/v1/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "settleguard serve did not start"
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "结算卫士已启动 settleguard is serving" in out, (out, err)
    for label, path in (("运营控制台 console", "/"), ("商户门户 portal", "/m"), ("API", "/api/v1"),
                        ("API 文档 API docs", "/api/v1/docs")):  # every entry point, not only /api/v1
        assert any(line.split() == [*label.split(), url + path] for line in out.splitlines()), (label, out)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running(db_url, tmp_path) as got:
        yield got


def test_users_and_tokens_then_the_api_over_http(db_url: str, vault: Vault, tmp_path: Path,
                                                   server: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = server
    data = seed(db_url, vault, tmp_path)
    a, b = data["a"], data["b"]

    r = sg(db_url, tmp_path, "users", "add", "oper1", "--role", "operator", "--name", "值班运营", "--password-stdin",
           stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "已添加用户 user added" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    r = sg(db_url, tmp_path, "users", "add", "shop-a", "--role", "merchant", "--merchant-no", a.merchant_no,
           "--password-stdin", stdin=f"{PASSWORD}\n")
    assert r.returncode == 0, r.stderr
    # Prompts need a terminal: without one (and without --password-stdin) refused, saying how (zh, then en).
    r = sg(db_url, tmp_path, "users", "add", "shop-x", "--role", "merchant", "--merchant-no", a.merchant_no,
           stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.returncode == 2
    assert r.stderr.index("没有终端") < r.stderr.index("no terminal")
    assert "--password-stdin" in r.stderr
    for args, zh in ((("users", "add", "shop-y", "--role", "merchant"), "商户用户必须指定商户编号"),
                     (("users", "add", "oper1", "--role", "auditor"), "已存在"),
                     (("users", "add", "weak1", "--role", "auditor"), "密码至少")):
        r = sg(db_url, tmp_path, *args, "--password-stdin", stdin=("short" if "weak1" in args else PASSWORD) + "\n")
        assert r.returncode == 2, (args, r.stderr)
        assert zh in r.stderr, (args, r.stderr)

    r = sg(db_url, tmp_path, "users", "token", "oper1", "--name", "e2e")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("sgt_")
    assert len(token) > 40
    assert "只显示这一次" in r.stderr
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = [dict(x._mapping) for x in conn.execute(select(t.api_tokens))]
            hashes = [x for (x,) in conn.execute(select(t.users.c.password_hash))]
    finally:
        engine.dispose()
    assert [s["token_sha256"] for s in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in json.dumps(stored, default=str)
    assert stored[0]["prefix"] == token[:12]
    assert all(h.startswith("$argon2id$") for h in hashes)
    listed = json.loads(sg(db_url, tmp_path, "users", "list", "--json").stdout)
    assert [(u["username"], u["role"], u["merchant_no"], u["tokens"]) for u in listed] == [
        ("oper1", "operator", None, 1), ("shop-a", "merchant", a.merchant_no, 0)]

    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}/api/v1/payouts").status_code == 401
    me = httpx.get(f"{url}/api/v1/me", headers=bearer).json()
    assert (me["username"], me["role"], me["display_name"]) == ("oper1", "operator", "值班运营")
    held = httpx.get(f"{url}/api/v1/payouts", params={"status": "held"}, headers=bearer).json()
    assert [p["id"] for p in held["items"]] == [data["held"]]
    assert held["total"] == 1
    shown = httpx.get(f"{url}/api/v1/payouts/{data['held']}", headers=bearer).json()
    assert shown["diagnosis"]["category"] == "card_info_error"
    assert shown["diagnosis"]["guidance"]
    # held on a card that has not changed since it failed: refused unless overridden with a written reason
    resp = httpx.post(f"{url}/api/v1/payouts/{data['held']}/release", json={"note": "e2e"}, headers=bearer)
    assert resp.status_code == 409, resp.text
    resp = httpx.post(f"{url}/api/v1/payouts/{data['held']}/release",
                      json={"override": True, "reason": "客户确认卡已恢复 e2e"}, headers=bearer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "released"
    metrics = httpx.get(f"{url}/metrics", headers=bearer).text
    assert 'settleguard_payouts{status="released"} 1' in metrics.splitlines()

    # The merchant user in a browser: a session cookie, its own payouts only, no money actions.
    with httpx.Client(base_url=url) as browser:
        resp = browser.post("/api/v1/auth/login", json={"username": "shop-a", "password": PASSWORD})
        assert resp.status_code == 200
        assert "HttpOnly" in resp.headers["set-cookie"]
        csrf = resp.json()["csrf_token"]
        mine = browser.get("/api/v1/payouts").json()
        assert [p["id"] for p in mine["items"]] == [data["held"]]
        assert browser.get(f"/api/v1/payouts/{data['paid']}").status_code == 404
        assert browser.get(f"/api/v1/merchants/{b.id}").status_code == 404
        resp = browser.post(f"/api/v1/payouts/{data['held']}/cancel", json={"reason": "x"},
                         headers={"X-CSRF-Token": csrf})
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "forbidden"

    done = sg(db_url, tmp_path, "users", "disable", "oper1")
    assert done.returncode == 0
    assert "已停用用户" in done.stdout
    resp = httpx.get(f"{url}/api/v1/me", headers=bearer)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_credentials"


def test_serve_with_several_processes_on_postgresql_and_refused_on_sqlite(db_url: str, vault: Vault,
                                                                         tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        r = sg(db_url, tmp_path, "serve", "--workers", "2")
        assert r.returncode == 2
        assert r.stderr.index("SQLite 数据库只能由一个服务进程使用") < r.stderr.index("an SQLite database is served by")
        return
    data = seed(db_url, vault, tmp_path)
    assert sg(db_url, tmp_path, "users", "add", "oper2", "--role", "operator", "--password-stdin",
              stdin=PASSWORD + "\n").returncode == 0
    token = sg(db_url, tmp_path, "users", "token", "oper2", "--name", "e2e").stdout.strip()
    assert token.startswith("sgt_")
    bearer = {"Authorization": f"Bearer {token}"}
    with running(db_url, tmp_path, "--workers", "2") as (url, proc):
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "python" in p.name()]
        assert len(workers) >= 2, workers  # uvicorn's manager runs two server processes
        with httpx.Client(base_url=url, headers=bearer) as client:  # each request on a new connection:
            for _ in range(20):  # the kernel spreads them over both processes' shared socket
                shown = client.get(f"/api/v1/payouts/{data['held']}", headers={"Connection": "close"})
                assert shown.status_code == 200
                assert shown.json()["payout"]["status"] == "held"
            assert client.get("/api/v1/payouts", params={"category": "card_info_error"}).json()["total"] == 1
            # a write through one process is read back through any
            assert client.post(f"/api/v1/payouts/{data['held']}/release",
                               json={"override": True, "reason": "e2e"}).json()["status"] == "released"
            for _ in range(6):
                assert client.get(f"/api/v1/payouts/{data['held']}",
                                  headers={"Connection": "close"}).json()["payout"]["status"] == "released"


def test_serve_prints_the_console_portal_api_and_docs_addresses(db_url: str, tmp_path: Path) -> None:
    # issue 18: serve printed only /api/v1; ``running`` checks every address on the way out
    with running(db_url, tmp_path) as (url, _):
        assert httpx.get(f"{url}/login").status_code == 200
        assert httpx.get(f"{url}/api/v1/docs").status_code == 200
