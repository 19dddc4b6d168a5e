"""Properties of the fee rounding rule and the fen/yuan conversions (money.py, FeeSchedule.fee)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from settleguard.money import (
    MoneyError,
    fee_fen,
    fen_to_decimal,
    fen_to_yuan,
    format_yuan,
    rate_to_ppm,
    yuan_to_fen,
)
from settleguard.settlement.model import DEFAULT_SCHEDULES, CardType, FeeSchedule, TxnKind

amounts = st.one_of(st.integers(0, 10_000), st.integers(0, 10**13 - 1))
rates = st.one_of(st.sampled_from([3000, 3800, 4500, 5000, 5500, 6000]), st.integers(0, 1_000_000))
caps = st.one_of(st.none(), st.integers(0, 100_000))
fen_values = st.integers(-(10**17) + 1, 10**17 - 1)  # at most 15 yuan digits, as yuan_to_fen accepts


def decimal_fee(amount_fen: int, rate_ppm: int, cap_fen: int | None) -> int:
    exact = Decimal(amount_fen) * Decimal(rate_ppm) / Decimal(1_000_000)
    fee = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return fee if cap_fen is None else min(fee, cap_fen)


@given(amounts, rates, caps)
@example(amount_fen=100, rate_ppm=5000, cap_fen=None)  # 0.5 fen exactly: rounds up to 1
@example(amount_fen=99, rate_ppm=5000, cap_fen=None)  # 0.495 fen: rounds down to 0
@example(amount_fen=300, rate_ppm=3800, cap_fen=None)  # 1.14 fen
@example(amount_fen=400_000, rate_ppm=5000, cap_fen=2000)  # exactly at the debit cap
@example(amount_fen=400_100, rate_ppm=5000, cap_fen=2000)  # just above it
def test_fee_is_the_exact_product_rounded_half_up_then_capped(amount_fen: int, rate_ppm: int,
                                                             cap_fen: int | None) -> None:
    assert fee_fen(amount_fen, rate_ppm, cap_fen) == decimal_fee(amount_fen, rate_ppm, cap_fen)


@given(amounts, rates, st.integers(0, 100_000))
def test_fee_never_exceeds_the_cap(amount_fen: int, rate_ppm: int, cap_fen: int) -> None:
    assert 0 <= fee_fen(amount_fen, rate_ppm, cap_fen) <= cap_fen


@given(amounts, amounts, rates, caps)
def test_fee_grows_with_the_amount(a: int, b: int, rate_ppm: int, cap_fen: int | None) -> None:
    lo, hi = sorted((a, b))
    assert fee_fen(lo, rate_ppm, cap_fen) <= fee_fen(hi, rate_ppm, cap_fen)


@given(rates, caps)
def test_fee_on_nothing_is_nothing(rate_ppm: int, cap_fen: int | None) -> None:
    assert fee_fen(0, rate_ppm, cap_fen) == 0


@given(st.integers(max_value=-1), rates)
def test_fee_refuses_a_negative_amount(amount_fen: int, rate_ppm: int) -> None:
    with pytest.raises(MoneyError):
        fee_fen(amount_fen, rate_ppm)


def test_fee_refuses_a_negative_rate() -> None:
    with pytest.raises(MoneyError):
        fee_fen(100, -1)


@given(fen_values)
def test_fen_survives_a_round_trip_through_yuan_text(fen: int) -> None:
    text = fen_to_yuan(fen)
    assert yuan_to_fen(text) == fen
    assert Decimal(text) == fen_to_decimal(fen) == Decimal(fen) / 100


@given(st.decimals(min_value=Decimal("-999999999999999.99"), max_value=Decimal("999999999999999.99"),
                   places=2, allow_nan=False, allow_infinity=False))
def test_yuan_text_survives_a_round_trip_through_fen(yuan: Decimal) -> None:
    fen = yuan_to_fen(f"{yuan:f}")
    assert Decimal(fen) == yuan * 100
    assert Decimal(fen_to_yuan(fen)) == yuan


@pytest.mark.parametrize(("text", "fen"), [("123.4", 12340), ("5", 500), ("-0.01", -1), (" 0.5 ", 50),
                                           ("1234567.89", 123456789)])
def test_yuan_text_is_parsed_exactly(text: str, fen: int) -> None:
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["1.234", "1e3", "", "1,000.00", "¥5", "0.1.2", "- 1", "nan", "1234567890123456"])
def test_yuan_text_that_is_not_exact_fen_is_refused(text: str) -> None:
    with pytest.raises(MoneyError):
        yuan_to_fen(text)


@given(fen_values)
def test_displayed_yuan_has_the_same_value_as_the_plain_text(fen: int) -> None:
    shown = format_yuan(fen)
    assert Decimal(shown.replace("¥", "").replace(",", "")) == Decimal(fen_to_yuan(fen))


@given(st.integers(0, 1_000_000))
def test_percent_rates_convert_to_ppm_exactly(ppm: int) -> None:
    assert rate_to_ppm(f"{Decimal(ppm) / 10_000:f}") == ppm


def test_rates_finer_than_one_ppm_are_refused() -> None:
    with pytest.raises(MoneyError):
        rate_to_ppm("0.00001")


schedules = st.sampled_from(DEFAULT_SCHEDULES)
cards = st.sampled_from(list(CardType))


@given(schedules, cards, amounts)
def test_a_sale_is_charged_the_rounded_capped_fee(s: FeeSchedule, card: CardType, amount: int) -> None:
    r = s.rates[card]
    assert s.fee(TxnKind.SALE, card, amount) == decimal_fee(amount, r.rate_ppm, r.cap_fen) >= 0


@given(schedules, cards, amounts, st.sampled_from([TxnKind.VOID, TxnKind.REVERSAL]))
def test_voids_and_reversals_give_the_fee_back(s: FeeSchedule, card: CardType, amount: int,
                                               kind: TxnKind) -> None:
    assert s.fee(kind, card, amount) == -s.fee(TxnKind.SALE, card, amount)
    assert s.fee(TxnKind.SALE, card, amount) + s.fee(kind, card, amount) == 0


@given(schedules, cards, amounts)
def test_a_refund_keeps_the_fee(s: FeeSchedule, card: CardType, amount: int) -> None:
    assert s.fee(TxnKind.REFUND, card, amount) == 0


@pytest.mark.parametrize(("schedule", "cap"), [(DEFAULT_SCHEDULES[0], 2000), (DEFAULT_SCHEDULES[1], 1800)])
def test_debit_fees_stop_at_the_published_cap(schedule: FeeSchedule, cap: int) -> None:
    assert schedule.fee(TxnKind.SALE, CardType.DEBIT, 100_000_000) == cap
    assert schedule.fee(TxnKind.SALE, CardType.CREDIT, 100_000_000) > cap  # credit cards are not capped
