"""NACHA ACH return codes R01–R33 knowledge base: hand-written expectations from
shared/reference/failure-codes.md §4, checked through ``classify``."""

from __future__ import annotations

import pytest

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import RESENDING_DECISIONS

SCHEME = "nacha"

TABLE = [
    ("R01", "insufficient_funds", "retry", "merchant"),      # reinitiable (max twice, 180 days)
    ("R02", "card_status_abnormal", "hold", "merchant"),
    ("R03", "card_info_error", "hold", "merchant"),
    ("R04", "card_info_error", "hold", "merchant"),
    ("R05", "risk_or_compliance_block", "hold", "platform"),
    ("R07", "risk_or_compliance_block", "hold", "platform"),
    ("R08", "card_status_abnormal", "hold", "merchant"),
    ("R09", "insufficient_funds", "retry", "merchant"),
    ("R10", "risk_or_compliance_block", "hold", "platform"),
    ("R11", "transaction_data_error", "review", "platform"),
    ("R13", "card_info_error", "hold", "merchant"),
    ("R14", "card_status_abnormal", "hold", "merchant"),
    ("R15", "card_status_abnormal", "hold", "merchant"),
    ("R16", "risk_or_compliance_block", "hold", "platform"),  # frozen OR OFAC: compliance first
    ("R19", "transaction_data_error", "review", "platform"),
    ("R20", "card_info_error", "hold", "merchant"),
    ("R24", "duplicate", "inquire", "platform"),
    ("R28", "card_info_error", "hold", "merchant"),
    ("R29", "risk_or_compliance_block", "hold", "platform"),
    ("R32", "system_or_network_fault", "retry", "bank"),
]

ALL_CODES = [f"R{i:02d}" for i in range(1, 34)]

# Returns that need a new authorisation: never retried automatically.
AUTHORISATION = ["R05", "R07", "R10", "R29"]
# Only R01 and R09 may be reinitiated without fixing anything (Nacha Rules §2.12.4).
REINITIABLE = {"R01", "R09"}


@pytest.mark.parametrize(("code", "category", "decision", "owner"), TABLE)
def test_table(code: str, category: str, decision: str, owner: str) -> None:
    d = classify(SCHEME, code, None)
    assert (d.category.value, d.decision.value, d.owner.value) == (category, decision, owner)
    assert d.rule == f"{SCHEME}.{code}"
    assert d.needs_review is (decision == "review")   # the flag follows the decision
    assert d.confidence >= 0.9


def test_every_reference_code_is_in_the_kb_and_nothing_else() -> None:
    assert set(knowledge_base().codes[SCHEME]) == set(ALL_CODES)


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_code_resolves_to_its_own_rule(code: str) -> None:
    d = classify(SCHEME, code, None)
    assert d.rule == f"{SCHEME}.{code}"
    assert d.meaning("zh")
    assert d.meaning("en")


@pytest.mark.parametrize("code", AUTHORISATION)
def test_unauthorised_returns_are_never_retried(code: str) -> None:
    d = classify(SCHEME, code, None)
    assert not d.retryable
    assert d.decision.value == "hold"


def test_only_r01_and_r09_are_retried_without_a_fix() -> None:
    retried = {c for c in ALL_CODES if classify(SCHEME, c, None).decision.value == "retry"
               and classify(SCHEME, c, None).category.value != "system_or_network_fault"}
    assert retried == REINITIABLE
    assert any("180" in g for g in classify(SCHEME, "R01", None).guidance("zh"))


def test_r24_duplicate_never_resends_even_with_retry_text() -> None:
    d = classify(SCHEME, "R24", "please retry later")
    assert d.category.value == "duplicate"
    assert d.decision.value == "inquire"
    assert not d.retryable


def test_codes_are_case_and_whitespace_insensitive() -> None:
    for raw in ("r03", " R03", "R 03"):
        assert classify(SCHEME, raw, None).rule == "nacha.R03"


def test_r_codes_found_without_a_scheme() -> None:
    # R02 exists only in the NACHA set: a scheme-less lookup still finds it
    d = classify(None, "R02", None)
    assert d.rule == "nacha.R02"
    assert d.category.value == "card_status_abnormal"


@pytest.mark.parametrize("message", [None, "Entry returned per OFAC instruction", "Account frozen"])
def test_r16_is_never_treated_as_a_plain_card_problem(message: str | None) -> None:
    # R16 mixes a frozen account with an OFAC / legal order: a sanctioned payee must not simply be asked
    # to bind another card, so compliance looks first and nothing is retried.
    d = classify(SCHEME, "R16", message)
    assert d.category.value == "risk_or_compliance_block"
    assert not d.retryable
    assert d.decision not in RESENDING_DECISIONS
