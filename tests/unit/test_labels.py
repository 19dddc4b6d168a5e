"""settleguard.labels is the one label table: its Chinese words are the models' words, every code of every
stored vocabulary has a label, and what a person types for a filter reads as the code."""

from __future__ import annotations

import pytest

from settleguard import labels
from settleguard.access.model import ROLE_ZH
from settleguard.cases import model as cases
from settleguard.diagnosis.model import CATEGORY_ZH, DECISION_ZH, OWNER_ZH, Category, Decision
from settleguard.merchants.model import STATUS_NAMES, AccountStatus, MerchantKind
from settleguard.payouts.model import STATUS_ZH, PayoutStatus


@pytest.mark.parametrize(("table", "words"), [
    (labels.PAYOUT_STATUS, STATUS_ZH), (labels.CASE_STATUS, cases.STATUS_ZH), (labels.CATEGORY, CATEGORY_ZH),
    (labels.CATEGORY, cases.CATEGORY_ZH), (labels.DECISION, DECISION_ZH), (labels.OWNER, OWNER_ZH),
    (labels.ROLE, ROLE_ZH), (labels.PARTY, cases.PARTY_ZH), (labels.METHOD, cases.METHOD_ZH),
    (labels.MERCHANT_STATUS, {k: zh for k, (zh, _) in STATUS_NAMES.items()}),
])
def test_the_chinese_words_are_the_models_words(table: labels.Table, words: dict[object, str]) -> None:
    assert {str(k): zh for k, zh in words.items()} == {str(k): table[str(k)][0] for k in words}


@pytest.mark.parametrize(("table", "codes"), [
    (labels.PAYOUT_STATUS, list(PayoutStatus)), (labels.CATEGORY, list(Category)), (labels.DECISION, list(Decision)),
    (labels.PRIORITY, list(cases.Priority)), (labels.ACCOUNT_STATUS, list(AccountStatus)),
    (labels.CARD_KIND, list(MerchantKind)),
])
def test_every_code_has_a_label_that_is_not_the_code(table: labels.Table, codes: list[str]) -> None:
    for code in codes:
        zh, en = table[str(code)]
        assert zh != str(code)
        assert "_" not in en


@pytest.mark.parametrize(("typed", "code"), [
    ("挂账", "held"), ("held", "held"), ("HELD", "held"), ("挂账 held", "held"), ("结果未明", "result_unknown"),
    ("result unknown", "result_unknown"), ("result-unknown", "result_unknown"), (" 已放行待出款 ", "released"),
])
def test_a_status_is_read_from_its_code_or_either_label(typed: str, code: str) -> None:
    assert labels.parse(labels.PAYOUT_STATUS, typed) == code


def test_an_unknown_value_is_none_and_the_accepted_ones_are_listed() -> None:
    assert labels.parse(labels.PAYOUT_STATUS, "冻结") is None
    assert labels.parse(labels.CARD_KIND, "对公") == "corporate"
    assert "挂账（held）" in labels.accepted(labels.PAYOUT_STATUS)


def test_labels_read_zh_then_en() -> None:
    assert labels.zh_en(labels.PAYOUT_STATUS, "held") == "挂账 held"
    assert labels.zh_en(labels.CATEGORY, "system_or_network_fault") == "系统或网络故障 system or network fault"
    assert labels.zh_en(labels.PRIORITY, "p3") == "P3 普通 normal"
    assert labels.zh_en(labels.PAYOUT_STATUS, None) == ""
    assert labels.zh_en(labels.PAYOUT_STATUS, "brand_new") == "brand_new"  # an unknown code is shown as it is


@pytest.mark.parametrize(("stored", "shown"), [
    ("settlement run 1 (2026-11-16)", "2026-11-16 结算批次 #1 生成 created by settlement run #1 (2026-11-16)"),
    ("attempt 2 via simulator", "第 2 次发送，经模拟银行 attempt 2, sent via simulated bank"),
    ("挂账 held (card_info_error): 3031 账号户名不符", "挂账 held (银行卡信息错误 card info error): 3031 账号户名不符"),
    ("0000 交易成功", "0000 交易成功"),
])
def test_a_payout_events_reason_reads_as_words(stored: str, shown: str) -> None:
    assert labels.event_reason(stored) == shown
