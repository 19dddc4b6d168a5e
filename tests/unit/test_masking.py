"""Card-number-like digit runs in outside text are masked; everything else is left alone."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from settleguard.masking import bounded, has_card_number, mask_card_numbers

PAN = "6217000000000008009"


def test_a_pan_inside_chinese_text_is_masked() -> None:
    assert mask_card_numbers(f"账号{PAN}户名不符") == "账号621700*********8009户名不符"


def test_grouped_dashed_and_full_width_numbers_are_masked() -> None:
    assert mask_card_numbers("卡号 6217 0000 0000 0008 009 已销户") == "卡号 621700*********8009 已销户"
    assert mask_card_numbers("acct 6217-0000-0000-0008-009.") == "acct 621700*********8009."
    assert mask_card_numbers("6217 - 0000 - 0000 - 0008 - 009") == "621700*********8009"
    full = "".join(chr(ord(c) + 0xFEE0) for c in PAN)
    masked = mask_card_numbers(f"账号{full}")
    assert full not in masked
    assert masked.startswith("账号")


def test_thirteen_digits_are_masked_twelve_are_not() -> None:
    assert mask_card_numbers("4000000000006") == "400000***0006"
    assert mask_card_numbers("400000000006") == "400000000006"


def test_codes_amounts_dates_and_phones_stay() -> None:
    text = "AC04 3028 系统忙 金额 1234567.89 日期 2026-11-18 电话 13800138000，20261118"
    assert mask_card_numbers(text) == text


def test_short_runs_joined_by_one_space_count_as_one_number() -> None:
    # a bank may print a card in any grouping; two short numbers one space apart are masked too (safe side)
    assert "13800138000 20261118" not in mask_card_numbers("电话 13800138000 20261118")


def test_longer_runs_are_masked_too() -> None:
    out = mask_card_numbers("x" + "1" * 25 + "y")
    assert "1" * 13 not in out


@given(st.text(alphabet=st.sampled_from("0123456789 -ab账号"), max_size=80))
def test_no_thirteen_digit_window_survives(text: str) -> None:
    out = mask_card_numbers(text)
    joined = re.sub(r"(?<=\d)[ \-]{1,3}(?=\d)", "", out)
    assert not re.search(r"\d{13}", joined)
    assert not has_card_number(out)
    assert mask_card_numbers(out) == out  # idempotent


@given(st.text(max_size=300))
def test_masking_is_idempotent_on_any_text(text: str) -> None:
    once = mask_card_numbers(text)
    assert mask_card_numbers(once) == once
    assert not has_card_number(once)


def test_bounded_cuts_masks_and_shows_control_characters() -> None:
    assert bounded("\x00" * 1000, 10) == "\\x00" * 10 + "…"
    assert bounded(f"账号{PAN}", 200) == "账号621700*********8009"
    assert len(bounded("a" * 10_000)) == 201
