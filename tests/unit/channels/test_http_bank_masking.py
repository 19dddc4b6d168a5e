"""An HTTP bank that echoes a card number — any card number, in any field, in any written form, even hidden
behind JSON escapes — gives a BankOutcome whose raw answer, code and message hold only masks."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from pan_echo import forms, http_answer
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.channels.http_bank import HttpBankChannel, masked_answer
from settleguard.masking import has_card_number

PAN = "6222021234567890128"  # the account paid
OTHER = "6217000000000008009"  # another number the bank puts in its answer
MASK, OTHER_MASK = "622202*********0128", "621700*********8009"


def _channel(answer: httpx.Response) -> HttpBankChannel:
    return HttpBankChannel("http://bank.test", transport=httpx.MockTransport(lambda _r: answer))


def _send(ch: HttpBankChannel) -> BankOutcome:
    with ch:
        return ch.send(PayoutInstruction("SG20261118M1", 100, "CNY", "张三", PAN, "ICBC", "personal",
                                         date(2026, 11, 18)))


def _clean(out: BankOutcome) -> None:
    for text in (out.raw, out.code, out.message):
        assert not has_card_number(text), text
        assert PAN not in text
        assert OTHER not in text


@pytest.mark.parametrize("n", range(5))
@pytest.mark.parametrize("pan", [PAN, OTHER])
def test_every_string_field_of_a_json_answer_is_masked(n: int, pan: str) -> None:
    answer = http_answer("SG20261118M1", pan, n=n)
    out = _send(_channel(httpx.Response(200, json=answer)))
    assert (out.status, out.code) == (OutcomeStatus.FAILED, "3031")
    _clean(out)
    assert (MASK if pan == PAN else OTHER_MASK) in json.loads(out.raw)["acct_no"].translate(
        str.maketrans("０１２３４５６７８９", "0123456789"))
    assert "户名不符" in out.message


def test_a_number_hidden_behind_json_escapes_or_written_as_a_json_number_is_masked() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in OTHER)
    text = ('{"req_sn":"SG20261118M1","ret_code":"3031","ret_msg":"账号' + escaped + '户名不符","status":"FAIL",'
            f'"acct_no":{OTHER},"ref":"{escaped}"' + "}")
    out = _send(_channel(httpx.Response(200, text=text, headers={"content-type": "application/json"})))
    assert (out.status, out.code) == (OutcomeStatus.FAILED, "3031")
    _clean(out)
    data = json.loads(out.raw)  # written out again as JSON, masked
    assert (data["ret_msg"], data["acct_no"], data["ref"]) == (f"账号{OTHER_MASK}户名不符", OTHER_MASK, OTHER_MASK)


@pytest.mark.parametrize("response", [
    httpx.Response(500, text=f"upstream error for account {OTHER}"),
    httpx.Response(400, json={"ret_code": f"E{OTHER}", "status": "FAIL"}),
    httpx.Response(200, text=f"<html>account {forms(OTHER)[1]} unknown</html>"),
    httpx.Response(403, text="", extensions={"reason_phrase": f"Forbidden {OTHER}".encode()}),
])
def test_unreadable_or_refused_answers_are_masked_too(response: httpx.Response) -> None:
    out = _send(_channel(response))
    _clean(out)


def test_a_plain_answer_is_kept_as_it_came() -> None:
    text = '{"req_sn":"SG20261118M1","ret_code":"0000","ret_msg":"交易成功","status":"SUCCESS","amount":100}'
    assert masked_answer(text) == (text, json.loads(text))
    out = _send(_channel(httpx.Response(200, text=text)))
    assert (out.status, out.raw) == (OutcomeStatus.SUCCEEDED, text)
