"""Context in free-text matching (issue 18 item 2): a pattern found inside another word (户名 in 商户名称),
a negated failure (未超过限额, 并非余额不足, "limit not exceeded") or a positive statement (冻结已解除,
卡片状态正常, "sign-in succeeded") does not read as the failure it names.

Generated from the knowledge base: for EVERY pattern of every pattern rule, a matching phrase is built from
the regex itself and negated; every rule's declared ``near_misses`` (containing words, rule-specific
negations and positive statements) must not classify to that rule."""

from __future__ import annotations

import re
from re import _parser as sre  # type: ignore[attr-defined]   # the stdlib regex parser, to build instances
from typing import Any

import pytest

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.kb import TEXT_SCHEME
from settleguard.diagnosis.model import Category, Decision, Rule
from settleguard.diagnosis.normalize import normalize_message

PATTERN_RULES = [r for r in knowledge_base().rules if r.patterns]
_CATEGORY_CHAR = {sre.CATEGORY_DIGIT: "0", sre.CATEGORY_WORD: "a", sre.CATEGORY_SPACE: " "}


def _chars(items: Any) -> str:
    """A character a character class admits (the first literal or range start)."""
    negate = any(op is sre.NEGATE for op, _ in items)
    if negate:   # [^ ] and the like: a letter of the language at hand never excluded by our classes
        return "x"
    op, av = items[0]
    if op is sre.LITERAL:
        return chr(av)
    if op is sre.RANGE:
        return chr(av[0])
    if op is sre.CATEGORY:
        return _CATEGORY_CHAR.get(av, "a")
    raise AssertionError(op)


def _build(parsed: Any) -> str:
    """A shortest string the parsed regex matches: first branch, minimum repeats, no assertions."""
    out = []
    for op, av in parsed:
        if op is sre.LITERAL:
            out.append(chr(av))
        elif op is sre.NOT_LITERAL or op is sre.ANY:
            out.append("x")
        elif op is sre.IN:
            out.append(_chars(av))
        elif op is sre.BRANCH:
            out.append(_build(av[1][0]))
        elif op is sre.SUBPATTERN:
            out.append(_build(av[3]))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            out.append(_build(av[2]) * av[0])
        elif op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue
        else:
            raise AssertionError(f"unsupported regex element {op}")
    return "".join(out)


def instance(pattern: str) -> str:
    """A phrase the pattern matches, built from the pattern."""
    text = _build(sre.parse(pattern)).strip()
    assert re.search(pattern, normalize_message(text)), (pattern, text)
    return text


def negations(rule: Rule, phrase: str) -> list[str]:
    """Negated forms of ``phrase`` (a copula negation: 不是 X, "not X"), leaving out a form that the rule
    itself lists as its failure wording (非服务时间, "not kyc": there the negation IS the failure)."""
    if phrase.isascii() and re.search(r"\b(?:not|no)\b", phrase):
        return []   # "did not respond", "no response": a double negative says nothing either way
    cue = "not " if phrase.isascii() else "不是"
    forms = [f"{cue}{phrase}", f"it was {cue}{phrase}" if phrase.isascii() else f"这{cue}{phrase}的问题"]
    own = [re.compile(p) for p in rule.patterns]
    out = []
    for form in forms:
        norm = normalize_message(form)
        at = norm.index(normalize_message(cue).strip())
        if not any(m.start() <= at for p in own for m in p.finditer(norm)):
            out.append(form)
    return out


def _scheme(rule: Rule) -> str | None:
    return None if rule.scheme == TEXT_SCHEME else rule.scheme


CASES = [(r, p) for r in PATTERN_RULES for p in r.patterns]


def test_every_pattern_rule_is_covered() -> None:
    # 19 text rules and the 2 ISO 8583 text rules; every pattern gets a generated negation
    assert len(PATTERN_RULES) >= 21
    assert len(CASES) >= 390


@pytest.mark.parametrize(("rule", "pattern"), CASES, ids=[f"{r.id}#{r.patterns.index(p)}" for r, p in CASES])
def test_a_negated_pattern_does_not_read_as_its_failure(rule: Rule, pattern: str) -> None:
    phrase = instance(pattern)
    forms = negations(rule, phrase)
    if not forms:
        pytest.skip(f"{phrase!r} is itself a negation, or its negated form is the rule's own failure wording")
    for negated in forms:
        d = classify(_scheme(rule), None, negated)
        assert d.rule != rule.id, (pattern, negated, d.explanation.pattern)


@pytest.mark.parametrize("rule", PATTERN_RULES, ids=lambda r: r.id)
def test_near_misses_declared_in_the_knowledge_base_do_not_read_as_the_rule(rule: Rule) -> None:
    assert rule.near_misses, f"{rule.id}: declare near_misses (containing words, negations, positive statements)"
    for message in rule.near_misses:
        d = classify(_scheme(rule), None, message)
        assert d.rule != rule.id, (message, d.explanation.pattern, d.explanation.normalized)


# The issue's own phrases, in Chinese and English: a statement that things are fine is not a failure.
POSITIVE = ["余额足够", "卡片状态正常", "未超过限额", "冻结已解除", "签到已成功", "户名一致", "账户正常",
            "balance sufficient", "card status normal", "limit not exceeded", "freeze lifted", "sign-in succeeded",
            "name matches", "商户名称变更", "账户未冻结", "没有风险", "交易未超时", "不是重复交易", "the account is not frozen",
            "not a duplicate", "解除冻结", "户名相符", "签到成功", "密码正确"]


@pytest.mark.parametrize("message", POSITIVE)
def test_positive_and_negated_statements_are_not_failures(message: str) -> None:
    d = classify(None, None, message)
    assert d.category is Category.unknown, (d.rule, d.explanation.pattern)
    assert d.decision is Decision.review
    assert d.needs_review


# Context must not cost a real failure: the same words, when they do name the failure, still match.
STILL_FAILURES = [
    ("账号户名不符", "text.card_info"), ("商户名称与开户名不符", "text.card_info"), ("客户户名与已签约户名不符合", "text.card_info"),
    ("户名与账号不一致", "text.card_info"), ("户名一致，卡号错误", "text.card_info"), ("账户已冻结", "text.card_status"),
    ("冻结已解除，但账户已挂失", "text.card_status"), ("卡片状态异常", "text.card_status"), ("状态不正常", "text.card_status"),
    ("超过当日累计限额", "text.limit_cumulative"), ("单笔金额不得超过5万元", "text.limit_single"), ("超出限额，请申请限额调整", "text.limit_single"),
    ("终端未签到", "text.sign_in"), ("请重新签到", "text.sign_in"), ("验证码核对不通过", "text.pin_otp"),
    ("余额不足", "text.insufficient"), ("不是超时，是余额不足", "text.insufficient"), ("风险等级过高", "text.risk"),
    ("交易状态未明，请查询", "text.status_unknown"), ("请勿重复提交", "text.duplicate"), ("业务未日初", "text.system"),
    ("Account name does not match", "text.card_info"), ("The account has been closed", "text.card_status"),
    ("Daily limit exceeded", "text.limit_cumulative"), ("could not process, insufficient funds", "text.insufficient"),
    ("Amount must not exceed 50000", "text.limit_single"),
]


@pytest.mark.parametrize(("message", "rule"), STILL_FAILURES)
def test_the_words_still_match_where_they_name_the_failure(message: str, rule: str) -> None:
    assert classify(None, None, message).rule == rule
