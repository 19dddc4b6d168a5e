"""``settleguard simulate bank --port N`` as a user runs it: a subprocess we pay through over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from settleguard.channels.base import OutcomeStatus, PayoutInstruction
from settleguard.channels.http_bank import HttpBankChannel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bank_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "COLUMNS": "160"}
    proc = subprocess.Popen([sys.executable, "-m", "settleguard", "simulate", "bank", "--port", str(port),
                             "--seed", "11", "--fail-rate", "0.2", "--card-fail-rate", "0.1", "--latency-ms", "5",
                             "--timeout-seconds", "1.5"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "simulated bank did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert "simulated bank listening" in out


def test_paying_through_the_simulated_bank_never_pays_twice(bank_url: str) -> None:
    batch = [PayoutInstruction(f"SG20261118M{i}", 10_000 + i, "CNY", f"商户{i}", f"6222020{i:012d}", "ICBC",
                               "personal", date(2026, 11, 18)) for i in range(120)]
    with HttpBankChannel(bank_url, timeout=httpx.Timeout(0.5, connect=5.0)) as ch:
        first = {ins.idempotency_key: ch.send(ins) for ins in batch}
        kinds = Counter((o.status, o.code) for o in first.values())
        assert kinds[(OutcomeStatus.SUCCEEDED, "0000")] > 60
        assert any(s is OutcomeStatus.FAILED for s, _ in kinds)
        assert any(s is OutcomeStatus.UNKNOWN for s, _ in kinds), kinds
        assert all(o.scheme == "allinpay" and "6222020" not in o.raw.replace("6222020*", "") for o in first.values())
        # Inquire about every unclear one; then resend everything: nothing may be paid twice.
        truth = {k: ch.inquire(k) for k, o in first.items() if o.status is OutcomeStatus.UNKNOWN}
        assert all(o.status is not OutcomeStatus.UNKNOWN for o in truth.values())
        for ins in batch:
            again = ch.send(ins)
            before = first[ins.idempotency_key]
            if before.status is OutcomeStatus.SUCCEEDED:
                assert (again.status, again.code) == (OutcomeStatus.SUCCEEDED, "0000")
            if truth.get(ins.idempotency_key) is not None and truth[ins.idempotency_key].code == "0000":
                assert again.status is OutcomeStatus.SUCCEEDED
        amounts = {ins.idempotency_key: ins.amount_fen for ins in batch}
        paid = {}
        for k in first:
            answer = ch.inquire(k)
            if answer.status is OutcomeStatus.SUCCEEDED:
                paid[k] = json.loads(answer.raw)["amount"]
        assert set(paid) >= {k for k, o in first.items() if o.status is OutcomeStatus.SUCCEEDED}
        assert all(paid[k] == amounts[k] for k in paid)  # the bank's total paid per key: once, never twice
