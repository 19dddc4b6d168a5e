"""Card-number normalisation, masking, Luhn and scheme detection (cards/model.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from settleguard.cards.model import (
    CardNumberError,
    international_scheme,
    luhn_complete,
    luhn_ok,
    mask_pan,
    normalize_pan,
)

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(("raw", "digits"), [
    ("6222 0200 0012 3456 782", "6222020000123456782"),
    ("6222-0200-0012-3456-782", "6222020000123456782"),
    ("６２２２０２００００１２３４５６７８２", "6222020000123456782"),
    ("６２２２　０２００－0012 3456\t782", "6222020000123456782"),
    ("\u00a06222020000123456782\n", "6222020000123456782"),
    ("6222\u20140200\u20130012\u22123456\u2010782", "6222020000123456782"),
    ("", ""),
])
def test_normalize_pan_keeps_only_the_digits(raw: str, digits: str) -> None:
    assert normalize_pan(raw) == digits


@pytest.mark.parametrize(("raw", "char", "position"), [
    ("6222O20000123456782", "O", 5),
    ("6222.0200", ".", 5),
    ("62220200001234567８x", "x", 19),
    ("٦٢٢٢٠٢", "٦", 1),   # Arabic-Indic digits are not accepted silently
    ("①222020000123456782", "①", 1),
])
def test_normalize_pan_names_the_bad_character_and_not_the_number(raw: str, char: str, position: int) -> None:
    with pytest.raises(CardNumberError) as info:
        normalize_pan(raw)
    assert (info.value.char, info.value.position) == (char, position)
    message = str(info.value)
    assert message.startswith("卡号第")
    assert f"U+{ord(char):04X}" in message
    assert "62220200" not in message


@pytest.mark.parametrize(("pan", "masked"), [
    ("6222020000123456782", "622202*********6782"),
    ("6225880000123457", "622588******3457"),
    ("4111111111111", "411111***1111"),
    ("123456789012", "********9012"),
    ("1234567", "*******"),
    ("", ""),
])
def test_mask_pan_shows_first_six_and_last_four_only(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked


@pytest.mark.parametrize(("pan", "scheme"), [
    ("4111111111111111", "Visa"), ("5500000000000004", "Mastercard"), ("2221000000000009", "Mastercard"),
    ("3530111333300000", "JCB"), ("378282246310005", "American Express"), ("6011111111111117", "Discover"),
    ("36227206271667", "Diners Club"), ("6222020000123456782", None), ("9555000000000000000", None),
])
def test_international_scheme_by_prefix(pan: str, scheme: str | None) -> None:
    assert international_scheme(pan) == scheme


@given(st.text(alphabet=st.sampled_from("0123456789０１２３４５６７８９ -－\u3000\t"), max_size=40))
def test_normalisation_is_idempotent(raw: str) -> None:
    once = normalize_pan(raw)
    assert normalize_pan(once) == once
    assert once.isascii()
    assert (once == "" or once.isdigit())
    assert len(once) == sum(ch not in " -－\u3000\t" for ch in raw)


@given(st.text(max_size=30))
def test_normalisation_either_returns_ascii_digits_or_names_a_character_of_the_input(raw: str) -> None:
    bad = next((i for i, ch in enumerate(raw) if not (ch.isspace() or ch in "-\u2010\u2011\u2012\u2013\u2014"
                                                   "\u2015\u2212\ufe58\ufe63\uff0d" or "0" <= ch <= "9"
                                                   or "０" <= ch <= "９")), None)
    if bad is not None:
        with pytest.raises(CardNumberError) as info:
            normalize_pan(raw)
        assert (info.value.position, info.value.char) == (bad + 1, raw[bad])
        return
    out = normalize_pan(raw)
    assert out == "" or (out.isascii() and out.isdigit())
    assert normalize_pan(out) == out


@given(st.text(alphabet="0123456789", max_size=25))
def test_masking_never_shows_more_than_six_plus_four_digits(pan: str) -> None:
    masked = mask_pan(pan)
    assert len(masked) == len(pan)
    shown = [i for i, ch in enumerate(masked) if ch != "*"]
    assert len(shown) <= 10
    assert all(masked[i] == pan[i] for i in shown)
    assert all(i < 6 or i >= len(pan) - 4 for i in shown)
    if len(pan) >= 8:
        assert len(shown) <= len(pan) // 2 or len(pan) >= 13


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_luhn_valid_generation_round_trips(prefix: str) -> None:
    pan = luhn_complete(prefix)
    assert pan[:-1] == prefix
    assert luhn_ok(pan)
    assert luhn.is_valid(pan)
    assert normalize_pan(" ".join(pan[i:i + 4] for i in range(0, len(pan), 4))) == pan
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    assert not luhn_ok(wrong)


@given(st.text(alphabet="0123456789", min_size=13, max_size=19), st.integers(min_value=0, max_value=18),
       st.integers(min_value=1, max_value=9))
def test_luhn_catches_every_single_digit_change(prefix: str, where: int, delta: int) -> None:
    pan = luhn_complete(prefix[:-1])
    i = where % len(pan)
    changed = pan[:i] + str((int(pan[i]) + delta) % 10) + pan[i + 1:]
    assert not luhn_ok(changed)


def test_luhn_ok_is_false_for_non_digits() -> None:
    assert not luhn_ok("")
    assert not luhn_ok("6222 0200 0012 3456 782")
    with pytest.raises(ValueError, match="digits"):
        luhn_complete("62-22")
