"""Nothing unsafe: text that means "result unknown, query first" or "duplicate" never gets a decision
that sends money again — alone, with no scheme, with any scheme, or next to a code that says retry.
The paraphrases below are not in shared/reference/failure-codes.md."""

from __future__ import annotations

import pytest

from settleguard.diagnosis import SCHEMES, classify, knowledge_base
from settleguard.diagnosis.model import (
    QUERY_FIRST_CATEGORIES,
    RESENDING_DECISIONS,
    Category,
    Decision,
    rule_problems,
)

PENDING = [
    "银行处理中，请勿重复发起", "付款结果待银行确认", "交易结果未返回，请稍后查询", "出款状态不明，请联系通道核实",
    "网关响应超时", "等待银行回执", "银行未返回结果", "已提交银行，等待处理结果", "订单已受理，正在处理",
    "交易處理中，請稍候", "結果未明，請查詢", "主機疑帳", "代付请求超时，请勿重发，先查询", "收款行应答超时",
    "请求已发送至收款行，结果待定", "转账中", "支付结果不确定，请调用查询接口", "ｔｉｍｅｏｕｔ",
    "Payment pending", "Transaction is being processed by the beneficiary bank", "Request accepted, result will follow",
    "Status unknown, please query before retrying", "Timed out waiting for bank response", "No response from issuer",
    "Gateway timeout", "Read timeout after request was sent", "Result uncertain", "Awaiting confirmation from the bank",
    "Payment submitted to bank", "In progress", "The outcome is undetermined", "Please check the status of the transaction",
]
DUPLICATES = [
    "该笔代付订单已存在", "流水号已被使用", "此订单已付款", "請勿重複提交", "商户订单号重复", "重复出款请求已拒绝",
    "同一批次号已提交过", "该交易已处理成功，请勿重复发送", "Duplicate order", "Order already exists",
    "Transaction already processed", "Repeated submission", "Reference not unique", "Payment already credited",
    "Duplicate transmission detected",
]


def test_there_are_at_least_thirty_paraphrases() -> None:
    assert len(PENDING) + len(DUPLICATES) >= 30


@pytest.mark.parametrize("message", PENDING)
def test_pending_or_unclear_text_is_result_unknown_and_never_resent(message: str) -> None:
    d = classify(None, None, message)
    assert d.category is Category.result_unknown, (d.rule, d.explanation.normalized)
    assert d.decision is Decision.inquire
    assert not d.retryable


@pytest.mark.parametrize("message", DUPLICATES)
def test_duplicate_text_is_duplicate_and_never_resent(message: str) -> None:
    d = classify(None, None, message)
    assert d.category is Category.duplicate, (d.rule, d.explanation.normalized)
    assert d.decision is Decision.inquire
    assert not d.retryable


@pytest.mark.parametrize("scheme", SCHEMES)
def test_with_any_scheme_query_first_text_is_never_resent(scheme: str) -> None:
    for message in PENDING + DUPLICATES:
        d = classify(scheme, None, message)
        assert d.decision not in RESENDING_DECISIONS, (scheme, message, d.rule)


def test_next_to_a_code_that_says_resend_query_first_text_wins() -> None:
    resending = [r for r in knowledge_base().rules if r.codes and r.decision in RESENDING_DECISIONS]
    assert len(resending) > 20
    for rule in resending:
        for message in ("交易状态未明，请查询", "Duplicate transaction", "通讯超时"):
            d = classify(rule.scheme, rule.codes[0], message)
            assert d.category in QUERY_FIRST_CATEGORIES, (rule.id, message, d.rule)
            assert d.decision is Decision.inquire


def test_every_rule_in_the_knowledge_base_obeys_the_safety_constraints() -> None:
    for r in knowledge_base().rules:
        assert rule_problems(r.category, r.decision, r.retryable) == [], r.id
        if r.category in QUERY_FIRST_CATEGORIES:
            assert "inquire_first" in r.steps, r.id


def test_codes_that_mean_query_first_are_not_resent_in_any_scheme() -> None:
    # the reference's gotcha 6: timeouts and "accepted" answers on money-moving transactions are not failures
    for scheme, code in [("iso8583", "98"), ("iso8583", "68"), ("iso8583", "A2"), ("unionpay_acp", "03"),
                         ("unionpay_acp", "04"), ("unionpay_acp", "05"), ("allinpay", "2000"), ("allinpay", "2007"),
                         ("allinpay", "3028"), ("wechat_pay", "SYSTEMERROR"), ("iso20022", "AB05"),
                         ("iso20022", "AB06")]:
        d = classify(scheme, code, None)
        assert d.decision not in RESENDING_DECISIONS, (scheme, code, d.rule, d.category)
