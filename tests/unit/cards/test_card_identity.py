"""Resident ID, USCC and mobile-number checks (cards/identity.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from settleguard.cards.identity import check_mobile, check_resident_id, check_uscc

TODAY = date(2026, 11, 20)


def make_id(born: str = "19900307", region: str = "110101", seq: str = "001") -> str:
    first17 = region + born + seq
    return first17 + ric.calc_check_digit(first17 + "0")


def test_a_valid_resident_id_is_parsed() -> None:
    checked = check_resident_id(make_id(), today=TODAY)
    assert checked.ok
    assert checked.problems == ()
    assert checked.value is not None
    assert checked.value.birth_date == date(1990, 3, 7)
    assert checked.value.sex == "M"
    assert checked.value.region
    assert "北京" in checked.value.region
    assert check_resident_id(make_id(seq="002")).value.sex == "F"  # type: ignore[union-attr]


def test_the_stdnum_documentation_example_is_valid_and_lower_case_x_and_spaces_are_accepted() -> None:
    assert check_resident_id("360426199101010071").ok
    x_id = next(i for s in range(1000) if (i := make_id(seq=f"{s:03d}")).endswith("X"))
    assert check_resident_id(x_id[:-1] + "x").ok
    assert check_resident_id(" ".join([x_id[:6], x_id[6:14], x_id[14:]])).ok
    assert check_resident_id(x_id.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))).ok


@pytest.mark.parametrize(("number", "zh_part"), [
    (make_id()[:-1] + ("1" if make_id()[-1] != "1" else "2"), "校验位"),
    (make_id(born="19900230"), "不是有效日期"),
    (make_id(born="18800101"), "1900"),
    (make_id(born="20270101"), "未来"),
    (make_id(born="19000101"), "超过 120"),
    ("11010119900307", "18 位"),
    ("110101900307001", "15 位"),
    ("11010119900307001A", "前 17 位"),
])
def test_invalid_resident_ids_say_what_is_wrong_without_repeating_the_number(number: str, zh_part: str) -> None:
    checked = check_resident_id(number, today=TODAY)
    assert not checked.ok
    assert checked.value is None
    (problem,) = checked.problems
    assert problem.code == "id_invalid"
    assert problem.severity == "error"
    assert zh_part in problem.zh
    assert number not in problem.zh + problem.en


def test_birth_date_plausibility_needs_today() -> None:
    future = make_id(born="20270101")
    assert check_resident_id(future).ok  # no clock in a pure check
    assert not check_resident_id(future, today=TODAY).ok


def test_an_underage_holder_is_a_warning() -> None:
    checked = check_resident_id(make_id(born="20120101"), today=TODAY, min_age=18)
    assert checked.ok
    assert [(p.code, p.severity) for p in checked.problems] == [("id_underage", "warning")]
    assert "14 岁" in checked.problems[0].zh


def test_an_unknown_region_code_is_a_warning() -> None:
    checked = check_resident_id(make_id(region="990101"), today=TODAY)
    assert checked.ok
    assert [(p.code, p.severity) for p in checked.problems] == [("id_region_unknown", "warning")]


@given(st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_of_an_id_is_caught(where: int, delta: int) -> None:
    number = make_id()
    changed = number[:where] + str((int(number[where]) + delta) % 10) + number[where + 1:]
    assert not check_resident_id(changed, today=TODAY).ok


@pytest.mark.parametrize(("code", "ok"), [
    ("91110000600037341L", True), ("9111 0000 6000 3734 1L", True), ("91110000600037341l", True),
    ("91110000600037341M", False), ("9111000060003734", False), ("9111000060003734IL", False),
])
def test_uscc(code: str, ok: bool) -> None:
    checked = check_uscc(code)
    assert checked.ok is ok
    if ok:
        assert checked.value == "91110000600037341L"
    else:
        assert [p.code for p in checked.problems] == ["uscc_invalid"]
        assert "营业执照" in checked.problems[0].zh


@pytest.mark.parametrize(("raw", "value"), [
    ("13812345678", "13812345678"), ("+86 138 1234 5678", "13812345678"), ("0086-138-1234-5678", "13812345678"),
    ("8613812345678", "13812345678"), ("１３８１２３４５６７８", "13812345678"), ("(+86)19912345678", "19912345678"),
    ("12812345678", None), ("1381234567", None), ("138123456789", None), ("1381234567a", None), ("", None),
    ("02112345678", None),
])
def test_mobile_numbers(raw: str, value: str | None) -> None:
    checked = check_mobile(raw)
    assert checked.value == value
    assert checked.ok is (value is not None)
    if value is None:
        assert [p.code for p in checked.problems] == ["mobile_invalid"]
