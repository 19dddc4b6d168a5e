"""The classifier's stages: code (scheme-aware; without a scheme only when every scheme agrees),
embedded codes, narrative codes, free text, unknown; the safety override; the cache; the JSON form."""

from __future__ import annotations

import pytest

from settleguard.diagnosis import UnknownScheme, classifier, classify
from settleguard.diagnosis.classifier import (
    CONF_CODE_AGREED,
    CONF_CODE_SCHEME,
    CONF_EMBEDDED_SCHEME,
    CONF_NARRATIVE,
    CONF_REVIEW_CODE_TEXT,
    CONF_TEXT,
)
from settleguard.diagnosis.model import Category, Decision, Diagnosis, Owner, Stage


def test_a_code_of_the_given_scheme_decides_case_and_whitespace_insensitively() -> None:
    for code in ("3031", " 3031 ", "３０３１"):
        d = classify("allinpay", code, None)
        assert (d.rule, d.category, d.decision, d.owner) == ("allinpay.3031", Category.card_info_error, Decision.hold,
                                                            Owner.merchant)
        assert d.explanation.stage is Stage.code
        assert d.explanation.code_source == "given"
        assert d.confidence == CONF_CODE_SCHEME
        assert not d.needs_review
    assert classify("iso20022", " ac 04", None).rule == "iso20022.AC04"
    assert classify("ISO-20022", "AC04", None).rule == "iso20022.AC04"


def test_the_scheme_says_which_code_set() -> None:
    # the same code names mean different things in status and return reasons
    assert classify("iso20022", "AC16", None).category is Category.card_info_error          # CardNumberInvalid
    assert classify("iso20022_return", "AC16", None).category is Category.card_status_abnormal  # AccountInSequestration


def test_without_a_scheme_a_code_is_used_when_every_scheme_that_knows_it_agrees() -> None:
    d = classify(None, "AC04", None)
    assert d.category is Category.card_status_abnormal
    assert d.confidence == CONF_CODE_AGREED
    assert "iso20022" in d.explanation.notes[0]


def test_without_a_scheme_a_code_the_schemes_disagree_on_is_left_to_the_text() -> None:
    # 14: invalid card number in ISO 8583, batch file format error in UnionPay ACP
    alone = classify(None, "AC16", None)
    assert alone.category is Category.unknown
    assert alone.needs_review
    assert alone.confidence < 0.5
    assert any("different things" in n for n in alone.explanation.notes)
    with_text = classify(None, "AC16", "account in sequestration, frozen by court")
    assert with_text.category is Category.card_status_abnormal
    assert with_text.explanation.stage is Stage.text


def test_an_unknown_code_falls_through_to_the_text() -> None:
    d = classify("allinpay", "9876", "收款人户名不符")
    assert d.rule == "text.card_info"
    assert d.explanation.stage is Stage.text
    assert d.confidence == CONF_TEXT
    assert any("9876" in n for n in d.explanation.notes)


@pytest.mark.parametrize(("scheme", "message", "rule"), [
    ("allinpay", "RESP=3017|MSG=账户已冻结", "allinpay.3017"),
    ("allinpay", "[3031]账号户名不符", "allinpay.3031"),
    ("iso20022", "错误码: AC04", "iso20022.AC04"),
    ("nacha", "R02 Account Closed", "nacha.R02"),
    (None, "RESP=3017|MSG=账户已冻结", "allinpay.3017"),
])
def test_a_code_embedded_in_the_message_is_used(scheme: str | None, message: str, rule: str) -> None:
    d = classify(scheme, None, message)
    assert d.rule == rule
    assert d.explanation.code_source == "embedded"
    if scheme:
        assert d.confidence == CONF_EMBEDDED_SCHEME


def test_a_narrative_code_is_decided_by_its_text() -> None:
    d = classify("allinpay", "3999", "账户已冻结")
    assert d.category is Category.card_status_abnormal
    assert d.explanation.stage is Stage.narrative
    assert d.explanation.code == "3999"
    assert d.confidence == CONF_NARRATIVE
    d = classify("iso20022", "NARR", "Beneficiary name does not match the account")
    assert d.category is Category.card_info_error
    assert d.explanation.stage is Stage.narrative


def test_a_narrative_code_without_usable_text_is_unknown_but_names_the_rule() -> None:
    for message in (None, "", "交易失败", "see details"):
        d = classify("allinpay", "3999", message)
        assert d.category is Category.unknown
        assert d.needs_review
        assert d.confidence < 0.5
        assert d.rule == "allinpay.3999"
        assert d.decision is Decision.review


def test_a_narrative_code_with_an_embedded_specific_code_takes_the_embedded_code() -> None:
    d = classify("allinpay", "3999", "[3017]账户已冻结")
    assert d.rule == "allinpay.3017"


def test_free_text_alone_is_classified() -> None:
    d = classify(None, None, "收款人户名不符")
    assert d.rule == "text.card_info"
    assert d.explanation.pattern is not None
    assert d.explanation.normalized == "收款人户名不符"


@pytest.mark.parametrize(("scheme", "code", "message"), [
    (None, None, None), (None, None, ""), (None, None, "交易失败"), ("nacha", "R99", None), (None, "ZZZZ9", "oops"),
])
def test_unrecognised_input_is_unknown_with_low_confidence_and_review(scheme: str | None, code: str | None,
                                                                      message: str | None) -> None:
    d = classify(scheme, code, message)
    assert d.category is Category.unknown
    assert d.needs_review
    assert d.confidence < 0.5
    assert d.decision is Decision.review
    assert not d.retryable
    assert d.owner is Owner.platform
    assert d.guidance_zh
    assert d.guidance_en
    assert d.explanation.stage is Stage.none


def test_success_codes_are_not_in_the_knowledge_base() -> None:
    for scheme, code in (("iso8583", "00"), ("unionpay_acp", "00"), ("allinpay", "0000"), ("allinpay", "4000")):
        d = classify(scheme, code, None)
        assert d.category is Category.unknown
        assert d.rule is None


def test_a_resending_code_next_to_query_first_text_becomes_query_first() -> None:
    d = classify("allinpay", "3059", "通讯失败，交易状态未明，请查询")
    assert d.category is Category.result_unknown
    assert d.decision is Decision.inquire
    assert d.explanation.code == "3059"
    assert any("query first" in n for n in d.explanation.notes)


def test_a_specific_code_wins_over_generic_text() -> None:
    d = classify("allinpay", "3031", "交易失败")
    assert d.rule == "allinpay.3031"
    assert d.explanation.stage is Stage.code


def test_an_unknown_scheme_is_an_error() -> None:
    with pytest.raises(UnknownScheme, match="visa"):
        classify("visa", "05", None)


def test_answers_are_cached_on_the_raw_triple_and_identical() -> None:
    classify.cache_clear()
    a = classify("allinpay", "3031", None)
    b = classify("allinpay", "3031", None)
    assert a is b
    assert classify.cache_info().hits >= 1
    fresh = classifier().classify("allinpay", "3031", None)
    assert fresh == a
    assert fresh is not a


def test_the_json_form_has_the_contract_fields_in_the_chosen_language() -> None:
    d = classify("allinpay", "3031", None)
    zh, en = d.to_dict("zh"), d.to_dict("en", explain=True)
    assert {"category", "retryable", "decision", "owner", "confidence", "needs_review", "rule", "guidance"} <= set(zh)
    assert zh["guidance"] == list(d.guidance_zh)
    assert en["guidance"] == list(d.guidance_en)
    assert en["explanation"]["stage"] == "code"
    assert "explanation" not in zh
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in g) for g in zh["guidance"])


# -- issue 18 item 3: the fields of a diagnosis never contradict each other --------------------------------
def test_the_review_flag_follows_the_decision_for_every_code() -> None:
    # was: needs_review only for `unknown`, so 交易信息错误 showed 人工复核 review beside needs review: 否 no
    from settleguard.diagnosis import knowledge_base

    for rule in knowledge_base().rules:
        for code in rule.codes[:1]:
            d = classify(rule.scheme, code, None)
            assert d.needs_review is (d.decision is Decision.review), (rule.id, d.decision)
            assert d.retryable is (d.decision in (Decision.retry, Decision.split, Decision.resign_in)), rule.id
    assert classify("allinpay", "3045", None).needs_review
    assert classify("allinpay", "3045", None).to_dict()["needs_review"] is True


def test_a_code_that_leaves_the_decision_to_a_person_gives_way_to_a_text_naming_a_category() -> None:
    d = classify("allinpay", "3045", "超过当日累计限额")   # 3045: agreement not found (review); the text says limit
    assert (d.category, d.rule, d.decision) == (Category.limit_exceeded, "text.limit_cumulative", Decision.retry)
    assert not d.needs_review
    assert d.explanation.stage is Stage.narrative
    assert d.explanation.code == "3045"
    assert d.confidence == CONF_REVIEW_CODE_TEXT
    assert any("3045" in n and "the text decides" in n for n in d.explanation.notes)
    # unrecognised or agreeing text: the code still decides
    assert classify("allinpay", "3045", "交易失败").rule == "allinpay.3045"
    assert classify("allinpay", "3040", "金额错误").rule == "allinpay.3040"


def test_a_specific_code_keeps_deciding_and_a_disagreeing_text_is_reported_not_dropped() -> None:
    d = classify("allinpay", "3031", "余额不足")
    assert d.rule == "allinpay.3031"
    assert d.category is Category.card_info_error
    assert d.explanation.text_category is Category.insufficient_funds
    assert d.to_dict(explain=True)["explanation"]["text_category"] == "insufficient_funds"
    assert any("insufficient_funds" in n for n in d.explanation.notes)
    assert classify("allinpay", "3031", "账号户名不符").explanation.text_category is None   # agreeing text


def test_a_diagnosis_that_contradicts_itself_cannot_be_built() -> None:
    good = classify("allinpay", "3031", None)
    fields = {f: getattr(good, f) for f in ("category", "retryable", "decision", "owner", "confidence", "rule",
                                            "meaning_zh", "meaning_en", "guidance_zh", "guidance_en", "evidence_zh",
                                            "evidence_en", "explanation", "merchant_zh", "merchant_en",
                                            "merchant_acts")}
    assert Diagnosis(**fields) == good
    with pytest.raises(ValueError, match="retryable"):
        Diagnosis(**{**fields, "retryable": True})                                  # hold, yet "retryable"
    with pytest.raises(ValueError, match="confidence"):
        Diagnosis(**{**fields, "category": Category.unknown, "decision": Decision.review})   # unknown at 0.95
    with pytest.raises(ValueError, match="inquire"):
        Diagnosis(**{**fields, "category": Category.result_unknown, "decision": Decision.retry, "retryable": True})
