"""ISO 20022 ExternalReturnReason1Code (pacs.004 / camt.054) knowledge base: hand-written expectations
from shared/reference/failure-codes.md §3.2, checked through ``classify``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import QUERY_FIRST_CATEGORIES, RESENDING_DECISIONS

SCHEME = "iso20022_return"

TABLE = [
    ("AC01", "card_info_error", "hold", "merchant"),
    ("AC03", "card_info_error", "hold", "merchant"),
    ("AC04", "card_status_abnormal", "hold", "merchant"),
    ("AC06", "card_status_abnormal", "hold", "merchant"),
    ("AC14", "transaction_data_error", "review", "platform"),     # return: InvalidAgent
    ("AC16", "card_status_abnormal", "hold", "merchant"),         # return: AccountInSequestration
    ("AC17", "card_status_abnormal", "hold", "merchant"),
    ("AM04", "insufficient_funds", "retry", "platform"),
    ("AM05", "duplicate", "inquire", "platform"),
    ("ARDT", "duplicate", "inquire", "platform"),
    ("BE01", "card_info_error", "hold", "merchant"),
    ("BE08", "system_or_network_fault", "retry", "bank"),         # return: BankError
    ("DS28", "system_or_network_fault", "retry", "bank"),
    ("DUPL", "duplicate", "inquire", "platform"),
    ("FR01", "risk_or_compliance_block", "hold", "platform"),
    ("MD07", "card_status_abnormal", "hold", "merchant"),
    ("NOOR", "result_unknown", "inquire", "platform"),
    ("PINL", "risk_or_compliance_block", "hold", "platform"),     # liability shift (fraud), not "PIN limit"
    ("RC07", "card_info_error", "hold", "merchant"),
    ("RR04", "risk_or_compliance_block", "hold", "platform"),
    ("SP01", "card_status_abnormal", "hold", "merchant"),
    ("UPAY", "risk_or_compliance_block", "hold", "platform"),
]

# Every code of §3.2, typed by hand (RR01–RR04, MS02 / MS03, CNOR / DNOR, SP01 / SP02 expanded).
ALL_CODES = sorted("""
AC01 AC02 AC03 AC04 AC06 AC07 AC13 AC14 AC15 AC16 AC17 AG01 AG02 AM01 AM02 AM03 AM04 AM05 AM06 AM07 AM09
ARDT BE01 BE04 BE05 BE06 BE08 CNOR DNOR CURR CUST DS28 DUPL ED05 FF05 FOCR FR01 MD07 MS02 MS03 NARR NOAS
NOCM NOOR PINL RC01 RC07 RR01 RR02 RR03 RR04 SP01 SP02 TM01 UPAY
""".split())

# Status-only codes (§3.2 note): not return reasons.
STATUS_ONLY = ["AB05", "AB06", "AB08", "AC05", "AM13", "AM14", "AM21", "AM23", "DU01", "FF01", "RR05"]
NARRATIVE = ["NARR", "MS02", "MS03"]


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


@pytest.mark.parametrize("code", STATUS_ONLY)
def test_status_only_codes_are_not_return_reasons(code: str) -> None:
    assert code not in knowledge_base().codes[SCHEME]
    assert code in knowledge_base().codes["iso20022"]
    assert classify(SCHEME, code, None).category.value == "unknown"


@given(code=st.sampled_from(["AM05", "ARDT", "DUPL", "NOOR"]),
       message=st.one_of(st.none(), st.text(max_size=40)))
def test_duplicate_returns_never_resend(code: str, message: str | None) -> None:
    d = classify(SCHEME, code, message)
    assert d.category in QUERY_FIRST_CATEGORIES
    assert d.decision not in RESENDING_DECISIONS


def test_pinl_is_not_a_limit() -> None:
    d = classify(SCHEME, "PINL", None)
    assert d.category.value != "limit_exceeded"
    assert not d.retryable


@pytest.mark.parametrize("code", NARRATIVE)
def test_narrative_codes_without_text_are_unknown(code: str) -> None:
    for message in (None, "   "):
        d = classify(SCHEME, code, message)
        assert d.category.value == "unknown"
        assert d.needs_review
        assert d.confidence < 0.5


@pytest.mark.parametrize(("code", "message", "category"), [
    ("NARR", "Beneficiary account closed", "card_status_abnormal"),
    ("MS03", "收款人户名不符", "card_info_error"),
    ("NARR", "账号不存在", "card_info_error"),
])
def test_narrative_codes_with_text_follow_the_text(code: str, message: str, category: str) -> None:
    d = classify(SCHEME, code, message)
    assert d.category.value == category
    assert d.needs_review is False
