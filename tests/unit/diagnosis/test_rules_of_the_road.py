"""One test per "rule of the road" of shared/design/failure-taxonomy.md."""

from __future__ import annotations

from settleguard.diagnosis import classify
from settleguard.diagnosis.model import RESENDING_DECISIONS, Category, Decision, Stage


def test_unknown_is_honest() -> None:
    # a message the KB does not recognise: unknown, needs review, low confidence — never a guess
    for message in ("交易失败", "银行拒绝", "Transaction declined by bank", "处理失败 错误码未定义", "ERR-77F"):
        d = classify(None, None, message)
        assert d.category is Category.unknown, (message, d.rule)
        assert d.needs_review
        assert d.confidence < 0.5


def test_timeouts_are_not_failures() -> None:
    for scheme, code, message in ((None, None, "交易超时"), ("iso8583", "98", None), ("unionpay_acp", "03", None),
                                  (None, None, "request timed out"), ("allinpay", "027019", None)):
        d = classify(scheme, code, message)
        assert d.category is Category.result_unknown, (scheme, code, message, d.rule)
        assert d.decision is Decision.inquire
        assert not d.retryable
        assert any("inquiry" in g for g in d.guidance_en), d.guidance_en


def test_duplicate_is_treated_like_result_unknown() -> None:
    for scheme, code, message in (("allinpay", "3051", None), ("iso8583", "94", None), ("nacha", "R24", None),
                                  (None, None, "重复交易"), (None, None, "duplicate payment")):
        d = classify(scheme, code, message)
        assert d.category is Category.duplicate, (scheme, code, message, d.rule)
        assert d.decision is Decision.inquire
        assert d.decision not in RESENDING_DECISIONS
        assert classify(None, None, "交易状态未明").decision is d.decision   # same handling: query first


def test_the_more_specific_signal_wins() -> None:
    # a "see free text" code is decided by its narrative ...
    for scheme, code in (("iso20022", "NARR"), ("iso20022", "MS03"), ("allinpay", "3999")):
        d = classify(scheme, code, "收款人户名不符")
        assert d.category is Category.card_info_error, (scheme, code)
        assert d.explanation.stage is Stage.narrative, (scheme, code)
    d = classify("iso8583", "14", "帐户已作废或消户")
    assert d.category is Category.card_status_abnormal
    d = classify("iso8583", "57", "有套现嫌疑")
    assert d.category is Category.risk_or_compliance_block
    # ... a specific code is decided by the code even when the text is generic
    d = classify("iso20022", "AC04", "交易失败")
    assert d.category is Category.card_status_abnormal
    assert d.explanation.stage is Stage.code


def test_same_code_different_sets() -> None:
    for code in ("AC14", "AC16", "BE08"):
        status = classify("iso20022", code, None)
        ret = classify("iso20022_return", code, None)
        assert status.rule == f"iso20022.{code}"
        assert ret.rule == f"iso20022_return.{code}"
        assert status.category is not ret.category or status.meaning_en != ret.meaning_en


def test_returns_are_classified_by_their_attached_reason() -> None:
    for message in ("退票", "银行退票", "bounced"):
        assert classify(None, None, message).category is Category.unknown
    assert classify("allinpay", "3056", None).category is Category.unknown
    assert classify("allinpay", "3056", "退票：账户已销户").category is Category.card_status_abnormal
    assert classify("wechat_pay", "BANK_FAIL", "银行退票，原因：收款人户名不符").category is Category.card_info_error
    assert classify(None, None, "退票 户名不符").category is Category.card_info_error
