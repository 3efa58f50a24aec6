"""Money and allocation: property tests for ``allocate``, parsing and formatting examples."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from potluck.money import Money, MoneyError, allocate, exponent, format_money, parse_amount

totals = st.one_of(
    st.integers(min_value=-10_000, max_value=10_000),
    st.integers(min_value=-(10**30), max_value=10**30),
)
weight_lists = st.lists(
    st.one_of(st.just(0), st.integers(min_value=1, max_value=100), st.integers(0, 10**12)),
    min_size=1,
    max_size=30,
).filter(lambda ws: sum(ws) > 0)


# ---------------------------------------------------------------- allocate


@given(totals, weight_lists)
@example(10**30 + 7, [1, 0, 3, 0, 10**12])
@example(-1, [1, 1, 1])
@example(0, [0, 5])
def test_parts_sum_to_total_and_stay_within_one_of_the_exact_share(total, weights):
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    assert all(isinstance(p, int) for p in parts)
    weight_sum = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        exact = Fraction(total * w, weight_sum)
        assert abs(part - exact) < 1
        if w == 0:
            assert part == 0


@given(totals, weight_lists)
def test_deterministic_and_negative_mirrors_positive(total, weights):
    first = allocate(total, weights)
    assert allocate(total, list(weights)) == first
    assert allocate(total, tuple(weights)) == first
    assert allocate(-total, weights) == [-p for p in first]


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=2, max_value=50))
def test_equal_weights_leftovers_go_to_the_earliest_positions(total, n):
    parts = allocate(total, [1] * n)
    q, r = divmod(total, n)
    assert parts == [q + 1] * r + [q] * (n - r)


def test_allocate_examples():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert allocate(5, [1, 0, 1]) == [3, 0, 2]
    assert allocate(10, [0, 0, 1]) == [0, 0, 10]
    # Largest remainder beats position: 7 * 5/8 = 4.375 and 7 * 3/8 = 2.625.
    assert allocate(7, [5, 3]) == [4, 3]
    assert allocate(0, [3, 4]) == [0, 0]
    assert allocate(1, [1, 2]) == [0, 1]


@pytest.mark.parametrize(
    ("total", "weights", "code"),
    [
        (10, [], "invalid_weights"),
        (10, [1, -1], "invalid_weights"),
        (10, [0, 0, 0], "invalid_weights"),
        (10, [1, 1.5], "invalid_weights"),
        (10, [True, 1], "invalid_weights"),
        (10.0, [1, 1], "invalid_amount"),
        (True, [1, 1], "invalid_amount"),
        ("10", [1, 1], "invalid_amount"),
    ],
)
def test_allocate_refuses_bad_input(total, weights, code):
    with pytest.raises(MoneyError) as info:
        allocate(total, weights)
    assert info.value.code == code


def test_money_allocate_keeps_currency():
    assert Money(1000, "EUR").allocate([1, 2]) == [Money(333, "EUR"), Money(667, "EUR")]


# ---------------------------------------------------------------- Money and currencies


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("EUR", 2), ("USD", 2), ("KWD", 3)])
def test_exponent(currency, digits):
    assert exponent(currency) == digits


@pytest.mark.parametrize("code", ["ABC", "eur", "EURO", "", "XXX", "XAU"])
def test_unknown_currency_raises(code):
    with pytest.raises(MoneyError) as info:
        exponent(code)
    assert info.value.code == "unknown_currency"
    with pytest.raises(MoneyError):
        Money(1, code)


@pytest.mark.parametrize("amount", [1.0, 1.5, "1", None, True])
def test_money_refuses_non_integer_amounts(amount):
    with pytest.raises(MoneyError):
        Money(amount, "EUR")


def test_money_arithmetic_refuses_mixed_currencies():
    assert Money(150, "EUR") + Money(50, "EUR") == Money(200, "EUR")
    assert Money(150, "EUR") - Money(200, "EUR") == Money(-50, "EUR")
    assert Money(1, "EUR") < Money(2, "EUR")
    with pytest.raises(MoneyError) as info:
        Money(1, "EUR") + Money(1, "USD")
    assert info.value.code == "currency_mismatch"
    with pytest.raises(MoneyError):
        Money(1, "EUR") < Money(1, "USD")  # noqa: B015


def test_to_decimal_is_exact():
    assert str(Money(1250, "EUR").to_decimal()) == "12.50"
    assert str(Money(-5, "EUR").to_decimal()) == "-0.05"
    assert str(Money(1234, "KWD").to_decimal()) == "1.234"
    assert str(Money(12, "JPY").to_decimal()) == "12"
    # Beyond Decimal's default 28 digits of precision: nothing is rounded.
    assert str(Money(10**30 + 1, "EUR")) == "10000000000000000000000000000.01 EUR"


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("1,234.56", "EUR", 123456),
        ("1,234,567", "EUR", 123456700),
        ("0.5", "EUR", 50),
        ("0.05", "EUR", 5),
        ("12", "EUR", 1200),
        (" 12.50 ", "EUR", 1250),
        ("-3", "EUR", -300),
        ("+3.10", "EUR", 310),
        ("12.500", "EUR", 1250),  # trailing zeros add no precision
        ("12", "JPY", 12),
        ("1,000", "JPY", 1000),
        ("1.234", "KWD", 1234),
        ("0.001", "KWD", 1),
        ("10000000000000000000000000000.01", "EUR", 10**30 + 1),
    ],
)
def test_parse_amount(text, currency, minor):
    assert parse_amount(text, currency) == minor
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.345", "EUR"),  # more decimals than the currency has
        ("12.5", "JPY"),
        ("1.2345", "KWD"),
        ("1,23", "EUR"),
        ("1,2345", "EUR"),
        ("12,34.5", "EUR"),
        ("abc", "EUR"),
        ("", "EUR"),
        ("   ", "EUR"),
        ("1e3", "EUR"),
        ("12.5.0", "EUR"),
        ("12.", "EUR"),
        (".5", "EUR"),
        ("--5", "EUR"),
        ("+-5", "EUR"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
        ("1_000", "EUR"),
        ("１２", "EUR"),  # full-width digits
        ("٣", "EUR"),  # Arabic-Indic digit
        ("12\n3", "EUR"),
        ("9" * 100, "EUR"),
        (None, "EUR"),
        (12, "EUR"),
    ],
)
def test_parse_amount_refuses(text, currency):
    with pytest.raises(MoneyError) as info:
        parse_amount(text, currency)
    assert info.value.code == "invalid_amount"


def test_parse_amount_unknown_currency():
    with pytest.raises(MoneyError) as info:
        parse_amount("12", "ABC")
    assert info.value.code == "unknown_currency"


@given(st.integers(min_value=-(10**20), max_value=10**20))
@example(0)
@example(-1)
@example(100)
def test_parse_of_format_round_trips_for_eur(minor):
    text = format(Money(minor, "EUR").to_decimal(), ",f")  # e.g. "-1,234.56"
    assert parse_amount(text, "EUR") == minor
    assert parse_amount(str(Money(minor, "EUR").to_decimal()), "EUR") == minor


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["JPY", "KWD", "EUR"]))
def test_babel_en_us_output_parses_back(minor, currency):
    # en_US groups with "," and uses "." for decimals: what parse_amount reads.
    text = format_money(minor, currency, "en_US")
    number = "".join(ch for ch in text if ch.isdigit() or ch in ",.-")
    assert parse_amount(number.strip("."), currency) == minor


# ---------------------------------------------------------------- formatting (Babel)


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (123456, "EUR", "en_US", "€1,234.56"),
        (-123456, "EUR", "en_US", "-€1,234.56"),
        (5, "EUR", "en_US", "€0.05"),
        (123456, "USD", "en_US", "$1,234.56"),
        (123456, "EUR", "de_DE", "1.234,56\xa0€"),
        (1234, "JPY", "ja_JP", "￥1,234"),
        (1234, "JPY", "en_US", "¥1,234"),
        (1234, "KWD", "en_US", "KWD1.234"),
        (10**30 + 1, "EUR", "en_US", "€10,000,000,000,000,000,000,000,000,000.01"),
    ],
)
def test_format_money(amount, currency, locale, text):
    assert format_money(amount, currency, locale) == text
    assert Money(amount, currency).format(locale) == text
