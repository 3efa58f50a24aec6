"""Settle-up: simplify_debts is minimal (checked against brute force), preserves every
balance, is deterministic and fast; pairwise_payments nets each pair."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from functools import cache
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.sharing.simplify import (
    EXACT_LIMIT,
    Payment,
    _best_partition,
    simplify_debts,
)

# --- independent references ---------------------------------------------------------------


def set_partitions(items: list[int]) -> Iterator[list[list[int]]]:
    """Every partition of ``items`` (Bell(n) of them): the naive brute force."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first], *partition]
        for i in range(len(partition)):
            yield [*partition[:i], [first, *partition[i]], *partition[i + 1 :]]


def max_zero_sum_parts_naive(values: list[int]) -> int:
    """The most parts of a partition of ``values`` into zero-sum subsets, by enumeration."""
    best = 0
    for partition in set_partitions(list(range(len(values)))):
        if all(sum(values[i] for i in part) == 0 for part in partition):
            best = max(best, len(partition))
    return best


def max_zero_sum_parts_search(values: list[int]) -> int:
    """Exhaustive search: the first remaining person goes with every possible zero-sum set of
    the others (memoised on what remains); independent of the module's DP."""

    @cache
    def best(remaining: tuple[int, ...]) -> int:
        if not remaining:
            return 0
        first, others = remaining[0], remaining[1:]
        result = -(10**9)
        for r in range(1, len(others) + 1):
            for combo in combinations(others, r):
                if values[first] + sum(values[i] for i in combo) == 0:
                    left = tuple(i for i in others if i not in combo)
                    result = max(result, 1 + best(left))
        return result

    return best(tuple(range(len(values))))


def max_zero_sum_parts_dp(values: list[int]) -> int:
    """The subset DP of the brief, written plainly: dp[mask] = max dp[mask − i] (+1 if zero)."""
    n = len(values)
    size = 1 << n
    sums = [0] * size
    dp = [0] * size
    for mask in range(1, size):
        low = mask & -mask
        sums[mask] = sums[mask ^ low] + values[low.bit_length() - 1]
        dp[mask] = max(dp[mask ^ (1 << i)] for i in range(n) if mask >> i & 1) + (sums[mask] == 0)
    return dp[size - 1]


def apply(balances: Mapping[str, int], payments: list[Payment]) -> dict[str, int]:
    """Balances after the payments: paying what you owe raises yours, lowers the payee's."""
    after = dict(balances)
    for p in payments:
        assert p.amount > 0
        assert p.from_id != p.to_id
        assert p.from_id in after
        assert p.to_id in after
        after[p.from_id] += p.amount
        after[p.to_id] -= p.amount
    return after


def random_balances(rng: random.Random, n: int, low: int, high: int) -> dict[str, int]:
    values = [rng.choice((1, -1)) * rng.randint(low, high) for _ in range(n - 1)]
    values.append(-sum(values))
    return {f"p{i:05d}": v for i, v in enumerate(values)}


def non_zero(balances: Mapping[str, int]) -> list[int]:
    return [v for _, v in sorted(balances.items()) if v != 0]


def check_minimal(balances: dict[str, int], k: int) -> list[Payment]:
    payments = simplify_debts(balances)
    assert all(v == 0 for v in apply(balances, payments).values())
    assert len(payments) == len(non_zero(balances)) - k
    return payments


# --- examples -----------------------------------------------------------------------------


def test_three_people_two_payments():
    payments = simplify_debts({"ann": 30, "bob": -10, "cat": -20})
    assert sorted(payments, key=lambda p: p.from_id) == [
        Payment("bob", "ann", 10),
        Payment("cat", "ann", 20),
    ]


def test_two_independent_pairs_need_two_payments_not_three():
    # Greedy over everyone would chain a: -7 → c: +5, then a → d ... (3 payments); the
    # zero-sum parts {a, d} and {b, c} need one each.
    balances = {"a": -7, "b": -5, "c": 5, "d": 7}
    payments = simplify_debts(balances)
    assert sorted(payments, key=lambda p: p.from_id) == [Payment("a", "d", 7), Payment("b", "c", 5)]


def test_hidden_zero_sum_subsets_without_opposite_pairs():
    # {+3, +4, −7} and {+6, +5, −11}: two parts, 6 people → 4 payments; greedy gives 5.
    balances = {"a": 3, "b": 4, "c": -7, "d": 6, "e": 5, "f": -11}
    payments = simplify_debts(balances)
    assert len(payments) == 4
    assert all(v == 0 for v in apply(balances, payments).values())
    pairs = {(p.from_id, p.to_id) for p in payments}
    assert pairs == {("c", "a"), ("c", "b"), ("f", "d"), ("f", "e")}


def test_nothing_to_settle():
    assert simplify_debts({}) == []
    assert simplify_debts({"a": 0, "b": 0}) == []


def test_balances_not_summing_to_zero_are_refused():
    with pytest.raises(ValueError, match="sum to zero"):
        simplify_debts({"a": 10, "b": -9})


@pytest.mark.parametrize("bad", [1.5, True, "10", None])
def test_non_integer_balance_is_refused(bad: object):
    with pytest.raises(ValueError, match="integer"):
        simplify_debts({"a": bad, "b": 0})  # type: ignore[dict-item]


def test_deterministic_whatever_the_insertion_order():
    rng = random.Random(7)
    balances = random_balances(rng, 12, 1, 50)
    first = simplify_debts(balances)
    for _ in range(5):
        items = list(balances.items())
        rng.shuffle(items)
        assert simplify_debts(dict(items)) == first


# --- minimality against brute force -------------------------------------------------------


def test_partition_references_agree_on_a_known_case():
    values = [3, 4, -7, 6, 5, -11, 1, -1]
    assert max_zero_sum_parts_naive(values) == 3
    assert max_zero_sum_parts_search(values) == 3
    assert max_zero_sum_parts_dp(values) == 3


def test_minimal_against_enumerating_every_partition_up_to_9_people():
    rng = random.Random(2024)
    for trial in range(150):
        n = rng.randint(2, 9 if trial % 5 == 0 else 8)
        balances = random_balances(rng, n, 1, rng.choice((3, 6, 20)))
        values = non_zero(balances)
        k = max_zero_sum_parts_naive(values)
        assert max_zero_sum_parts_dp(values) == k
        if values:
            parts = _best_partition(values)
            assert len(parts) == k
        check_minimal(balances, k)


def test_minimal_against_exhaustive_search_up_to_15_people():
    rng = random.Random(15)
    for trial in range(60):
        n = rng.randint(10, 15) if trial % 3 else 15
        balances = random_balances(rng, n, 1, rng.choice((4, 9, 30, 1000)))
        values = non_zero(balances)
        assert len(values) <= EXACT_LIMIT
        k = max_zero_sum_parts_search(values)
        check_minimal(balances, k)


def test_dp_partition_is_a_partition_into_zero_sum_parts():
    rng = random.Random(5)
    for _ in range(100):
        n = rng.randint(2, 15)
        values = non_zero(random_balances(rng, n, 1, rng.choice((3, 10, 10**6))))
        if not values:
            continue
        parts = _best_partition(values)
        assert sorted(i for part in parts for i in part) == list(range(len(values)))
        assert all(sum(values[i] for i in part) == 0 for part in parts)
        if len(values) <= 12:
            assert len(parts) == max_zero_sum_parts_dp(values)


def test_opposite_pairs_are_paired_and_stay_minimal():
    # Pairing +a with −a first is what the module argues is safe; here a pair and a triple
    # could also merge into one 5-person part (4 payments) — the answer must be 3.
    balances = {"a": 5, "b": -5, "c": 2, "d": 3, "e": -5}
    payments = simplify_debts(balances)
    assert len(payments) == 3
    assert Payment("b", "a", 5) in payments or Payment("e", "a", 5) in payments
    assert all(v == 0 for v in apply(balances, payments).values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-40, max_value=40), min_size=1, max_size=9))
def test_property_minimal_and_preserving(values: list[int]):
    values = [*values, -sum(values)]
    balances = {f"u{i}": v for i, v in enumerate(values)}
    k = max_zero_sum_parts_dp(non_zero(balances)) if non_zero(balances) else 0
    check_minimal(balances, k)


# --- large groups ---------------------------------------------------------------------------


def test_thousand_people_at_most_n_minus_1_payments_balances_preserved():
    rng = random.Random(1000)
    balances = random_balances(rng, 1000, 1, 10**6)
    n = len(non_zero(balances))
    payments = simplify_debts(balances)
    assert len(payments) <= n - 1
    assert all(v == 0 for v in apply(balances, payments).values())
    assert simplify_debts(balances) == payments


def test_large_group_with_many_opposite_pairs_beats_n_minus_1():
    rng = random.Random(3)
    balances: dict[str, int] = {}
    for i in range(200):
        v = rng.randint(1, 10**6)
        balances[f"c{i:03d}"] = v
        balances[f"d{i:03d}"] = -v
    payments = simplify_debts(balances)
    assert len(payments) == 200  # one per pair: n − k with k = 200
    assert all(v == 0 for v in apply(balances, payments).values())


def many_subsets_no_opposites(rng: random.Random) -> dict[str, int]:
    """15 balances with many zero-sum subsets and no +a/−a pair (nothing paired off first)."""
    while True:
        values = [rng.choice((1, 2, 3)) for _ in range(8)] + [
            rng.choice((-4, -5, -6)) for _ in range(6)
        ]
        last = -sum(values)
        if last != 0 and -last not in values:
            return {f"u{i:02d}": v for i, v in enumerate([*values, last])}


def test_minimal_when_nothing_can_be_paired_off():
    rng = random.Random(8)
    for _ in range(10):
        balances = many_subsets_no_opposites(rng)
        values = non_zero(balances)
        assert len(values) == 15
        check_minimal(balances, max_zero_sum_parts_search(values))


def test_fifteen_non_zero_balances_take_the_exact_search():
    """15 non-zero balances (the exact search's limit): minimal and balance-preserving.
    How fast it is belongs to the benchmarks, not to a test."""
    rng = random.Random(99)
    large = random_balances(rng, 15, 1, 10**6)  # few zero-sum subsets
    small = random_balances(rng, 15, 1, 7)  # many zero-sum subsets
    for balances in (large, small, many_subsets_no_opposites(rng)):
        assert len(non_zero(balances)) >= 14
        payments = simplify_debts(balances)
        assert all(v == 0 for v in apply(balances, payments).values())


def test_ten_thousand_balances_settle_in_at_most_n_minus_1_payments():
    rng = random.Random(10_000)
    balances = random_balances(rng, 10_000, 1, 10**7)
    payments = simplify_debts(balances)
    assert len(payments) <= len(non_zero(balances)) - 1
    assert all(v == 0 for v in apply(balances, payments).values())
