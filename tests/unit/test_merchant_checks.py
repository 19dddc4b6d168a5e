"""Merchant file checks (merchants/checks.py), the layout and the MCC table: pure, with hypothesis."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from merchant_files import (
    corporate_account,
    credit_card,
    debit_card,
    enterprise,
    individual,
    micro,
    resident_id,
    uscc,
)
from settleguard.cards.bins import load_packaged_bins
from settleguard.merchants.checks import (
    RULE_ENTERPRISE_OWN_ACCOUNT,
    RULE_OWN_NAME,
    Banks,
    Context,
    Rules,
    check_merchant_row,
)
from settleguard.merchants.file_layout import ALIASES, FIELDS, REQUIRED, canonical
from settleguard.merchants.mcc import load_mcc_table, parse_mcc_csv
from settleguard.merchants.model import (
    STATUS_TRANSITIONS,
    EntityKind,
    MerchantStatus,
    StatusAction,
    mask_id_number,
)
from settleguard.sim.generator import resident_id_check_digit

BINS = load_packaged_bins()
CTX = Context(bins=BINS, banks=Banks.from_bins(BINS), mccs=load_mcc_table(), today=date(2026, 11, 20))


def _codes(row: dict[str, str], ctx: Context = CTX) -> list[tuple[str, str]]:
    _, problems = check_merchant_row(5, row, ctx)
    assert all(p.line == 5 for p in problems)
    return [(p.field, p.code) for p in problems if p.severity == "error"]


@pytest.mark.parametrize("row", [micro(1), enterprise(2), individual(3)], ids=["micro", "enterprise", "individual"])
def test_valid_rows_of_each_kind_pass_and_become_drafts(row: dict[str, str]) -> None:
    draft, problems = check_merchant_row(2, row, CTX)
    assert [p for p in problems if p.severity == "error"] == []
    assert draft is not None
    assert draft.merchant_no == row["merchant_no"]
    assert draft.account_kind == ("corporate" if row["kind"] == "企业" else "personal")
    assert "622200" not in repr(draft)
    assert row["legal_person_id"] not in repr(draft)


def test_the_contract_is_read_as_ppm_fen_and_a_date() -> None:
    draft, _ = check_merchant_row(2, micro(1, debit_rate="0.45%", debit_cap="18", credit_rate="0.55",
                                            qr_rate="0.3", fee_effective_from="2026/12/01"), CTX)
    assert draft is not None
    assert draft.fee.rates_key() == (4500, 1800, 5500, 3000)
    assert draft.fee.effective_from == date(2026, 12, 1)
    assert _codes(micro(1, credit_rate="6")) == [("credit_rate", "rate_too_high")]
    assert _codes(micro(1, qr_rate="abc")) == [("qr_rate", "rate_format")]
    assert _codes(micro(1, fee_effective_from="tomorrow")) == [("fee_effective_from", "date_format")]


@pytest.mark.parametrize(("row", "expected"), [
    (micro(1, mcc="1234"), ("mcc", "mcc_unknown")),
    (micro(1, kind="合伙"), ("kind", "kind_unknown")),
    (micro(1, cycle="T+7"), ("cycle", "cycle_unknown")),
    (micro(1, contact_mobile="1234"), ("contact_mobile", "mobile_invalid")),
    (micro(1, card_no=credit_card(1)), ("card_no", "not_debit_card")),
    (micro(1, card_no=debit_card(1)[:-1] + str((int(debit_card(1)[-1]) + 1) % 10)), ("card_no", "luhn_failed")),
    (micro(1, holder_id=resident_id(2)), ("holder_id", "id_mismatch")),
    (micro(1, holder_id=""), ("holder_id", "empty")),
    (micro(1, bank="中国建设银行"), ("bank", "bank_mismatch")),
    (enterprise(2, uscc=""), ("uscc", "empty")),
    (enterprise(2, bank="不存在银行"), ("bank", "bank_unknown")),
    (enterprise(2, card_no=debit_card(2)), ("card_no", "corporate_account_required")),
    (micro(1, uscc=uscc(1)), ("uscc", "uscc_invalid")),
    (micro(1, terminal_no="123"), ("terminal_no", "terminal_no_format")),
], ids=lambda v: v[1] if isinstance(v, tuple) else None)
def test_each_bad_field_is_named(row: dict[str, str], expected: tuple[str, str]) -> None:
    assert expected in _codes(row)


def test_the_yiqing_rule_is_named_when_the_account_is_not_the_merchants_own() -> None:
    third = _codes(enterprise(2, holder_name="王五"))
    assert third == [("holder_name", RULE_OWN_NAME)]
    _, problems = check_merchant_row(3, micro(1, holder_name="赵六"), CTX)
    assert [p.code for p in problems] == ["third_party_account"]
    assert problems[0].zh.startswith("一清规则")
    assert "direct-settlement" in problems[0].en


def test_an_enterprise_settles_to_the_legal_persons_card_only_when_the_setting_allows_it() -> None:
    row = enterprise(2, holder_name=enterprise(2)["legal_person"], holder_id=resident_id(2), card_no=debit_card(2),
                     bank="ICBC")
    assert _codes(row) == [("holder_name", RULE_ENTERPRISE_OWN_ACCOUNT)]
    allowed = Context(CTX.bins, CTX.banks, CTX.mccs, CTX.today, Rules(enterprise_legal_person_account=True))
    draft, problems = check_merchant_row(2, row, allowed)
    assert draft is not None, problems
    assert draft.account_kind == "personal"


def test_an_individual_business_may_use_its_corporate_account_or_the_operators_card() -> None:
    row = individual(3)
    own = individual(3, holder_name=row["registered_name"], holder_id="", card_no=corporate_account(3), bank="ABC")
    assert _codes(own) == []
    assert _codes(row) == []


def _id_number(region: int, born: date, seq: int) -> str:
    first17 = f"{region:06d}{born:%Y%m%d}{seq:03d}"
    return first17 + resident_id_check_digit(first17)


@settings(max_examples=60, deadline=None)
@given(born=st.dates(date(1940, 1, 1), date(2000, 12, 31)), seq=st.integers(0, 999), pos=st.integers(0, 16),
       delta=st.integers(1, 9))
def test_any_single_wrong_digit_of_the_id_number_is_caught(born: date, seq: int, pos: int, delta: int) -> None:
    good = _id_number(110105, born, seq)
    bad = good[:pos] + str((int(good[pos]) + delta) % 10) + good[pos + 1:]
    row = micro(1, legal_person_id=bad, holder_id=bad)
    assert ("legal_person_id", "id_invalid") in _codes(row)


@settings(max_examples=60, deadline=None)
@given(serial=st.integers(0, 10**8 - 1), pos=st.integers(8, 16), delta=st.integers(1, 9))
def test_any_single_wrong_digit_of_the_uscc_is_caught(serial: int, pos: int, delta: int) -> None:
    good = uscc(serial)
    bad = good[:pos] + str((int(good[pos]) + delta) % 10) + good[pos + 1:] if good[pos].isdigit() else good[:-1] + (
        "0" if good[-1] != "0" else "1")
    assert ("uscc", "uscc_invalid") in _codes(enterprise(2, uscc=bad))


@settings(max_examples=60, deadline=None)
@given(serial=st.integers(0, 10**11), pos=st.integers(6, 18), delta=st.integers(1, 9))
def test_any_single_wrong_digit_of_the_card_is_refused(serial: int, pos: int, delta: int) -> None:
    good = debit_card(serial)
    bad = good[:pos] + str((int(good[pos]) + delta) % 10) + good[pos + 1:]
    codes = _codes(micro(1, card_no=bad))
    assert ("card_no", "luhn_failed") in codes


@settings(max_examples=40, deadline=None)
@given(name=st.text(alphabet="赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨", min_size=2, max_size=3))
def test_a_personal_card_in_another_persons_name_is_refused(name: str) -> None:
    row = micro(1)
    codes = _codes(micro(1, holder_name=name))
    if name == row["legal_person"]:
        assert codes == []
    else:
        assert codes
        assert codes[0][0] == "holder_name"


def test_the_layout_knows_chinese_and_english_headers() -> None:
    for col in FIELDS:
        assert canonical(col) == col
    assert canonical("商户编号") == "merchant_no"
    assert canonical(" 结算 卡号 ") == "card_no"
    assert canonical("\ufeff商户号") == "merchant_no"
    assert canonical("MCC") == "mcc"
    assert canonical("sn") == "terminal_sn"
    assert set(ALIASES.values()) == set(FIELDS)
    assert set(REQUIRED) <= set(FIELDS)


def test_the_mcc_table_has_common_codes_with_names() -> None:
    table = load_mcc_table()
    assert len(table) >= 100
    assert table["5812"].name_zh == "餐馆"
    assert table["5411"].name_en
    for code in ("5812", "5814", "5411", "5499", "7230", "5251", "5651", "5912"):  # the demo's businesses
        assert code in table
    with pytest.raises(ValueError, match="twice"):
        parse_mcc_csv("mcc,name_zh,name_en,group_zh,group_en\n5812,a,b,c,d\n5812,a,b,c,d\n")


def test_status_moves_and_masks() -> None:
    assert STATUS_TRANSITIONS[StatusAction.FREEZE] == (frozenset({MerchantStatus.ACTIVE}), MerchantStatus.FROZEN)
    assert all(MerchantStatus.CLOSED not in allowed for allowed, _ in STATUS_TRANSITIONS.values())
    assert mask_id_number("11010519850314004X") == "110105********004X"
    assert EntityKind.ENTERPRISE.merchant_kind == "corporate"
    assert EntityKind.INDIVIDUAL.merchant_kind == "personal"
