"""UnionPay 全渠道 (ACP/UPOP, 代付) respCode knowledge base: hand-written expectations from
shared/reference/failure-codes.md §5.3, checked through ``classify``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import QUERY_FIRST_CATEGORIES, RESENDING_DECISIONS

SCHEME = "unionpay_acp"

TABLE = [
    ("02", "system_or_network_fault", "retry", "bank"),
    ("03", "result_unknown", "inquire", "platform"),       # 交易通讯超时，请发起查询交易
    ("04", "result_unknown", "inquire", "platform"),       # 交易状态未明
    ("05", "result_unknown", "inquire", "platform"),       # 交易已受理
    ("10", "transaction_data_error", "review", "platform"),
    ("11", "verification_failed", "review", "platform"),   # 验证签名失败: configuration, not a terminal sign-in
    ("12", "duplicate", "inquire", "platform"),
    ("33", "limit_exceeded", "split", "bank"),
    ("35", "transaction_data_error", "review", "platform"),
    ("38", "risk_or_compliance_block", "hold", "platform"),
    ("39", "system_or_network_fault", "retry", "bank"),
    ("45", "duplicate", "inquire", "platform"),
    ("61", "card_info_error", "hold", "merchant"),
    ("62", "card_info_error", "hold", "merchant"),
    ("63", "card_status_abnormal", "hold", "merchant"),
    ("64", "insufficient_funds", "retry", "platform"),
    ("66", "card_info_error", "hold", "merchant"),
    ("69", "result_unknown", "inquire", "platform"),
    ("73", "card_info_error", "hold", "merchant"),
    ("74", "result_unknown", "inquire", "platform"),
    ("75", "result_unknown", "inquire", "platform"),
    ("78", "card_status_abnormal", "hold", "merchant"),
    ("A6", "result_unknown", "inquire", "platform"),
    ("PR05", "result_unknown", "inquire", "platform"),
]

ALL_CODES = sorted("""
01 02 03 04 05 10 11 12 13 14 30 31 32 33 34 35 36 37 38 39 40 41 42 45 60 61 62 63 64 65 66 67 68 69
70 71 72 73 74 75 76 77 78 79 80 98 99 A6 PR05 PR99
""".split())
SUCCESS = ["00"]
QUERY_FIRST = ["03", "04", "05", "12", "41", "42", "45", "69", "70", "74", "75", "98", "A6", "PR05"]
NARRATIVE = ["01", "30", "60", "99"]


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


def test_success_is_left_out() -> None:
    assert "00" not in knowledge_base().codes[SCHEME]
    assert classify(SCHEME, "00", None).category.value == "unknown"


@given(code=st.sampled_from(QUERY_FIRST), message=st.one_of(st.none(), st.text(max_size=40)),
       extra=st.sampled_from(["", "请稍后再试", "系统繁忙", "交易失败"]))
def test_not_final_codes_never_resend(code: str, message: str | None, extra: str) -> None:
    d = classify(SCHEME, code, ((message or "") + extra) or None)
    assert d.category in QUERY_FIRST_CATEGORIES
    assert d.decision not in RESENDING_DECISIONS
    assert not d.retryable


@pytest.mark.parametrize("code", NARRATIVE)
def test_narrative_codes_without_text_are_unknown(code: str) -> None:
    for message in (None, "交易失败。详情请咨询95516"):
        d = classify(SCHEME, code, message)
        assert d.category.value == "unknown"
        assert d.needs_review
        assert d.confidence < 0.5


@pytest.mark.parametrize(("code", "message", "category"), [
    ("01", "交易失败：账户已冻结", "card_status_abnormal"),
    ("60", "交易失败，持卡人余额不足", "insufficient_funds"),
    ("99", "户名不符", "card_info_error"),
    ("30", "交易状态未明，请查询", "result_unknown"),
])
def test_narrative_codes_with_text_follow_the_text(code: str, message: str, category: str) -> None:
    d = classify(SCHEME, code, message)
    assert d.category.value == category
    assert d.needs_review is False


def test_codes_are_case_and_whitespace_insensitive() -> None:
    assert classify(SCHEME, " pr05 ", None).rule == "unionpay_acp.PR05"
    assert classify(SCHEME, "a6", None).rule == "unionpay_acp.A6"
