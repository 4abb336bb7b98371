"""Money: the one half-up rounding rule, fees and formatting, exact integer arithmetic only."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.money import (
    CURRENCIES,
    MAX_AMOUNT,
    Money,
    div_round_half_up,
    fee_for,
    format_amount,
    major_text,
    parse_major,
)


@pytest.mark.parametrize(("numerator", "denominator", "expected"), [
    (0, 10, 0),
    (4, 10, 0),
    (5, 10, 1),
    (6, 10, 1),
    (14, 10, 1),
    (15, 10, 2),
    (25, 10, 3),  # half-up, not banker's rounding (which gives 2)
    (35, 10, 4),
    (-4, 10, 0),
    (-5, 10, -1),  # halves round away from zero
    (-15, 10, -2),
    (-25, 10, -3),
    (1, 3, 0),
    (2, 3, 1),
    (-2, 3, -1),
    (7, 1, 7),
    (10**30 + 5, 10, 10**29 + 1),  # no float anywhere: exact far beyond 2^53
])
def test_half_up_rounding_table(numerator, denominator, expected):
    assert div_round_half_up(numerator, denominator) == expected


@pytest.mark.parametrize("denominator", [0, -10])
def test_rounding_refuses_a_non_positive_denominator(denominator):
    with pytest.raises(ValueError):
        div_round_half_up(5, denominator)


@pytest.mark.parametrize(("amount", "bps", "fee"), [
    (1_250_000, 200, 25_000),  # 12,500.00 at 2% -> 250.00
    (25, 200, 1),  # 0.50 of a fen rounds up
    (24, 200, 0),  # 0.48 rounds down
    (75, 200, 2),  # 1.50 -> 2
    (1, 10_000, 1),
    (MAX_AMOUNT, 200, 180_143_985_094_820),  # 2^53-1 at 2%: exact
    (999, 0, 0),
])
@pytest.mark.parametrize("currency", CURRENCIES)
def test_fee_for_in_every_currency(amount, bps, fee, currency):
    price = Money(amount, currency)
    assert fee_for(price.amount, bps) == fee
    assert Money(fee_for(price.amount, bps), currency).as_dict() == {"amount": fee, "currency": currency}


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (1_250_000, "CNY", "CNY 12,500.00"),
    (5, "HKD", "HKD 0.05"),
    (100, "MOP", "MOP 1.00"),
    (0, "CNY", "CNY 0.00"),
    (-123_456, "MOP", "MOP -1,234.56"),
    (MAX_AMOUNT, "HKD", "HKD 90,071,992,547,409.91"),
])
def test_format_amount(amount, currency, text):
    assert format_amount(amount, currency) == text


def test_unknown_currency_and_float_amounts_are_refused():
    with pytest.raises(ValueError):
        format_amount(100, "USD")
    with pytest.raises(ValueError):
        Money(100, "USD")
    with pytest.raises(TypeError):
        Money(12.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "CNY")  # type: ignore[arg-type]


def _exact_half_up(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    return sign * math.floor(abs(value) + Fraction(1, 2))


@given(amount=st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT), bps=st.integers(0, 10_000))
def test_fee_for_is_exact_rational_half_up(amount, bps):
    assert fee_for(amount, bps) == _exact_half_up(Fraction(amount * bps, 10_000))


@given(amount=st.integers(min_value=0, max_value=MAX_AMOUNT), bps=st.integers(0, 10_000))
def test_a_fee_is_never_more_than_the_amount(amount, bps):
    assert 0 <= fee_for(amount, bps) <= amount


# -- typed amounts (the console's forms) -------------------------------------------------------------
@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("12500", "CNY", 1250000), ("12,500.5", "CNY", 1250050), ("12,500.50", "HKD", 1250050),
    ("CNY 1200.05", "CNY", 120005), ("0.01", "MOP", 1), ("1，234.00", "CNY", 123400), (" 7 ", "CNY", 700),
    ("90071992547409.91", "CNY", 2**53 - 1),
])
def test_a_typed_amount_becomes_exact_minor_units(typed, currency, minor):
    assert parse_major(typed, currency) == minor


@pytest.mark.parametrize(("typed", "currency"), [
    ("12.345", "CNY"), ("-1", "CNY"), ("1e3", "CNY"), ("abc", "CNY"), ("", "CNY"), ("1,23.00", "CNY"),
    ("12.5", "USD"), ("90071992547409.92", "CNY"), ("HKD 5", "CNY"), ("1.", "CNY"), ("NaN", "CNY"),
])
def test_anything_else_is_refused(typed, currency):
    with pytest.raises(ValueError):
        parse_major(typed, currency)


@given(st.integers(min_value=0, max_value=2**53 - 1), st.sampled_from(["CNY", "HKD", "MOP"]))
def test_the_form_text_of_an_amount_reads_back_as_the_same_amount(amount, currency):
    assert parse_major(major_text(amount, currency), currency) == amount
