"""ISO 20022 ExternalStatusReason1Code (pacs.002 / pain.002) knowledge base: hand-written expectations
from shared/reference/failure-codes.md §3.1, checked through ``classify``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import QUERY_FIRST_CATEGORIES, RESENDING_DECISIONS

SCHEME = "iso20022"

# (code, category, decision, owner); settleguard is the debtor, the merchant's account the creditor.
TABLE = [
    ("AB05", "result_unknown", "inquire", "platform"),    # §7 gotcha 6: instant-payment timeouts query first
    ("AB06", "result_unknown", "inquire", "platform"),
    ("AB08", "system_or_network_fault", "retry", "bank"),
    ("AC01", "card_info_error", "hold", "merchant"),
    ("AC03", "card_info_error", "hold", "merchant"),
    ("AC04", "card_status_abnormal", "hold", "merchant"),
    ("AC05", "transaction_data_error", "review", "platform"),   # the debtor (our) account
    ("AC06", "card_status_abnormal", "hold", "merchant"),
    ("AC07", "card_status_abnormal", "hold", "merchant"),
    ("AC14", "card_info_error", "hold", "merchant"),      # status: InvalidCreditorAccountType
    ("AC16", "card_info_error", "hold", "merchant"),      # status: CardNumberInvalid
    ("AG01", "card_status_abnormal", "hold", "merchant"),
    ("AM02", "limit_exceeded", "split", "bank"),
    ("AM04", "insufficient_funds", "retry", "platform"),
    ("AM05", "duplicate", "inquire", "platform"),
    ("AM07", "risk_or_compliance_block", "hold", "platform"),
    ("AM13", "limit_exceeded", "split", "bank"),
    ("BE01", "card_info_error", "hold", "merchant"),
    ("BE06", "card_info_error", "hold", "merchant"),
    ("BE08", "transaction_data_error", "review", "platform"),   # status: MissingDebtorName
    ("CNOR", "card_info_error", "hold", "merchant"),
    ("DU03", "duplicate", "inquire", "platform"),
    ("DUPL", "duplicate", "inquire", "platform"),
    ("ED06", "system_or_network_fault", "retry", "bank"),
    ("FF01", "transaction_data_error", "review", "platform"),
    ("FF10", "system_or_network_fault", "retry", "bank"),
    ("FR01", "risk_or_compliance_block", "hold", "platform"),
    ("RC01", "card_info_error", "hold", "merchant"),
    ("RF01", "duplicate", "inquire", "platform"),
    ("RR04", "risk_or_compliance_block", "hold", "platform"),
    ("SL12", "risk_or_compliance_block", "hold", "platform"),
    ("TM01", "system_or_network_fault", "retry", "bank"),
]


def _range(prefix: str, first: int, last: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(first, last + 1)]


# Every code of §3.1, typed by hand (ranges as the reference writes them: AB01–AB11, DU01–DU05 ...).
ALL_CODES = sorted({
    *_range("AB", 1, 11), *_range("AC", 1, 7), "AC13", "AC14", "AC15", "AC16",
    "AG01", "AG02", "AG03", "AG07", "AG10", "AG11", "AGNT",
    "AM01", "AM02", "AM03", "AM04", "AM05", "AM06", "AM07", "AM09", "AM10", "AM12", "AM13", "AM14", "AM21", "AM23",
    "BE01", "BE04", "BE05", "BE06", "BE07", "BE08", "BE16", "BE17", "BE21", "BE22", "BE23",
    "CNOR", "DNOR", "DT01", *_range("DU", 1, 5), "DUPL", "ED05", "ED06", *_range("FF", 1, 10),
    "FR01", "FRAD", "MS02", "MS03", "NARR", "NOCM", *_range("RC", 1, 11), "RF01", *_range("RR", 1, 12),
    *_range("SL", 11, 16), "TECH", "TM01", "UPAY",
})

QUERY_FIRST = ["AB01", "AB03", "AB05", "AB06", "AB11", "AM05", "DU01", "DU02", "DU03", "DU04", "DU05", "DUPL", "RF01"]
NARRATIVE = ["NARR", "MS02", "MS03"]


@pytest.mark.parametrize(("code", "category", "decision", "owner"), TABLE)
def test_table(code: str, category: str, decision: str, owner: str) -> None:
    d = classify(SCHEME, code, None)
    assert (d.category.value, d.decision.value, d.owner.value) == (category, decision, owner)
    assert d.rule == f"{SCHEME}.{code}"
    assert d.needs_review is (decision == "review")   # the flag follows the decision
    assert d.confidence >= 0.9
    assert d.guidance("zh")
    assert len(d.guidance("zh")) == len(d.guidance("en"))


def test_every_reference_code_is_in_the_kb_and_nothing_else() -> None:
    codes = set(knowledge_base().codes[SCHEME])
    assert set(ALL_CODES) <= codes, sorted(set(ALL_CODES) - codes)
    assert codes == set(ALL_CODES), f"rules without a listed code: {sorted(codes - set(ALL_CODES))}"


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_code_resolves_to_its_own_rule(code: str) -> None:
    assert classify(SCHEME, code, None).rule == f"{SCHEME}.{code}"


@pytest.mark.parametrize("code", QUERY_FIRST)
def test_timeouts_and_duplicates_query_first(code: str) -> None:
    d = classify(SCHEME, code, None)
    assert d.category in QUERY_FIRST_CATEGORIES
    assert d.decision.value == "inquire"
    assert not d.retryable


@given(code=st.sampled_from(QUERY_FIRST), message=st.one_of(st.none(), st.text(max_size=40)),
       extra=st.sampled_from(["", " please retry", " technical problem", " account closed"]))
def test_timeouts_never_resend_whatever_the_text(code: str, message: str | None, extra: str) -> None:
    d = classify(SCHEME, code, ((message or "") + extra) or None)
    assert d.decision not in RESENDING_DECISIONS
    assert d.category in QUERY_FIRST_CATEGORIES


@pytest.mark.parametrize(("code", "status_category", "return_category"), [
    ("AC14", "card_info_error", "transaction_data_error"),        # InvalidCreditorAccountType vs InvalidAgent
    ("AC16", "card_info_error", "card_status_abnormal"),          # CardNumberInvalid vs AccountInSequestration
    ("BE08", "transaction_data_error", "system_or_network_fault"), # MissingDebtorName vs BankError
])
def test_same_code_means_different_things_in_status_and_return(code: str, status_category: str,
                                                              return_category: str) -> None:
    status = classify("iso20022", code, None)
    ret = classify("iso20022_return", code, None)
    assert status.category.value == status_category
    assert status.rule == f"iso20022.{code}"
    assert ret.category.value == return_category
    assert ret.rule == f"iso20022_return.{code}"
    # without a scheme the two sets disagree: the classifier must not guess
    assert classify(None, code, None).category.value == "unknown"


def test_codes_are_case_and_whitespace_insensitive() -> None:
    for raw in ("ac04", " AC04 ", "Ac 04"):
        assert classify(SCHEME, raw, None).rule == "iso20022.AC04"


@pytest.mark.parametrize("code", NARRATIVE)
def test_narrative_codes_without_text_are_unknown(code: str) -> None:
    for message in (None, "", "Reason: see below"):
        d = classify(SCHEME, code, message)
        assert d.category.value == "unknown"
        assert d.needs_review
        assert d.confidence < 0.5
        assert d.rule == f"{SCHEME}.{code}"


@pytest.mark.parametrize(("code", "message", "category"), [
    ("NARR", "Account closed", "card_status_abnormal"),
    ("NARR", "账户已冻结", "card_status_abnormal"),
    ("MS03", "户名不符", "card_info_error"),
    ("MS03", "Insufficient funds", "insufficient_funds"),
    ("NARR", "Duplicate payment", "duplicate"),
])
def test_narrative_codes_with_text_follow_the_text(code: str, message: str, category: str) -> None:
    d = classify(SCHEME, code, message)
    assert d.category.value == category
    assert d.needs_review is False
