"""WeChat Pay payout (企业付款到银行卡 / 到零钱, 商家转账 v3) knowledge base: hand-written expectations from
shared/reference/failure-codes.md §5.5, checked through ``classify``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import QUERY_FIRST_CATEGORIES, RESENDING_DECISIONS

SCHEME = "wechat_pay"

TABLE = [
    ("SYSTEMERROR", "result_unknown", "inquire", "platform"),   # 请先调用查询接口
    ("SEND_FAILED", "result_unknown", "inquire", "platform"),
    ("PARAM_ERROR", "transaction_data_error", "review", "platform"),
    ("SIGNERROR", "verification_failed", "review", "platform"),
    ("AMOUNT_LIMIT", "limit_exceeded", "retry", "bank"),
    ("ORDERPAID", "duplicate", "inquire", "platform"),
    ("FATAL_ERROR", "duplicate", "inquire", "platform"),
    ("NOTENOUGH", "insufficient_funds", "retry", "platform"),
    ("FREQ_LIMIT", "system_or_network_fault", "retry", "platform"),
    ("NAME_MISMATCH", "card_info_error", "hold", "merchant"),
    ("V2_ACCOUNT_SIMPLE_BAN", "risk_or_compliance_block", "hold", "merchant"),
    ("ACCOUNT_FROZEN", "card_status_abnormal", "hold", "merchant"),
    ("REAL_NAME_CHECK_FAIL", "risk_or_compliance_block", "hold", "merchant"),
    ("NAME_NOT_CORRECT", "card_info_error", "hold", "merchant"),
    ("ACCOUNT_NOT_EXIST", "card_info_error", "hold", "merchant"),
    ("TRANSFER_QUOTA_EXCEED", "limit_exceeded", "split", "merchant"),
    ("DAY_RECEIVED_COUNT_EXCEED", "limit_exceeded", "retry", "merchant"),
    ("TRANSFER_RISK", "risk_or_compliance_block", "hold", "platform"),
    ("PROCESSING", "result_unknown", "inquire", "platform"),
]

# Every code of §5.5 (a) pay_bank err_code + query status, (b) transfers err_code, (c) v3 FailReasonType.
PAY_BANK = """INVALID_REQUEST SYSTEMERROR PARAM_ERROR SIGNERROR AMOUNT_LIMIT ORDERPAID FATAL_ERROR NOTENOUGH
FREQUENCY_LIMITED RECV_ACCOUNT_NOT_ALLOWED PAY_CHANNEL_NOT_ALLOWED SENDNUM_LIMIT NO_AUTH
PROCESSING FAILED BANK_FAIL""".split()
TRANSFERS = """NO_AUTH AMOUNT_LIMIT PARAM_ERROR OPENID_ERROR SEND_FAILED NOTENOUGH SYSTEMERROR NAME_MISMATCH SIGN_ERROR
XML_ERROR FATAL_ERROR FREQ_LIMIT MONEY_LIMIT CA_ERROR V2_ACCOUNT_SIMPLE_BAN PARAM_IS_NOT_UTF8 SENDNUM_LIMIT
RECV_ACCOUNT_NOT_ALLOWED PAY_CHANNEL_NOT_ALLOWED""".split()
FAIL_REASONS = """ACCOUNT_FROZEN REAL_NAME_CHECK_FAIL NAME_NOT_CORRECT OPENID_INVALID TRANSFER_QUOTA_EXCEED
DAY_RECEIVED_QUOTA_EXCEED MONTH_RECEIVED_QUOTA_EXCEED DAY_RECEIVED_COUNT_EXCEED PRODUCT_AUTH_CHECK_FAIL OVERDUE_CLOSE
ID_CARD_NOT_CORRECT ACCOUNT_NOT_EXIST TRANSFER_RISK""".split()
ALL_CODES = sorted(set(PAY_BANK) | set(TRANSFERS) | set(FAIL_REASONS))
NARRATIVE = ["FAILED", "BANK_FAIL"]
# "not found as WeChat codes" (reference §5.5 NB): must not be invented.
NOT_WECHAT = ["INVALID_ACCOUNT", "ACCOUNT_NAME_NOT_MATCH", "SUCCESS"]


@pytest.mark.parametrize(("code", "category", "decision", "owner"), TABLE)
def test_table(code: str, category: str, decision: str, owner: str) -> None:
    d = classify(SCHEME, code, None)
    assert (d.category.value, d.decision.value, d.owner.value) == (category, decision, owner)
    assert d.rule == f"{SCHEME}.{code}"
    assert d.needs_review is (decision == "review")   # the flag follows the decision
    assert d.confidence >= 0.9


def test_every_reference_code_is_in_the_kb_and_nothing_else() -> None:
    codes = set(knowledge_base().codes[SCHEME])
    assert set(ALL_CODES) <= codes, sorted(set(ALL_CODES) - codes)
    assert codes == set(ALL_CODES), f"rules without a listed code: {sorted(codes - set(ALL_CODES))}"


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_code_resolves_to_its_own_rule(code: str) -> None:
    assert classify(SCHEME, code, None).rule == f"{SCHEME}.{code}"


@pytest.mark.parametrize("code", NOT_WECHAT)
def test_codes_that_are_not_wechat_codes_stay_out(code: str) -> None:
    assert code not in knowledge_base().codes[SCHEME]


@given(code=st.sampled_from(["SYSTEMERROR", "SEND_FAILED", "ORDERPAID", "FATAL_ERROR", "PROCESSING"]),
       message=st.one_of(st.none(), st.text(max_size=40)),
       extra=st.sampled_from(["", "系统繁忙，请稍后再试。", "请使用原商户订单号重试", "余额不足"]))
def test_unclear_answers_never_resend(code: str, message: str | None, extra: str) -> None:
    d = classify(SCHEME, code, ((message or "") + extra) or None)
    assert d.category in QUERY_FIRST_CATEGORIES
    assert d.decision not in RESENDING_DECISIONS
    assert not d.retryable


def test_v2_and_v3_name_checks_agree() -> None:
    assert classify(SCHEME, "NAME_MISMATCH", None).category == classify(SCHEME, "NAME_NOT_CORRECT", None).category
    assert classify(SCHEME, "SIGNERROR", None).category == classify(SCHEME, "SIGN_ERROR", None).category


def test_codes_are_case_and_whitespace_insensitive() -> None:
    assert classify(SCHEME, " systemerror ", None).rule == "wechat_pay.SYSTEMERROR"


@pytest.mark.parametrize("code", NARRATIVE)
def test_narrative_statuses_without_text_are_unknown(code: str) -> None:
    for message in (None, "银行退票"):
        d = classify(SCHEME, code, message)
        assert d.category.value == "unknown"
        assert d.needs_review
        assert d.confidence < 0.5


@pytest.mark.parametrize(("code", "message", "category"), [
    ("BANK_FAIL", "收款人户名不符", "card_info_error"),       # 退票 decided by the attached reason
    ("BANK_FAIL", "账户已销户", "card_status_abnormal"),
    ("FAILED", "银行卡号无效", "card_info_error"),
    ("FAILED", "超出单日收款限额", "limit_exceeded"),
])
def test_narrative_statuses_with_text_follow_the_text(code: str, message: str, category: str) -> None:
    d = classify(SCHEME, code, message)
    assert d.category.value == category
    assert d.needs_review is False
