"""ISO 8583 field 39 (CUP) knowledge base: hand-written expectations from
shared/reference/failure-codes.md §1 and the taxonomy, checked through ``classify``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import QUERY_FIRST_CATEGORIES, RESENDING_DECISIONS

SCHEME = "iso8583"

# (code, category, decision, owner) — the important codes, decided from the reference by hand.
TABLE = [
    ("03", "risk_or_compliance_block", "hold", "platform"),
    ("04", "card_status_abnormal", "hold", "merchant"),
    ("05", "card_info_error", "hold", "merchant"),        # CUP 05 = 身份认证失败, not "do not honor"
    ("09", "result_unknown", "inquire", "platform"),
    ("12", "transaction_data_error", "review", "platform"),
    ("13", "transaction_data_error", "review", "platform"),
    ("15", "card_info_error", "hold", "merchant"),
    ("21", "card_status_abnormal", "hold", "merchant"),
    ("25", "transaction_data_error", "review", "platform"),
    ("30", "transaction_data_error", "review", "platform"),
    ("33", "card_info_error", "hold", "merchant"),
    ("34", "risk_or_compliance_block", "hold", "platform"),
    ("38", "verification_failed", "hold", "merchant"),
    ("41", "card_status_abnormal", "hold", "merchant"),
    ("43", "card_status_abnormal", "hold", "merchant"),
    ("51", "insufficient_funds", "retry", "platform"),
    ("54", "card_info_error", "hold", "merchant"),
    ("55", "verification_failed", "hold", "merchant"),
    ("59", "risk_or_compliance_block", "hold", "platform"),
    ("61", "limit_exceeded", "split", "merchant"),
    ("62", "card_status_abnormal", "hold", "merchant"),
    ("64", "transaction_data_error", "review", "platform"),
    ("65", "limit_exceeded", "retry", "merchant"),
    ("68", "result_unknown", "inquire", "platform"),
    ("77", "verification_failed", "resign_in", "terminal"),
    ("90", "system_or_network_fault", "retry", "bank"),
    ("91", "system_or_network_fault", "retry", "bank"),
    ("92", "system_or_network_fault", "retry", "bank"),
    ("93", "risk_or_compliance_block", "hold", "platform"),
    ("94", "duplicate", "inquire", "platform"),
    ("96", "system_or_network_fault", "retry", "bank"),
    ("97", "verification_failed", "review", "terminal"),
    ("98", "result_unknown", "inquire", "platform"),
    ("99", "verification_failed", "resign_in", "terminal"),
    ("A0", "verification_failed", "resign_in", "terminal"),
    ("A2", "result_unknown", "inquire", "platform"),
    ("A3", "card_info_error", "hold", "merchant"),
    ("A4", "result_unknown", "inquire", "platform"),
    ("A7", "verification_failed", "resign_in", "terminal"),
    ("C1", "verification_failed", "resign_in", "platform"),
    ("D4", "duplicate", "inquire", "platform"),
    ("F2", "duplicate", "inquire", "platform"),
    ("F5", "result_unknown", "inquire", "platform"),
    ("N1", "limit_exceeded", "hold", "merchant"),
    ("Z1", "result_unknown", "inquire", "platform"),
]

# Every code of the reference, typed by hand: §1.1 (CUP table), §1.2 (generic ISO meanings where CUP has
# none) and §1.3 (POS-only and vendor codes). Success codes are listed apart and must stay OUT of the KB.
CUP_TABLE = ("01 03 04 05 10 12 13 14 15 21 22 25 30 34 38 40 41 43 45 51 54 55 57 58 59 61 62 64 65 68 75 "
             "90 91 92 94 96 97 98 99 A0 A1 A2 A3 A4 A5 A6 A7 A8 B1 C1 "
             "D1 D2 D3 D4 D5 D6 D7 D8 D9 DA DB DC F1 F2 F3 F4 F5 N1 P1 Z1 Z3").split()
GENERIC_ONLY = "02 06 07 09 17 19 20 23 31 33 35 36 37 39 42 44 52 53 56 60 63 66 67 93 95".split()
POS_ONLY = "77 78 79 84 87 88 E4 E5 E6 E7 E8 Z0".split()
SUCCESS = "00 08 11 16 Y1 Y3".split()
ALL_CODES = sorted(set(CUP_TABLE) | set(GENERIC_ONLY) | set(POS_ONLY))

QUERY_FIRST = ["09", "10", "20", "68", "94", "98", "A2", "A4", "A5", "A6", "D4", "F2", "F5", "Z0", "Z1"]
NARRATIVE = ["01", "02", "14", "57"]


@pytest.mark.parametrize(("code", "category", "decision", "owner"), TABLE)
def test_table(code: str, category: str, decision: str, owner: str) -> None:
    d = classify(SCHEME, code, None)
    assert (d.category.value, d.decision.value, d.owner.value) == (category, decision, owner)
    assert d.rule == f"{SCHEME}.{code}"
    assert d.needs_review is (decision == "review")   # the flag follows the decision
    assert d.confidence >= 0.9
    assert d.guidance("zh")
    assert d.guidance("en")
    assert len(d.guidance("zh")) == len(d.guidance("en"))
    assert d.evidence("zh")


def test_every_reference_code_is_in_the_kb_and_nothing_else() -> None:
    codes = set(knowledge_base().codes[SCHEME])
    assert set(ALL_CODES) <= codes, sorted(set(ALL_CODES) - codes)
    assert codes == set(ALL_CODES), f"rules without a listed code: {sorted(codes - set(ALL_CODES))}"


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_code_resolves_to_its_own_rule(code: str) -> None:
    assert classify(SCHEME, code, None).rule == f"{SCHEME}.{code}"


@pytest.mark.parametrize("code", SUCCESS)
def test_success_codes_are_left_out(code: str) -> None:
    assert code not in knowledge_base().codes[SCHEME]
    d = classify(SCHEME, code, None)
    assert d.category.value == "unknown"
    assert d.needs_review
    assert d.confidence < 0.5


@pytest.mark.parametrize("code", QUERY_FIRST)
def test_unclear_and_duplicate_codes_query_first(code: str) -> None:
    d = classify(SCHEME, code, None)
    assert d.category in QUERY_FIRST_CATEGORIES
    assert d.decision.value == "inquire"
    assert d.retryable is False


@given(code=st.sampled_from(QUERY_FIRST), message=st.one_of(st.none(), st.text(max_size=40)),
       extra=st.sampled_from(["", "请重试", "余额不足", "please retry", "系统繁忙，请稍后重试", "无效卡号"]))
def test_timeouts_never_resend_whatever_the_text(code: str, message: str | None, extra: str) -> None:
    d = classify(SCHEME, code, (message or "") + extra or None)
    assert d.decision not in RESENDING_DECISIONS
    assert d.category in QUERY_FIRST_CATEGORIES


def test_issuer_sign_off_is_an_outage_not_a_terminal_sign_in() -> None:
    # §7 gotcha 3: 91 (发卡方签退/未签到) is the issuer's outage; 77/99/A0/C1 are sign-in problems.
    assert classify(SCHEME, "91", "发卡方状态不正常，请稍后重试").category.value == "system_or_network_fault"
    for code in ("77", "99", "A0", "A7"):
        assert classify(SCHEME, code, None).decision.value == "resign_in"


def test_codes_are_case_and_whitespace_insensitive() -> None:
    for raw in (" a0 ", "a0", "A 0", "\tA0\n"):
        assert classify(SCHEME, raw, None).rule == "iso8583.A0"
    assert classify("ISO8583", "51", None).rule == "iso8583.51"


@pytest.mark.parametrize("code", NARRATIVE)
def test_narrative_codes_without_text_are_unknown(code: str) -> None:
    for message in (None, "", "   ", "交易失败"):
        d = classify(SCHEME, code, message)
        assert d.category.value == "unknown"
        assert d.needs_review
        assert d.confidence < 0.5
        assert d.decision.value == "review"
        assert d.rule == f"{SCHEME}.{code}"


@pytest.mark.parametrize(("code", "message", "category"), [
    ("14", "帐户已作废或消户", "card_status_abnormal"),          # §7 gotcha 2: 14 can mean a closed account
    ("14", "卡号校验位校验不正确", "card_info_error"),
    ("14", "无效卡号（无此账号）", "card_info_error"),
    ("57", "有套现嫌疑", "risk_or_compliance_block"),             # §7 gotcha 5
    ("57", "卡号或证件号在黑名单中", "risk_or_compliance_block"),
    ("57", "卡种不能做此交易", "card_status_abnormal"),          # the restriction sub-case
    ("57", "卡种不能做此交易，有套现嫌疑", "risk_or_compliance_block"),  # risk words win over the restriction
    ("57", "不允許此卡交易", "card_status_abnormal"),            # traditional characters
    ("14", "賬戶已作廢", "card_status_abnormal"),
    ("01", "可用余额不足", "insufficient_funds"),
    ("01", "此卡已挂失", "card_status_abnormal"),
])
def test_narrative_codes_with_text_follow_the_text(code: str, message: str, category: str) -> None:
    d = classify(SCHEME, code, message)
    assert d.category.value == category
    assert d.needs_review is False


def test_specific_code_wins_over_generic_text() -> None:
    d = classify(SCHEME, "41", "交易失败")
    assert d.category.value == "card_status_abnormal"
    assert d.rule == "iso8583.41"
