"""Allinpay 通联 AIPG return codes (failure-codes.md §5.1), table-driven: every code of the table."""

from __future__ import annotations

import pytest

from settleguard.diagnosis import classify
from settleguard.diagnosis.model import Category, Decision

C = Category
TABLE = {
    C.card_info_error: ["3004", "3009", "3010", "3022", "3030", "3031", "3034", "3041", "3063", "3065", "3068",
                        "013004", "013009", "013030", "013031", "013065"],
    C.card_status_abnormal: ["3002", "3006", "3007", "3012", "3016", "3017", "3018", "3020", "3037", "3038", "3039",
                             "3057", "3067", "3069", "013006", "013012", "013017", "013064"],
    C.system_or_network_fault: ["0001", "3024", "3026", "3044", "3059", "3071", "012012", "012015"],
    C.limit_exceeded: ["3013", "3015", "3021", "3042", "3055", "013013", "012017", "012018"],
    C.verification_failed: ["3011", "3025", "3043", "3058", "013011", "012010"],
    C.insufficient_funds: ["3008", "3023", "013008"],
    C.risk_or_compliance_block: ["3005"],
    C.transaction_data_error: ["1000", "1001", "1002", "0397", "3014", "3019", "3027", "3029", "3032", "3033", "3035",
                               "3036", "3040", "3045", "3046", "3047", "3048", "3049", "3050", "3052", "3066", "3072",
                               "013033", "013063"],
    C.duplicate: ["3051"],
    C.result_unknown: ["2000", "2007", "3028", "3053", "3054", "013028", "027019"],
    C.unknown: ["0002", "3001", "3003"],
}
ROWS = [(code, cat) for cat, codes in TABLE.items() for code in codes]


def test_the_table_covers_every_allinpay_code_of_the_reference() -> None:
    reference = {"0001", "0002", "1000", "1001", "1002", "2000", "2007", "0397", "3056", "3999",
                 *(f"30{n:02d}" for n in range(1, 60)), "3063", "3065", "3066", "3067", "3068", "3069", "3071", "3072"}
    reference -= {"3060", "3061", "3062", "3064", "3070"}
    covered = {code for code, _ in ROWS} | {"3056", "3999"}
    assert reference - covered == set()


@pytest.mark.parametrize(("code", "category"), ROWS)
def test_an_allinpay_code_has_its_category(code: str, category: Category) -> None:
    d = classify("allinpay", code, None)
    assert d.category is category, d.rule
    assert d.rule is not None
    assert d.rule.startswith("allinpay.")


def test_the_see_the_text_codes_are_decided_by_the_text() -> None:
    assert classify("allinpay", "3999", None).category is C.unknown
    assert classify("allinpay", "3999", "卡号所属银行与发卡行不一致").category is C.card_info_error
    assert classify("allinpay", "3056", "退票：收款人账户已冻结").category is C.card_status_abnormal


def test_system_busy_3028_is_query_first_not_retry() -> None:
    d = classify("allinpay", "3028", "系统忙，请稍后再提交")
    assert d.category is C.result_unknown
    assert d.decision is Decision.inquire
