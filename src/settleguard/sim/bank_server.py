"""A simulated bank speaking the HTTP JSON payout API of settleguard.channels.http_bank (FastAPI).

中文：模拟银行代付接口（``settleguard simulate bank --port N``）。每笔出款的结果由
:class:`~settleguard.channels.simulator.SimulatedBank` 的同一套确定性规则决定（卡问题、限额、
系统忙、日切、超时——超时后约八成已经扣款），这里只负责 HTTP：随机延迟、超时时迟迟不应答、
按 ``req_sn`` 幂等（同一流水号重复提交返回第一次的应答，绝不重复付款；参数不一致则拒绝），
以及查询接口。

English: decisions come from SimulatedBank (one fault model for the in-process and the HTTP bank).
Per request:

- a request whose answer is final (paid, or a definitive failure) is remembered by ``req_sn``; a
  repeat returns that first answer verbatim (a repeat with different amount/account → 3051 重复业务);
- 3028 系统忙 / 3024 日期切换 answers are not remembered: the same ``req_sn`` may be resent;
- a timeout holds the answer for ``timeout_seconds`` (longer than the client waits), whether the
  bank executed the payout or lost the request; the inquiry endpoint tells the truth.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from settleguard.cards.vault import mask_pan
from settleguard.channels.base import OutcomeStatus, PayoutInstruction
from settleguard.channels.http_bank import PAY_PATH, QUERY_PATH
from settleguard.channels.simulator import (
    ATTEMPT_FAULT_RATES,
    BUSY,
    CARD_FAULT_RATES,
    CUT_OVER,
    DUPLICATE,
    MESSAGES,
    NOT_FOUND,
    OK,
    TIMEOUT,
    SimulatedBank,
)

BAD_REQUEST = "1000"
BAD_REQUEST_MESSAGE = "报文内容检查错 request rejected"


class PayoutRequest(BaseModel):
    req_sn: str = Field(min_length=1, max_length=35)
    merchant_id: str = Field(min_length=1, max_length=32)
    amount: int
    currency: str = "CNY"
    acct_no: str = Field(min_length=1, max_length=34)
    acct_name: str = Field(min_length=1, max_length=140)
    acct_type: str = Field(default="0", pattern="^[01]$")
    bank_code: str = Field(min_length=1, max_length=35)
    value_date: str = Field(pattern=r"^\d{8}$")
    summary: str = ""

    def __repr__(self) -> str:  # never print a full card number
        return f"PayoutRequest(req_sn={self.req_sn!r}, amount={self.amount}, acct_no={mask_pan(self.acct_no)!r})"


class QueryRequest(BaseModel):
    req_sn: str = Field(min_length=1, max_length=35)
    merchant_id: str = ""


def scaled_rates(rates: Sequence[tuple[str, float]], total: float) -> tuple[tuple[str, float], ...]:
    """The same mix of codes as ``rates``, scaled so that the probabilities add up to ``total``."""
    if not 0.0 <= total <= 1.0:
        raise ValueError(f"a rate must be between 0 and 1, got {total}")
    base = sum(r for _, r in rates)
    return tuple((code, r * total / base) for code, r in rates)


def make_bank(seed: int, *, fail_rate: float | None = None, card_fail_rate: float | None = None,
              timeout_executed_rate: float = 0.8) -> SimulatedBank:
    """A SimulatedBank whose per-attempt and per-card fault probabilities total the given rates."""
    attempt = ATTEMPT_FAULT_RATES if fail_rate is None else scaled_rates(ATTEMPT_FAULT_RATES, fail_rate)
    card = CARD_FAULT_RATES if card_fail_rate is None else scaled_rates(CARD_FAULT_RATES, card_fail_rate)
    return SimulatedBank(seed, card_fault_rates=card, attempt_fault_rates=attempt,
                         timeout_executed_rate=timeout_executed_rate)


def _status(code: str) -> str:
    if code == OK:
        return "SUCCESS"
    if code == NOT_FOUND:
        return "NOT_FOUND"
    return "FAIL"


def create_app(bank: SimulatedBank, *, latency_ms: float = 0.0, timeout_seconds: float = 35.0,
               seed: int = 0) -> FastAPI:
    """The FastAPI app answering for ``bank``. ``latency_ms``: each answer waits uniform [0, latency_ms]."""
    app = FastAPI(title="settleguard 模拟银行 simulated bank", docs_url=None, redoc_url=None, openapi_url=None)
    answers: dict[str, dict[str, Any]] = {}
    fingerprints: dict[str, str] = {}
    rng = random.Random(seed)
    app.state.bank = bank
    app.state.answers = answers

    async def delay() -> None:
        if latency_ms > 0:
            await asyncio.sleep(rng.uniform(0.0, latency_ms) / 1000.0)

    def answer(key: str, code: str, masked: str, amount: int) -> dict[str, Any]:
        return {"req_sn": key, "ret_code": code, "ret_msg": MESSAGES[code], "status": _status(code),
                "amount": amount, "acct_no": masked}

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
        return JSONResponse({"ret_code": BAD_REQUEST, "ret_msg": f"{BAD_REQUEST_MESSAGE}: {', '.join(fields)}",
                             "status": "FAIL"}, status_code=400)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "bank": "settleguard-sim"}

    @app.post(PAY_PATH)
    async def pay(req: PayoutRequest) -> JSONResponse:
        await delay()
        masked = mask_pan(req.acct_no)
        fingerprint = hashlib.sha256(f"{req.amount}|{req.acct_no}|{req.acct_name}|{req.bank_code}".encode()).hexdigest()
        # No await from here until the answer is stored: one req_sn is decided once, even when resent concurrently.
        if req.req_sn in answers:
            if fingerprints[req.req_sn] != fingerprint:
                return JSONResponse(answer(req.req_sn, DUPLICATE, masked, req.amount))
            return JSONResponse(answers[req.req_sn])
        if bank.paid_total_fen(req.req_sn) > 0:  # paid by an earlier server sharing the bank's state
            first = answer(req.req_sn, OK, masked, bank.paid_total_fen(req.req_sn))
            answers[req.req_sn], fingerprints[req.req_sn] = first, fingerprint
            return JSONResponse(first)
        try:
            day = datetime.strptime(req.value_date, "%Y%m%d").date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            day = date.min
        ins = PayoutInstruction(req.req_sn, req.amount, req.currency, req.acct_name, req.acct_no, req.bank_code,
                                "corporate" if req.acct_type == "1" else "personal", day)
        outcome = bank.send(ins)
        if outcome.status is OutcomeStatus.UNKNOWN:
            truth = bank.inquire(req.req_sn)
            if truth.code != NOT_FOUND:  # the bank acted: a resend must get this, never a second payment
                answers[req.req_sn] = answer(req.req_sn, truth.code, masked, req.amount)
                fingerprints[req.req_sn] = fingerprint
            await asyncio.sleep(timeout_seconds)  # the client gave up long ago
            return JSONResponse(answer(req.req_sn, TIMEOUT, masked, req.amount) | {"status": "PROCESSING"})
        first = answer(req.req_sn, outcome.code, masked, req.amount)
        if outcome.code not in (BUSY, CUT_OVER):
            answers[req.req_sn], fingerprints[req.req_sn] = first, fingerprint
        return JSONResponse(first)

    @app.post(QUERY_PATH)
    async def query(req: QueryRequest) -> JSONResponse:
        await delay()
        outcome = bank.inquire(req.req_sn)
        first = answers.get(req.req_sn)
        masked = first["acct_no"] if first else ""
        amount = bank.paid_total_fen(req.req_sn) or (first["amount"] if first else 0)
        return JSONResponse(answer(req.req_sn, outcome.code, masked, amount))

    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
