"""Message and code normalisation, embedded-code extraction, and the properties the classifier relies
on: normalising is idempotent, and width, whitespace, punctuation and script variants classify alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.diagnosis import classify
from settleguard.diagnosis.normalize import extract_code, normalize_code, normalize_message, normalize_scheme


@pytest.mark.parametrize(("raw", "normalised"), [
    ("账号户名不符", "账号户名不符"),
    ("帳戶已凍結，請聯繫開戶行！", "帐户已冻结 请联系开户行"),
    ("ＡＣＣＯＵＮＴ　ＣＬＯＳＥＤ", "account closed"),
    ("  NAME_MISMATCH  ", "name mismatch"),
    ("RESP=3017|MSG=账户已冻结", "resp 3017 msg 账户已冻结"),
    ("【B0210】帐户已冻结。", "b0210 帐户已冻结"),
    ("“交易失败”（请稍后再试）", "交易失败 请稍后再试"),
    ("Account\tclosed\n\r by  customer", "account closed by customer"),
    ("系統繁忙、請稍後再試；", "系统繁忙 请稍后再试"),
    ("", ""), (None, ""), ("！？。", ""),
])
def test_messages_normalise_as_specified(raw: str | None, normalised: str) -> None:
    assert normalize_message(raw) == normalised


@pytest.mark.parametrize(("raw", "code"), [
    ("ac04", "AC04"), (" AC 04 ", "AC04"), ("ＡＣ０４", "AC04"), ("r16\n", "R16"), ("", None), ("   ", None), (None, None),
    ("payee_card_info_error", "PAYEE_CARD_INFO_ERROR"),
])
def test_codes_normalise_to_upper_case_without_whitespace(raw: str | None, code: str | None) -> None:
    assert normalize_code(raw) == code


def test_scheme_names_are_case_and_dash_insensitive() -> None:
    assert normalize_scheme(" ISO-20022_return ") == "iso20022_return"
    assert normalize_scheme("ISO 8583") == "iso8583"
    assert normalize_scheme("WeChatPay") == "wechat_pay"
    assert normalize_scheme("Bogus") == "bogus"
    assert normalize_scheme("") is None
    assert normalize_scheme(None) is None


@pytest.mark.parametrize(("message", "code", "how", "rest"), [
    ("[E1031]余额不足", "E1031", "bracket", "余额不足"),
    ("【B0210】帐户已冻结", "B0210", "bracket", "帐户已冻结"),
    ("RESP=3017|MSG=账户已冻结", "3017", "key", "账户已冻结"),
    ("错误码: AC04", "AC04", "key", ""),
    ("错误码：AC04，账户已关闭", "AC04", "key", "账户已关闭"),
    ("respCode=14, respMsg=帐户已作废", "14", "key", "帐户已作废"),
    ('{"error_code":"PAYEE_CARD_INFO_ERROR","fail_reason":"收款方银行卡信息有误"}', "PAYEE_CARD_INFO_ERROR", "key",
     '"收款方银行卡信息有误"}'),
    ("R02 Account Closed", "R02", "leading", "Account Closed"),
    ("3031:账号户名不符", "3031", "leading", "账号户名不符"),
    ("NOTENOUGH", "NOTENOUGH", "whole", ""),
    ("AC04", "AC04", "whole", ""),
    ("账户已冻结(3017)", "3017", "bracket", "账户已冻结"),
])
def test_codes_embedded_in_text_are_extracted(message: str, code: str, how: str, rest: str) -> None:
    e = extract_code(message)
    assert e is not None
    assert (e.code, e.how, e.text) == (code, how, rest)


@pytest.mark.parametrize("message", ["账户已冻结", "account closed", "交易失败，请稍后再试", "", None, "余额不足 请查询"])
def test_plain_text_has_no_embedded_code(message: str | None) -> None:
    assert extract_code(message) is None


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_CJK = st.text(alphabet=st.sampled_from(list("帳戶賬號凍結銷戶餘額不足系統繁忙户名账号冻结销余额系统忙超时處理中請查詢ＡＢＣ１２３，。！？ 　\t_-abcXYZ")),
               max_size=30)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_TEXT, _CJK))
def test_normalising_is_idempotent(text: str) -> None:
    once = normalize_message(text)
    assert normalize_message(once) == once
    assert once == once.strip()
    assert "  " not in once


def _variants(message: str) -> list[str]:
    """Full-width, padded, re-punctuated, upper-cased and traditional spellings of ``message``."""
    import opencc

    s2t = opencc.OpenCC("s2t")
    full = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in message)
    return [full, f"  {message}  ", message.replace(" ", "\t \n"), f"【{message}】！", message.upper(),
            str(s2t.convert(message)), str(s2t.convert(full))]


BASES = ["账户已冻结", "收款人户名不符", "余额不足", "系统繁忙 请稍后再试", "交易状态未明 请查询", "重复交易", "超单笔交易限额",
         "account closed", "name mismatch", "insufficient funds", "timeout", "duplicate transaction", "账户已销户",
         "MAC校验错 请重新签到", "被风控拦截", "报文格式错误", "卡号无效"]


@pytest.mark.parametrize("base", BASES)
def test_width_whitespace_punctuation_and_script_variants_classify_alike(base: str) -> None:
    expected = classify(None, None, base)
    assert expected.rule is not None
    for v in _variants(base):
        got = classify(None, None, v)
        assert (got.category, got.rule) == (expected.category, expected.rule), v


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(BASES), st.lists(st.sampled_from([" ", "\u3000", "，", "。", "!", "\t", "、", "_"]), max_size=4))
def test_padding_with_whitespace_and_punctuation_never_changes_the_answer(base: str, pads: list[str]) -> None:
    padded = "".join(pads) + base + "".join(reversed(pads))
    assert classify(None, None, padded).rule == classify(None, None, base).rule
