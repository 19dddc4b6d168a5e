"""A bank's HTTP JSON payout API (代付接口) as a :class:`~settleguard.channels.base.BankChannel` (httpx).

中文：按国内银行/支付机构“单笔实时代付 + 交易结果查询”接口的风格，通过 HTTP JSON 出款。
请求已发出后超时 = 结果未明（UNKNOWN，必须先查询再重发）；连接都没建立（连接被拒、连接超时）=
确定未发出（FAILED，可重试）。银行返回的原文存入 ``raw``；原文和每个文字字段中的完整卡号
（13 位以上的数字串，含空格、短横线分组和全角数字）一律在此替换为掩码（前 6 后 4）。

Wire format (JSON, UTF-8; amounts in integer fen):

``POST {base}/api/v1/payout`` — 单笔代付 pay one instruction::

    {"req_sn": "SG20261118M42",        # 商户请求流水号 = idempotency key / EndToEndId (≤ 35)
     "merchant_id": "SG0001",           # 我方在银行的商户号 our merchant number at the bank
     "amount": 123456,                  # 金额（分） amount in fen, > 0
     "currency": "CNY",
     "acct_no": "6222021234567890123",  # 收款账号 payee account (full; only on the wire)
     "acct_name": "张三",               # 收款户名 payee name
     "acct_type": "0",                  # 0 对私 personal, 1 对公 corporate
     "bank_code": "ICBC",               # 收款行 receiving bank
     "value_date": "20261118",          # 期望出款日 requested value date
     "summary": "商户结算款"}            # 摘要 remittance text

``POST {base}/api/v1/payout/query`` — 交易结果查询 inquiry: ``{"req_sn": "...", "merchant_id": "..."}``.

Answer to both (HTTP 200)::

    {"req_sn": "...", "ret_code": "0000", "ret_msg": "交易成功",
     "status": "SUCCESS" | "FAIL" | "PROCESSING" | "NOT_FOUND",
     "amount": 123456, "acct_no": "622202*********0123"}   # the bank echoes a masked account

``ret_code``/``ret_msg`` are Allinpay-style business codes (settleguard.channels.simulator.MESSAGES):
0000 success, 3028 系统忙 and 3024 日期切换 (retryable), 3031/3039/3017/3004 card problems, 3013 limit,
3051 重复业务, 1002 无法查询到该交易 (query: never received — a resend is safe). A request the bank
cannot read gets HTTP 400 with ``{"ret_code": "1000", "status": "FAIL"}``.

Mapping into :class:`BankOutcome`: SUCCESS → succeeded; FAIL → failed (retryable for 3028/3024);
NOT_FOUND → failed, retryable (1002); PROCESSING → unknown. Transport: connect error / connect or
pool timeout → failed ``CONNECT_ERROR`` (retryable: nothing left us); read/write timeout → unknown
``TIMEOUT``; a connection dropped after sending or a 5xx / unreadable answer → unknown; 429 → failed,
retryable; other 4xx → failed.

Card numbers: the bank may echo the payee's account in any field (``acct_no``, ``ret_msg``, fields we do
not know) and in any form (grouped, dashed, full-width, JSON escapes such as ``\\u0036``). Every text of the answer
(``raw``, code, message, the HTTP reason phrase) passes :func:`settleguard.masking.mask_card_numbers` here,
once, before a :class:`BankOutcome` leaves the channel; when escapes hide a number from the text, ``raw``
is the masked answer written out again as JSON.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.channels.simulator import MESSAGES, NOT_FOUND, RETRYABLE, TIMEOUT
from settleguard.masking import has_card_number, mask_card_numbers

PAY_PATH = "/api/v1/payout"
QUERY_PATH = "/api/v1/payout/query"
CONNECT_ERROR = "CONNECT_ERROR"
NETWORK_ERROR = "NETWORK_ERROR"
BAD_RESPONSE = "BAD_RESPONSE"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
ACCOUNT_TYPES = {"personal": "0", "corporate": "1"}
_MSG_CONNECT = "无法连接银行，请求未发出 cannot connect to the bank; nothing was sent"
_MSG_DROPPED = "连接在请求发出后中断，结果未明，请发起查询 connection lost after sending; inquire"
_MSG_BAD = "银行应答无法识别，结果未明，请发起查询 unreadable answer; inquire"


class HttpBankChannel:
    """Pays through a bank's HTTP JSON API (wire format in the module docstring).

    Args:
        base_url: e.g. ``http://127.0.0.1:8600``.
        merchant_id: our merchant number at the bank.
        timeout: httpx timeout; a read timeout after sending gives an ``unknown`` outcome.
        transport: an httpx transport (tests: ``httpx.ASGITransport`` or a mock).
        scheme: the code set of the bank's ``ret_code`` values, for diagnosis.
    """

    name = "http_bank"

    def __init__(self, base_url: str, *, merchant_id: str = "SG0001",
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None, scheme: str = "allinpay") -> None:
        self.base_url = base_url
        self.merchant_id = merchant_id
        self.scheme = scheme
        self._client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                    headers={"Content-Type": "application/json; charset=utf-8"})

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpBankChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpBankChannel(base_url={self.base_url!r}, merchant_id={self.merchant_id!r})"

    # ------------------------------------------------------------------ BankChannel

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        """Submit one payout; never raises for the bank's answer or the network."""
        body = {
            "req_sn": instruction.idempotency_key, "merchant_id": self.merchant_id,
            "amount": instruction.amount_fen, "currency": instruction.currency,
            "acct_no": instruction.account_number, "acct_name": instruction.creditor_name,
            "acct_type": ACCOUNT_TYPES.get(instruction.account_kind, "0"), "bank_code": instruction.bank_code,
            "value_date": instruction.value_date.strftime("%Y%m%d"), "summary": "商户结算款",
        }
        return self._call(PAY_PATH, body)

    def inquire(self, idempotency_key: str) -> BankOutcome:
        """Ask what became of ``idempotency_key`` (状态查询); network trouble gives ``unknown``."""
        outcome = self._call(QUERY_PATH, {"req_sn": idempotency_key, "merchant_id": self.merchant_id})
        if outcome.code == CONNECT_ERROR:  # the inquiry did not happen: we still do not know
            return BankOutcome(OutcomeStatus.UNKNOWN, CONNECT_ERROR, outcome.message, outcome.raw, scheme=self.scheme)
        return outcome

    # ------------------------------------------------------------------ internals

    def _note(self, code: str, message: str, key: object) -> str:
        return json.dumps({"channel": self.name, "req_sn": key, "error": code, "message": message},
                          ensure_ascii=False, separators=(",", ":"))

    def _call(self, path: str, body: dict[str, Any]) -> BankOutcome:
        key = body["req_sn"]
        try:
            resp = self._client.post(path, content=json.dumps(body, ensure_ascii=False).encode("utf-8"))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            msg = f"{_MSG_CONNECT} ({type(exc).__name__})"
            return BankOutcome(OutcomeStatus.FAILED, CONNECT_ERROR, msg, self._note(CONNECT_ERROR, msg, key),
                               retryable=True, scheme=self.scheme)
        except httpx.TimeoutException as exc:
            msg = f"{MESSAGES[TIMEOUT]} ({type(exc).__name__})"
            return BankOutcome(OutcomeStatus.UNKNOWN, TIMEOUT, msg, self._note(TIMEOUT, msg, key), scheme=self.scheme)
        except httpx.TransportError as exc:
            msg = f"{_MSG_DROPPED} ({type(exc).__name__})"
            return BankOutcome(OutcomeStatus.UNKNOWN, NETWORK_ERROR, msg, self._note(NETWORK_ERROR, msg, key),
                               scheme=self.scheme)
        return self._outcome(resp)

    def _outcome(self, resp: httpx.Response) -> BankOutcome:
        raw, data = masked_answer(resp.text)  # never keep a full card number (module docstring)
        code = str(data.get("ret_code", "")) if isinstance(data, dict) else ""
        message = str(data.get("ret_msg", "")) if isinstance(data, dict) else ""
        status = str(data.get("status", "")) if isinstance(data, dict) else ""
        http = resp.status_code
        if http >= 500 or (http == 200 and (not code or status not in _STATUSES)):
            # The bank (or a gateway before it) may have acted: unknown, inquire before resending.
            unknown = BAD_RESPONSE if http == 200 else (code or f"HTTP_{http}")
            return BankOutcome(OutcomeStatus.UNKNOWN, unknown, message or _MSG_BAD, raw, scheme=self.scheme)
        if http != 200:
            return BankOutcome(OutcomeStatus.FAILED, code or f"HTTP_{http}",
                               message or mask_card_numbers(resp.reason_phrase), raw,
                               retryable=http == 429 or code in RETRYABLE, scheme=self.scheme)
        result = _STATUSES[status]
        retryable = result is OutcomeStatus.FAILED and (code in RETRYABLE or status == "NOT_FOUND")
        if status == "NOT_FOUND" and not code:
            code = NOT_FOUND
        return BankOutcome(result, code, message, raw, retryable=retryable, scheme=self.scheme)


_STATUSES = {"SUCCESS": OutcomeStatus.SUCCEEDED, "FAIL": OutcomeStatus.FAILED, "PROCESSING": OutcomeStatus.UNKNOWN,
             "NOT_FOUND": OutcomeStatus.FAILED}


def masked_answer(text: str) -> tuple[str, Any]:
    """The answer's text and its parsed JSON (None if it is not JSON), every card number masked.

    The text is masked as it is; its JSON is parsed from the original (a number-valued account stays
    parseable) and every string in it — and every integer long enough to be a card number — masked.
    When the masked text still hides a card number behind JSON escapes (``"\\u0036217…"``) or is no
    longer JSON, the masked data written out again as JSON is kept instead."""
    raw = mask_card_numbers(text)
    try:
        data = json.loads(text)
    except ValueError:
        return raw, None
    data = _mask_json(data)
    try:
        again = json.loads(raw)
    except ValueError:
        again = None
    if again is None or _json_has_card(again):
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return raw, data


def _mask_json(value: Any) -> Any:
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, bool) or not isinstance(value, int | dict | list):
        return value
    if isinstance(value, int):
        return mask_card_numbers(str(value)) if has_card_number(str(value)) else value
    if isinstance(value, dict):
        return {mask_card_numbers(str(k)): _mask_json(v) for k, v in value.items()}
    return [_mask_json(v) for v in value]


def _json_has_card(value: Any) -> bool:
    if isinstance(value, str):
        return has_card_number(value)
    if isinstance(value, dict):
        return any(has_card_number(str(k)) or _json_has_card(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_json_has_card(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and has_card_number(str(value))
