"""Split rules: validation and allocation, with property tests (every minor unit lands)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.splits import SplitError, SplitRule, SplitRules, allocate_split, validate_rules


def rules(*items: tuple[str, str, int], remainder_to: str = "r") -> SplitRules:
    return SplitRules(tuple(SplitRule(p, t, v) for p, t, v in items), remainder_to)  # type: ignore[arg-type]


def test_100_01_split_three_ways_by_percent_allocates_every_cent():
    split = rules(
        ("a", "percent", 3333), ("b", "percent", 3333), ("c", "percent", 3334), remainder_to="a"
    )
    parts = allocate_split(10001, split)
    assert sum(parts.values()) == 10001
    # floor(10001 * 3333 / 10000) = 3333, floor(10001 * 3334 / 10000) = 3334; the cent left
    # (10001 - 10000) goes to remainder_to.
    assert parts == {"a": 3334, "b": 3333, "c": 3334}


def test_fixed_first_then_percent_then_remainder():
    split = rules(
        ("m", "fixed", 500), ("c", "percent", 1000), ("p", "percent", 250), remainder_to="m"
    )
    assert allocate_split(10000, split) == {"m": 500 + 8250, "c": 1000, "p": 250}


def test_unassigned_share_goes_to_remainder_to():
    assert allocate_split(999, rules(("a", "percent", 5000), remainder_to="r")) == {
        "a": 499,
        "r": 500,
    }


def test_rules_of_one_party_aggregate_into_one_part():
    split = rules(("a", "percent", 1000), ("a", "fixed", 30), remainder_to="a")
    assert allocate_split(1000, split) == {"a": 1000}


def test_zero_parts_are_left_out():
    assert allocate_split(5, rules(("a", "percent", 1000), remainder_to="r")) == {"r": 5}


def test_fixed_above_amount_is_refused():
    with pytest.raises(SplitError) as err:
        allocate_split(100, rules(("a", "fixed", 101)))
    assert err.value.code == "split_exceeds_amount"
    with pytest.raises(SplitError) as err:
        allocate_split(100, rules(("a", "fixed", 60), ("b", "percent", 5000)))
    assert err.value.code == "split_exceeds_amount"


@pytest.mark.parametrize(
    ("split", "code", "field"),
    [
        (rules(), "split_rules_empty", "rules"),
        (rules(("a", "percent", 6000), ("b", "percent", 4001)), "percent_above_100", "rules"),
        (rules(("a", "percent", 10001)), "percent_above_100", "rules.0.value"),
        (rules(("a", "percent", 0)), "invalid_rule_value", "rules.0.value"),
        (rules(("a", "fixed", -5)), "invalid_rule_value", "rules.0.value"),
        (rules(("a", "fixed", 1.5)), "invalid_rule_value", "rules.0.value"),  # type: ignore[arg-type]
        (rules(("a", "share", 5)), "invalid_rule_type", "rules.0.type"),
        (rules(("a", "fixed", 5), ("a", "fixed", 6)), "duplicate_rule", "rules.1.party"),
        (rules(("a", "fixed", 5), remainder_to=""), "remainder_to_missing", "remainder_to"),
    ],
)
def test_validation_names_the_field(split, code, field):
    with pytest.raises(SplitError) as err:
        validate_rules(split, field="split.")
    assert err.value.code == code
    assert err.value.field == f"split.{field}"
    assert err.value.status == 422


def test_percent_plus_fixed_for_one_party_is_valid():
    validate_rules(rules(("a", "percent", 10000), ("a", "fixed", 1)))


PARTIES = ["p0", "p1", "p2", "p3", "p4", "p5"]


@st.composite
def rule_sets(draw):
    n = draw(st.integers(1, 6))
    items = []
    budget = 10000
    for i in range(n):
        if draw(st.booleans()) and budget > 0:
            v = draw(st.integers(1, budget))
            budget -= v
            items.append((PARTIES[i], "percent", v))
        else:
            items.append((PARTIES[i], "fixed", draw(st.integers(1, 5000))))
    return rules(*items, remainder_to=draw(st.sampled_from(PARTIES)))


@settings(max_examples=500, deadline=None)
@given(amount=st.integers(1, 10**12), split=rule_sets())
def test_parts_always_sum_to_the_amount(amount, split):
    validate_rules(split)
    fixed = sum(r.value for r in split.rules if r.type == "fixed")
    pct = sum(amount * r.value // 10000 for r in split.rules if r.type == "percent")
    if fixed + pct > amount:
        with pytest.raises(SplitError, match="exceed"):
            allocate_split(amount, split)
        return
    parts = allocate_split(amount, split)
    assert sum(parts.values()) == amount
    assert all(p > 0 for p in parts.values())
    for rule in split.rules:  # nobody gets less than their rules give them
        if rule.type == "percent":
            assert parts.get(rule.party, 0) >= amount * rule.value // 10000


def test_a_thousand_random_orders_sum_of_credits_equals_sum_of_orders():
    rng = random.Random(20261121)
    orders_total = credits_total = 0
    for _ in range(1000):
        n = rng.randint(1, 10)
        cuts = sorted(rng.randint(0, 10000) for _ in range(n))
        bps = [b - a for a, b in zip([0, *cuts], cuts, strict=False)]
        split = rules(
            *[(f"p{i}", "percent", v) for i, v in enumerate(bps) if v > 0],
            ("fee", "fixed", rng.randint(1, 50)),
            remainder_to=f"p{rng.randrange(n)}",
        )
        validate_rules(split)
        amount = rng.randint(100, 10**7)
        parts = allocate_split(amount, split)
        orders_total += amount
        credits_total += sum(parts.values())
    assert credits_total == orders_total
