"""Alipay fund-transfer (单笔无密转账到银行卡 / 支付宝账户) knowledge base: hand-written expectations from
shared/reference/failure-codes.md §5.4, checked through ``classify``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import QUERY_FIRST_CATEGORIES, RESENDING_DECISIONS

SCHEME = "alipay"

TABLE = [
    ("INVALID_PARAMETER", "transaction_data_error", "review", "platform"),
    ("SYSTEM_ERROR", "result_unknown", "inquire", "platform"),        # query with the same out_biz_no
    ("EXCEED_LIMIT_SM_AMOUNT", "limit_exceeded", "split", "bank"),
    ("EXCEED_LIMIT_DM_AMOUNT", "limit_exceeded", "retry", "bank"),   # daily: next window, splitting won't help
    ("EXCEED_LIMIT_PERSONAL_SM_AMOUNT", "limit_exceeded", "split", "bank"),
    ("EXCEED_LIMIT_DC_RECEIVED", "limit_exceeded", "retry", "merchant"),
    ("PAYER_BALANCE_NOT_ENOUGH", "insufficient_funds", "retry", "platform"),
    ("BALANCE_IS_NOT_ENOUGH", "insufficient_funds", "retry", "platform"),
    ("CARD_BIN_ERROR", "card_info_error", "hold", "merchant"),
    ("PAYEE_CARD_INFO_ERROR", "card_info_error", "hold", "merchant"),
    ("INVALID_CARDNO", "card_info_error", "hold", "merchant"),
    ("PAYEE_NOT_EXIST", "card_info_error", "hold", "merchant"),
    ("PAYEE_USER_INFO_ERROR", "card_info_error", "hold", "merchant"),
    ("PAYEE_ACCOUNT_STATUS_ERROR", "card_status_abnormal", "hold", "merchant"),
    ("RELEASE_USER_FORBBIDEN_RECIEVE", "card_status_abnormal", "hold", "merchant"),
    ("PAYEE_NOT_RELNAME_CERTIFY", "risk_or_compliance_block", "hold", "merchant"),
    ("PERMIT_CHECK_PERM_IDENTITY_THEFT", "risk_or_compliance_block", "hold", "platform"),
    ("SECURITY_CHECK_FAILED", "risk_or_compliance_block", "hold", "platform"),
    ("REMARK_HAS_SENSITIVE_WORD", "risk_or_compliance_block", "hold", "platform"),
    ("PAYMENT_INFO_INCONSISTENCY", "duplicate", "inquire", "platform"),
    ("PAYER_PAYEE_CANNOT_SAME", "transaction_data_error", "review", "platform"),
    ("MID_ACCOUNT_CARD_INFO_ERROR", "card_info_error", "hold", "merchant"),
    ("DEALING", "result_unknown", "inquire", "platform"),
]

# Every error code of §5.4, typed by hand, plus the query-response sub-order code and statuses it shows.
ALL_CODES = sorted("""
INVALID_PARAMETER SYSTEM_ERROR EXCEED_LIMIT_SM_AMOUNT EXCEED_LIMIT_DM_AMOUNT EXCEED_LIMIT_MM_AMOUNT
EXCEED_LIMIT_DM_MAX_AMOUNT EXCEED_LIMIT_PERSONAL_SM_AMOUNT EXCEED_LIMIT_ENT_SM_AMOUNT EXCEED_LIMIT_SM_MIN_AMOUNT
EXCEED_LIMIT_UNRN_DM_AMOUNT EXCEED_LIMIT_DC_RECEIVED PAYER_BALANCE_NOT_ENOUGH BALANCE_IS_NOT_ENOUGH
PAYMENT_MONEY_NOT_ENOUGH CARD_BIN_ERROR PAYEE_CARD_INFO_ERROR INVALID_CARDNO PAYEE_NOT_EXIST PAYEE_ACCOUNT_NOT_EXSIT
PAYEE_USER_INFO_ERROR PAYEE_ACC_OCUPIED PAYEE_ACCOUNT_STATUS_ERROR PAYEE_USERINFO_STATUS_ERROR
RELEASE_USER_FORBBIDEN_RECIEVE PAYER_STATUS_ERROR PAYCARD_UNABLE_PAYMENT INST_PAY_UNABLE PERM_AML_NOT_REALNAME_REV
PERMIT_NON_BANK_LIMIT_PAYEE PAYEE_NOT_RELNAME_CERTIFY PERMIT_CHECK_PERM_IDENTITY_THEFT SECURITY_CHECK_FAILED
SYNC_SECURITY_CHECK_FAILED MEMO_REQUIRED_IN_TRANSFER_ERROR REMARK_HAS_SENSITIVE_WORD PAYMENT_INFO_INCONSISTENCY
PAYER_PAYEE_CANNOT_SAME PRODUCT_NOT_SIGN PAYMENT_FAIL
MID_ACCOUNT_CARD_INFO_ERROR FAIL REFUND
""".split())
# Known to the KB beyond the reference list: the query status 处理中.
EXTRA = ["DEALING"]
NARRATIVE = ["PAYMENT_FAIL", "FAIL", "REFUND"]
RISK = ["PERM_AML_NOT_REALNAME_REV", "PERMIT_NON_BANK_LIMIT_PAYEE", "PAYEE_NOT_RELNAME_CERTIFY",
        "PERMIT_CHECK_PERM_IDENTITY_THEFT", "SECURITY_CHECK_FAILED", "SYNC_SECURITY_CHECK_FAILED"]


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
    assert codes == set(ALL_CODES) | set(EXTRA), sorted(codes - set(ALL_CODES) - set(EXTRA))


@pytest.mark.parametrize("code", ALL_CODES + EXTRA)
def test_every_code_resolves_to_its_own_rule(code: str) -> None:
    assert classify(SCHEME, code, None).rule == f"{SCHEME}.{code}"


@pytest.mark.parametrize("code", RISK)
def test_risk_and_real_name_blocks_are_never_retried(code: str) -> None:
    d = classify(SCHEME, code, None)
    assert d.category.value == "risk_or_compliance_block"
    assert not d.retryable
    assert d.decision not in RESENDING_DECISIONS


def test_real_name_blocks_ask_for_real_name() -> None:
    for code in ("PAYEE_NOT_RELNAME_CERTIFY", "EXCEED_LIMIT_UNRN_DM_AMOUNT"):
        assert any("实名" in g for g in classify(SCHEME, code, None).guidance("zh"))


@given(message=st.one_of(st.none(), st.text(max_size=40)),
       extra=st.sampled_from(["", "系统繁忙，请稍后重试", "please retry", "余额不足"]))
def test_system_error_never_resends(message: str | None, extra: str) -> None:
    for code in ("SYSTEM_ERROR", "PAYMENT_INFO_INCONSISTENCY", "DEALING"):
        d = classify(SCHEME, code, ((message or "") + extra) or None)
        assert d.category in QUERY_FIRST_CATEGORIES
        assert d.decision not in RESENDING_DECISIONS


def test_codes_are_case_and_whitespace_insensitive() -> None:
    assert classify(SCHEME, " payee_card_info_error ", None).rule == "alipay.PAYEE_CARD_INFO_ERROR"


@pytest.mark.parametrize("code", NARRATIVE)
def test_narrative_codes_without_text_are_unknown(code: str) -> None:
    for message in (None, "退票", "支付失败"):
        d = classify(SCHEME, code, message)
        assert d.category.value == "unknown"
        assert d.needs_review
        assert d.confidence < 0.5


@pytest.mark.parametrize(("code", "message", "category"), [
    ("REFUND", "收款方银行卡信息有误", "card_info_error"),     # a 退票 is decided by its reason
    ("REFUND", "收款账户已销户", "card_status_abnormal"),
    ("FAIL", "收款方户名不符", "card_info_error"),
    ("PAYMENT_FAIL", "账户已冻结", "card_status_abnormal"),
])
def test_narrative_codes_with_text_follow_the_text(code: str, message: str, category: str) -> None:
    d = classify(SCHEME, code, message)
    assert d.category.value == category
    assert d.needs_review is False
