"""Exchange-rate arithmetic (pure): exact decimal rates, one half-even rounding honouring
each currency's exponent, parts spread so they sum exactly, the CSV parser's line errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potluck.errors import DomainError
from potluck.sharing import fx


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.0834", "1.0834"),
        ("1.08340", "1.0834"),
        ("100", "100"),
        ("0.000000000001", "0.000000000001"),
    ],
)
def test_rates_are_exact_decimals(text, canonical):
    assert fx.rate_text(fx.parse_rate(text)) == canonical


@pytest.mark.parametrize(
    "bad", [0.92, 1, True, "0", "0.0", "-1", "1e3", "1,5", "NaN", "1.0000000000001", "", " "]
)
def test_bad_rates_are_refused(bad):
    with pytest.raises(DomainError) as exc:
        fx.parse_rate(bad)
    assert exc.value.code == "invalid_fx_rate"


def test_convert_rounds_half_even_with_each_exponent():
    assert fx.convert(10_000, Decimal("0.9231"), from_currency="USD", to_currency="EUR") == 9231
    # 1000 JPY (no decimals) at 0.0061 EUR → 6.10 EUR = 610 cents
    assert fx.convert(1000, Decimal("0.0061"), from_currency="JPY", to_currency="EUR") == 610
    # 12.34 EUR at 161.5 JPY → 1992.91 → 1993 yen
    assert fx.convert(1234, Decimal("161.5"), from_currency="EUR", to_currency="JPY") == 1993
    # KWD has 3 decimals: 1.000 KWD at 3.25 USD = 325 cents
    assert fx.convert(1000, Decimal("3.25"), from_currency="KWD", to_currency="USD") == 325
    # half to even: 0.5 → 0, 1.5 → 2, 2.5 → 2
    assert [
        fx.convert(n, Decimal("0.5"), from_currency="EUR", to_currency="USD") for n in (1, 3, 5)
    ] == [0, 2, 2]


@given(
    total=st.integers(1, 10**12),
    parts=st.lists(st.integers(0, 10**9), min_size=1, max_size=30),
)
def test_spread_sums_exactly(total, parts):
    out = fx.spread(total, parts)
    assert len(out) == len(parts)
    if sum(parts):
        assert sum(out) == total
        assert all(o >= 0 for o in out)
    else:
        assert out == [0] * len(parts)


def test_csv_names_the_bad_line_and_keeps_the_last_of_a_repeated_row():
    rows = fx.parse_csv(
        "date,base,quote,rate\n2026-01-01,USD,EUR,0.92\n\n2026-01-01,USD,EUR,0.93\n"
    )
    assert [(r.base, r.quote, r.rate) for r in rows] == [("USD", "EUR", "0.93")]
    for text, line in [
        ("date,base,quote\n", 1),
        ("date,base,quote,rate\n2026-01-01,USD,EUR,0.92\n2026-13-01,USD,EUR,1\n", 3),
        ("date,base,quote,rate\n2026-01-01,USD,EUR,0.92\n2026-01-02,USD,EUR,0.92,x\n", 3),
        ("date,base,quote,rate\n2026-01-01,USD,USD,1\n", 2),
        ("date,base,quote,rate\n2026-01-01,ABC,EUR,1\n", 2),
        ("date,base,quote,rate\n2026-01-01,USD,EUR,0.9e1\n", 2),
    ]:
        with pytest.raises(fx.CsvError) as exc:
            fx.parse_csv(text)
        assert exc.value.line == line, text
        assert f"line {line}" in str(exc.value)


CURRENCIES = ["EUR", "JPY", "KWD", "USD"]


@st.composite
def _converted_expense(draw):
    from potluck.money import allocate
    from potluck.splits.expense import ExpenseSplit, Item, Share

    members = [f"m{i}" for i in range(draw(st.integers(2, 6)))]
    amount = draw(st.integers(1, 10**9))
    parts = st.lists(st.integers(0, 9), min_size=len(members), max_size=len(members)).filter(any)
    weights = draw(parts)
    method = draw(st.sampled_from(["equal", "exact", "shares", "itemized"]))
    if method == "exact":
        split = ExpenseSplit(
            "exact",
            tuple(Share(m, v) for m, v in zip(members, allocate(amount, weights), strict=True)),
        )
    elif method == "shares":
        split = ExpenseSplit(
            "shares", tuple(Share(m, w) for m, w in zip(members, weights, strict=True) if w)
        )
    elif method == "itemized" and amount >= 3:
        items, tax, tip = allocate(amount, [3, 1, 1])
        split = ExpenseSplit("itemized", items=(Item(items, tuple(members[:2])),), tax=tax, tip=tip)
    else:
        split = ExpenseSplit("equal")
    payers = allocate(amount, draw(parts))
    paid_by = [(m, a) for m, a in zip(members, payers, strict=True) if a]
    rate = Decimal(draw(st.sampled_from(["0.0061", "1", "1.0834", "161.5", "3.25", "0.3"])))
    return members, amount, split, paid_by, rate


@given(data=_converted_expense(), pair=st.permutations(CURRENCIES).map(lambda p: p[:2]))
def test_a_converted_expense_sums_exactly_in_the_group_currency(data, pair):
    from potluck.sharing.expenses import _post_form
    from potluck.sharing.models import SharingGroup

    members, amount, split, paid_by, rate = data
    original, group_currency = pair
    group = SharingGroup(id="grp_x", currency=group_currency)
    expected = fx.convert(amount, rate, from_currency=original, to_currency=group_currency)
    refused: str | None = None
    try:
        posted = _post_form(
            group,
            amount=amount,
            currency=original,
            rate=rate,
            split=split,
            paid_by=paid_by,
            members=members,
        )
    except DomainError as exc:  # converted to nothing (or a zero item): refused, not rounded
        refused = exc.code
    if refused is not None:
        assert refused == "fx_amount_out_of_range" or split.method == "itemized", refused
        return
    assert posted.amount == expected
    assert sum(a for _, a in posted.paid_by) == expected
    assert sum(a for _, a in posted.owed) == expected
    assert all(a > 0 for _, a in posted.paid_by)
    assert (posted.original_amount, posted.original_currency) == (amount, original)
    assert posted.original_paid_by == paid_by
