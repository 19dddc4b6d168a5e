"""HttpBankChannel against the simulated bank's FastAPI app served by uvicorn in a thread, and against mocks."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date

import httpx
import pytest
import uvicorn

from settleguard.channels.base import BankChannel, OutcomeStatus, PayoutInstruction
from settleguard.channels.http_bank import CONNECT_ERROR, HttpBankChannel
from settleguard.channels.simulator import BUSY, TIMEOUT, SimulatedBank
from settleguard.sim.bank_server import create_app, make_bank, scaled_rates

PAN = "6222021234567890123"
HEALTHY = (("3031", 0.0),)
NO_BLIPS = ((BUSY, 0.0),)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A uvicorn server for one app on a free port, in a daemon thread."""

    def __init__(self, bank: SimulatedBank, timeout_seconds: float = 1.0) -> None:
        self.bank = bank
        self.port = free_port()
        config = uvicorn.Config(create_app(bank, timeout_seconds=timeout_seconds), host="127.0.0.1", port=self.port,
                                log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(bank: SimulatedBank, timeout_seconds: float = 1.0) -> Served:
        s = Served(bank, timeout_seconds).__enter__()
        started.append(s)
        return s

    yield start
    for s in started:
        s.__exit__()


def instruction(key: str = "SG20261118M1", amount: int = 123_456, account: str = PAN) -> PayoutInstruction:
    return PayoutInstruction(key, amount, "CNY", "张三", account, "ICBC", "personal", date(2026, 11, 18))


def bank(**kw: object) -> SimulatedBank:
    base: dict[str, object] = {"card_fault_rates": HEALTHY, "attempt_fault_rates": NO_BLIPS}
    base.update(kw)
    return SimulatedBank(1, **base)  # type: ignore[arg-type]


def test_the_channel_is_a_bank_channel() -> None:
    with HttpBankChannel("http://127.0.0.1:9") as ch:
        assert isinstance(ch, BankChannel)
        assert ch.name == "http_bank"


def test_a_payout_succeeds_and_the_inquiry_agrees(serve: Callable[..., Served]) -> None:
    srv = serve(bank())
    with HttpBankChannel(srv.url) as ch:
        out = ch.send(instruction())
        assert (out.status, out.code, out.message, out.scheme) == (OutcomeStatus.SUCCEEDED, "0000", "交易成功", "allinpay")
        body = json.loads(out.raw)
        assert body["req_sn"] == "SG20261118M1"
        assert body["amount"] == 123_456
        assert body["acct_no"] == "622202*********0123"
        assert PAN not in out.raw
        again = ch.inquire("SG20261118M1")
        assert (again.status, again.code) == (OutcomeStatus.SUCCEEDED, "0000")
        unknown = ch.inquire("SG-NEVER-SENT")
        assert (unknown.status, unknown.code, unknown.retryable) == (OutcomeStatus.FAILED, "1002", True)
    assert srv.bank.paid_total_fen("SG20261118M1") == 123_456


def test_a_resent_req_sn_gets_the_first_answer_and_is_never_paid_twice(serve: Callable[..., Served]) -> None:
    srv = serve(bank())
    with HttpBankChannel(srv.url) as ch:
        first = ch.send(instruction())
        second = ch.send(instruction())
        assert second.status is OutcomeStatus.SUCCEEDED
        assert second.raw == first.raw
        changed = ch.send(instruction(amount=999))
        assert (changed.status, changed.code) == (OutcomeStatus.FAILED, "3051")
    assert srv.bank.attempts("SG20261118M1") == 1
    assert srv.bank.paid_total_fen("SG20261118M1") == 123_456


def test_a_card_problem_is_a_definite_failure_and_stays_one(serve: Callable[..., Served]) -> None:
    srv = serve(bank(card_faults={PAN: "3031"}))
    with HttpBankChannel(srv.url) as ch:
        out = ch.send(instruction())
        assert (out.status, out.code, out.message, out.retryable) == (OutcomeStatus.FAILED, "3031", "账号户名不符",
                                                                      False)
        assert ch.send(instruction()).raw == out.raw
        assert ch.inquire("SG20261118M1").code == "3031"
    assert srv.bank.executed_keys() == frozenset()


def test_busy_is_retryable_and_the_same_req_sn_may_be_resent(serve: Callable[..., Served]) -> None:
    srv = serve(bank(attempt_fault_rates=((BUSY, 1.0),)))
    with HttpBankChannel(srv.url) as ch:
        for _ in range(2):
            out = ch.send(instruction())
            assert (out.status, out.code, out.retryable) == (OutcomeStatus.FAILED, "3028", True)
    assert srv.bank.attempts("SG20261118M1") == 2


def test_a_timeout_after_the_bank_paid_is_unknown_then_the_inquiry_says_paid(serve: Callable[..., Served]) -> None:
    srv = serve(bank(attempt_fault_rates=((TIMEOUT, 1.0),), timeout_executed_rate=1.0), timeout_seconds=2.0)
    with HttpBankChannel(srv.url, timeout=httpx.Timeout(0.4, connect=2.0)) as ch:
        out = ch.send(instruction())
        assert (out.status, out.code, out.retryable) == (OutcomeStatus.UNKNOWN, TIMEOUT, False)
        assert PAN not in out.raw
        inquiry = ch.inquire("SG20261118M1")
        assert (inquiry.status, inquiry.code) == (OutcomeStatus.SUCCEEDED, "0000")
        resend = ch.send(instruction())  # answered from the first result: no second payment
        assert (resend.status, resend.code) == (OutcomeStatus.SUCCEEDED, "0000")
    assert srv.bank.paid_total_fen("SG20261118M1") == 123_456
    assert srv.bank.attempts("SG20261118M1") == 1


def test_a_timeout_the_bank_lost_is_unknown_then_the_inquiry_says_not_received(serve: Callable[..., Served]) -> None:
    srv = serve(bank(attempt_fault_rates=((TIMEOUT, 1.0),), timeout_executed_rate=0.0), timeout_seconds=2.0)
    with HttpBankChannel(srv.url, timeout=httpx.Timeout(0.4, connect=2.0)) as ch:
        assert ch.send(instruction()).status is OutcomeStatus.UNKNOWN
        inquiry = ch.inquire("SG20261118M1")
        assert (inquiry.status, inquiry.code, inquiry.retryable) == (OutcomeStatus.FAILED, "1002", True)
    assert srv.bank.executed_keys() == frozenset()


def test_connection_refused_is_a_definite_retryable_failure_and_an_inquiry_stays_unknown() -> None:
    with HttpBankChannel(f"http://127.0.0.1:{free_port()}", timeout=2.0) as ch:
        out = ch.send(instruction())
        assert (out.status, out.code, out.retryable) == (OutcomeStatus.FAILED, CONNECT_ERROR, True)
        assert PAN not in out.raw
        inquiry = ch.inquire("SG20261118M1")
        assert (inquiry.status, inquiry.code) == (OutcomeStatus.UNKNOWN, CONNECT_ERROR)


def test_the_server_rejects_an_unreadable_request_with_http_400(serve: Callable[..., Served]) -> None:
    srv = serve(bank())
    resp = httpx.post(f"{srv.url}/api/v1/payout", json={"req_sn": "K", "amount": "lots"}, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["ret_code"] == "1000"
    assert "amount" in resp.json()["ret_msg"]
    assert srv.bank.attempts("K") == 0


def mock_channel(handler: Callable[[httpx.Request], httpx.Response]) -> HttpBankChannel:
    return HttpBankChannel("http://bank.test", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("response", "status", "code", "retryable"), [
    (httpx.Response(500, text="Internal Server Error"), OutcomeStatus.UNKNOWN, "HTTP_500", False),
    (httpx.Response(502, text="<html>Bad Gateway</html>"), OutcomeStatus.UNKNOWN, "HTTP_502", False),
    (httpx.Response(200, text="<html>maintenance</html>"), OutcomeStatus.UNKNOWN, "BAD_RESPONSE", False),
    (httpx.Response(200, json={"ret_code": "0000"}), OutcomeStatus.UNKNOWN, "BAD_RESPONSE", False),
    (httpx.Response(200, json={"ret_code": "2000", "ret_msg": "处理中", "status": "PROCESSING"}),
     OutcomeStatus.UNKNOWN, "2000", False),
    (httpx.Response(429, text="slow down"), OutcomeStatus.FAILED, "HTTP_429", True),
    (httpx.Response(400, json={"ret_code": "1000", "ret_msg": "报文内容检查错", "status": "FAIL"}),
     OutcomeStatus.FAILED, "1000", False),
    (httpx.Response(200, json={"ret_code": "3024", "ret_msg": "日期切换正在处理", "status": "FAIL"}),
     OutcomeStatus.FAILED, "3024", True),
])
def test_answers_map_into_outcomes(response: httpx.Response, status: OutcomeStatus, code: str,
                                   retryable: bool) -> None:
    with mock_channel(lambda request: response) as ch:
        out = ch.send(instruction())
    assert (out.status, out.code, out.retryable) == (status, code, retryable)


@pytest.mark.parametrize(("error", "status", "code"), [
    (httpx.ConnectError("refused"), OutcomeStatus.FAILED, CONNECT_ERROR),
    (httpx.ConnectTimeout("slow connect"), OutcomeStatus.FAILED, CONNECT_ERROR),
    (httpx.ReadTimeout("no answer"), OutcomeStatus.UNKNOWN, TIMEOUT),
    (httpx.WriteTimeout("stuck sending"), OutcomeStatus.UNKNOWN, TIMEOUT),
    (httpx.RemoteProtocolError("peer closed"), OutcomeStatus.UNKNOWN, "NETWORK_ERROR"),
])
def test_transport_errors_before_sending_fail_and_after_sending_are_unknown(
        error: Exception, status: OutcomeStatus, code: str) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise error

    with mock_channel(boom) as ch:
        out = ch.send(instruction())
    assert (out.status, out.code) == (status, code)


def test_the_request_carries_the_idempotency_key_and_a_full_pan_echoed_back_is_masked() -> None:
    seen: list[dict[str, object]] = []

    def echo(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        return httpx.Response(200, json={"req_sn": body["req_sn"], "ret_code": "0000", "ret_msg": "交易成功",
                                         "status": "SUCCESS", "acct_no": body["acct_no"]})

    with mock_channel(echo) as ch:
        out = ch.send(instruction())
    assert seen[0] == {"req_sn": "SG20261118M1", "merchant_id": "SG0001", "amount": 123_456, "currency": "CNY",
                       "acct_no": PAN, "acct_name": "张三", "acct_type": "0", "bank_code": "ICBC",
                       "value_date": "20261118", "summary": "商户结算款"}
    assert out.status is OutcomeStatus.SUCCEEDED
    assert PAN not in out.raw
    assert "622202*********0123" in out.raw


def test_fault_rates_scale_but_keep_their_mix() -> None:
    scaled = scaled_rates((("A", 0.01), ("B", 0.03)), 0.2)
    assert [c for c, _ in scaled] == ["A", "B"]
    assert scaled[0][1] == pytest.approx(0.05)
    assert scaled[1][1] == pytest.approx(0.15)
    with pytest.raises(ValueError, match="between 0 and 1"):
        scaled_rates((("A", 0.01),), 1.5)
    quiet = make_bank(5, fail_rate=0.0, card_fail_rate=0.0)
    assert all(quiet.attempt_fault(f"K{i}", 1) is None for i in range(2000))
    assert all(quiet.card_fault(f"62220{i:014d}") is None for i in range(2000))
    noisy = make_bank(5, fail_rate=0.5)
    assert 800 < sum(noisy.attempt_fault(f"K{i}", 1) is not None for i in range(2000)) < 1200
