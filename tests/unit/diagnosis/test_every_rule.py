"""Every rule of the knowledge base is reachable: its first code (with its scheme), or each of its
declared examples, classifies to that rule."""

from __future__ import annotations

import pytest

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.kb import TEXT_SCHEME
from settleguard.diagnosis.model import Category, Rule

RULES = knowledge_base().rules


def _id(r: Rule) -> str:
    return r.id


def test_the_knowledge_base_has_every_scheme_file() -> None:
    assert set(knowledge_base().schemes) == {"iso8583", "iso20022", "iso20022_return", "nacha", "unionpay_acp",
                                             "alipay", "wechat_pay", "allinpay", "text"}


@pytest.mark.parametrize("rule", [r for r in RULES if r.codes], ids=_id)
def test_a_code_rule_answers_for_its_first_code(rule: Rule) -> None:
    d = classify(rule.scheme, rule.codes[0], None)
    assert d.rule == rule.id
    if rule.narrative:
        # "see the text" with no text: honest unknown, the rule still named
        assert d.category is Category.unknown
        assert d.needs_review
        assert d.confidence < 0.5
    else:
        assert d.category is rule.category
        assert d.decision is rule.decision
        assert d.owner is rule.owner
        assert d.retryable is rule.retryable


@pytest.mark.parametrize("rule", [r for r in RULES if not r.codes], ids=_id)
def test_a_pattern_rule_declares_examples_that_classify_to_it(rule: Rule) -> None:
    assert rule.examples, f"{rule.id} has patterns but no examples"
    scheme = None if rule.scheme == TEXT_SCHEME else rule.scheme
    for example in rule.examples:
        d = classify(scheme, None, example)
        assert (d.rule, d.category) == (rule.id, rule.category), example


def test_rule_ids_are_unique_and_every_code_rule_is_found_by_every_one_of_its_codes() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    for r in RULES:
        for c in r.codes:
            assert knowledge_base().codes[r.scheme][c] is r
