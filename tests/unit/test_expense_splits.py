"""Expense splits: the six methods, their refusals (code + field), several payers, and
property tests (shares sum to the amount exactly, never negative, deterministic)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.errors import DomainError
from potluck.splits.expense import (
    ExpenseSplit,
    Item,
    Share,
    SplitError,
    check_payers,
    split_expense,
)

M = ["mbr_a", "mbr_b", "mbr_c", "mbr_d"]
A, B, C, D = M


def refused(amount: int, split: ExpenseSplit, members: list[str] = M) -> SplitError:
    with pytest.raises(SplitError) as info:
        split_expense(amount, split, members)
    assert info.value.status == 422
    return info.value


def s(*pairs: tuple[str, int | None]) -> tuple[Share, ...]:
    return tuple(Share(u, v) for u, v in pairs)


# --- equal ----------------------------------------------------------------------------------


def test_equal_among_everyone_by_default_rounding_cent_to_the_first_member():
    assert split_expense(1000, ExpenseSplit("equal"), M[:3]) == [(A, 334), (B, 333), (C, 333)]
    assert split_expense(1001, ExpenseSplit("equal"), M) == [(A, 251), (B, 250), (C, 250), (D, 250)]


def test_equal_among_listed_members_in_member_order_not_listing_order():
    split = ExpenseSplit("equal", s((D, None), (B, None)))
    assert split_expense(101, split, M) == [(B, 51), (D, 50)]


def test_equal_one_minor_unit_among_three_leaves_the_others_out():
    assert split_expense(1, ExpenseSplit("equal"), M[:3]) == [(A, 1)]


def test_split_error_is_a_domain_error():
    err = refused(100, ExpenseSplit("equal", s(("mbr_zz", None))))
    assert isinstance(err, DomainError)
    assert (err.code, err.field) == ("unknown_member", "split.shares.0.user_id")


# --- exact ----------------------------------------------------------------------------------


def test_exact_amounts():
    split = ExpenseSplit("exact", s((A, 600), (C, 0), (B, 400)))
    assert split_expense(1000, split, M) == [(A, 600), (B, 400)]


def test_exact_short_says_by_how_much():
    err = refused(10_000, ExpenseSplit("exact", s((A, 5_000), (B, 4_990))))
    assert err.code == "split_does_not_sum"
    assert err.field == "split.shares"
    assert err.message == "exact amounts sum to 9,990, 10 short of 10,000"


def test_exact_over_says_by_how_much():
    err = refused(10_000, ExpenseSplit("exact", s((A, 5_000), (B, 5_025))))
    assert err.message == "exact amounts sum to 10,025, 25 over 10,000"


def test_exact_negative_value_is_refused_with_its_field():
    err = refused(100, ExpenseSplit("exact", s((A, 150), (B, -50))))
    assert (err.code, err.field) == ("negative_share_value", "split.shares.1.value")


@pytest.mark.parametrize("bad", [None, 50.0, True, "50"])
def test_exact_value_must_be_an_integer(bad: object):
    err = refused(100, ExpenseSplit("exact", s((A, 50), (B, bad))))  # type: ignore[arg-type]
    assert (err.code, err.field) == ("invalid_share_value", "split.shares.1.value")


def test_exact_without_people_is_refused():
    err = refused(100, ExpenseSplit("exact"))
    assert (err.code, err.field) == ("split_empty", "split.shares")


# --- percent --------------------------------------------------------------------------------


def test_percent_in_basis_points():
    split = ExpenseSplit("percent", s((A, 5_000), (B, 2_500), (C, 2_500)))
    assert split_expense(1001, split, M) == [(A, 501), (B, 250), (C, 250)]


def test_percent_thirds_round_deterministically():
    split = ExpenseSplit("percent", s((C, 3_333), (B, 3_333), (A, 3_334)))
    # 100 × 0.3334 = 33.34, 33.33, 33.33 → floors 33, 33, 33 and the last unit to A (largest
    # remainder .34)
    assert split_expense(100, split, M) == [(A, 34), (B, 33), (C, 33)]


def test_percent_not_summing_to_10000():
    err = refused(100, ExpenseSplit("percent", s((A, 5_000), (B, 4_900))))
    assert (err.code, err.field) == ("split_does_not_sum", "split.shares")
    assert "9,900 basis points, 100 short of 10,000" in err.message


def test_percent_above_100_for_one_person():
    err = refused(100, ExpenseSplit("percent", s((A, 10_001), (B, -1))))
    assert (err.code, err.field) == ("invalid_share_value", "split.shares.0.value")


# --- shares ---------------------------------------------------------------------------------


def test_shares_two_one_one():
    split = ExpenseSplit("shares", s((A, 2), (B, 1), (C, 1)))
    assert split_expense(1000, split, M) == [(A, 500), (B, 250), (C, 250)]
    assert split_expense(1001, split, M) == [(A, 501), (B, 250), (C, 250)]


def test_shares_all_zero_is_refused():
    err = refused(100, ExpenseSplit("shares", s((A, 0), (B, 0))))
    assert (err.code, err.field) == ("split_does_not_sum", "split.shares")


def test_shares_negative_weight_is_refused():
    err = refused(100, ExpenseSplit("shares", s((A, 2), (B, -1))))
    assert (err.code, err.field) == ("negative_share_value", "split.shares.1.value")


# --- adjustment -----------------------------------------------------------------------------


def test_adjustment_equal_split_of_the_rest_plus_each_adjustment():
    # 1000 − (100 − 50) = 950 → 317, 317, 316; then +100, 0, −50
    split = ExpenseSplit("adjustment", s((A, 100), (B, None), (C, -50)))
    assert split_expense(1000, split, M) == [(A, 417), (B, 317), (C, 266)]


def test_adjustment_without_shares_is_an_equal_split_among_everyone():
    assert split_expense(1000, ExpenseSplit("adjustment"), M) == split_expense(
        1000, ExpenseSplit("equal"), M
    )


def test_adjustment_leaving_someone_below_zero_is_refused():
    # 100 − 150 = −50 → −25 each; B would owe −25
    err = refused(100, ExpenseSplit("adjustment", s((A, 150), (B, 0))))
    assert (err.code, err.field) == ("negative_share", "split.shares.1.value")


def test_adjustment_larger_than_the_amount_is_fine_when_nobody_ends_below_zero():
    split = ExpenseSplit("adjustment", s((A, 150), (B, 150)))
    assert split_expense(100, split, M) == [(A, 50), (B, 50)]


# --- itemized -------------------------------------------------------------------------------


def test_itemized_items_tax_and_tip_in_proportion():
    split = ExpenseSplit(
        "itemized",
        items=(Item(2_500, (B,), "steak"), Item(3_000, (A, B, C), "wine")),
        tax=440,
        tip=1_100,
    )
    # subtotals A 1000, B 3500, C 1000 of 5500; extras 1540 → 280, 980, 280
    assert split_expense(7_040, split, M) == [(A, 1_280), (B, 4_480), (C, 1_280)]


def test_itemized_rounds_once_and_the_unit_goes_to_the_earlier_member():
    # exact shares 33.67 each: rounded once, not 34 + tax unit to A (35, 33, 33)
    split = ExpenseSplit("itemized", items=(Item(100, (C, A, B)),), tax=1)
    assert split_expense(101, split, M) == [(A, 34), (B, 34), (C, 33)]


def test_itemized_must_add_up_to_the_amount():
    split = ExpenseSplit("itemized", items=(Item(900, (A,)),), tax=50, tip=40)
    err = refused(1_000, split)
    assert (err.code, err.field) == ("split_does_not_sum", "split.items")
    assert err.message.endswith("sum to 990, 10 short of 1,000")


def test_itemized_unknown_person_in_an_item():
    split = ExpenseSplit("itemized", items=(Item(50, (A,)), Item(50, (B, "mbr_x"))))
    err = refused(100, split)
    assert (err.code, err.field) == ("unknown_member", "split.items.1.user_ids.1")


def test_itemized_item_without_people_or_amount():
    err = refused(100, ExpenseSplit("itemized", items=(Item(100, ()),)))
    assert (err.code, err.field) == ("split_empty", "split.items.0.user_ids")
    err = refused(100, ExpenseSplit("itemized", items=(Item(0, (A,)), Item(100, (B,)))))
    assert (err.code, err.field) == ("invalid_share_value", "split.items.0.amount")


def test_itemized_negative_tip_and_no_items():
    err = refused(100, ExpenseSplit("itemized", items=(Item(110, (A,)),), tip=-10))
    assert (err.code, err.field) == ("invalid_share_value", "split.tip")
    err = refused(100, ExpenseSplit("itemized"))
    assert (err.code, err.field) == ("split_empty", "split.items")


def test_items_tax_tip_refused_outside_itemized():
    err = refused(100, ExpenseSplit("equal", items=(Item(100, (A,)),)))
    assert (err.code, err.field) == ("split_field_not_allowed", "split.items")
    err = refused(100, ExpenseSplit("equal", tip=5))
    assert (err.code, err.field) == ("split_field_not_allowed", "split.tip")


# --- general refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -5, 10.0, True, "10", 10**15 + 1])
def test_amount_must_be_a_positive_integer(amount: object):
    err = refused(amount, ExpenseSplit("equal"))  # type: ignore[arg-type]
    assert (err.code, err.field) == ("invalid_amount", "amount")


def test_unknown_method():
    err = refused(100, ExpenseSplit("random"))
    assert (err.code, err.field) == ("invalid_split_method", "split.method")


def test_same_person_twice():
    err = refused(100, ExpenseSplit("exact", s((A, 50), (A, 50))))
    assert (err.code, err.field) == ("duplicate_member", "split.shares.1.user_id")


def test_no_members_to_split_with():
    err = refused(100, ExpenseSplit("equal"), [])
    assert err.code == "split_empty"


# --- payers ---------------------------------------------------------------------------------


def test_several_payers_summing_to_the_amount():
    check_payers(1_000, [(A, 600), (C, 400)], M)


def test_payers_not_summing():
    with pytest.raises(SplitError) as info:
        check_payers(1_000, [(A, 600), (C, 300)], M)
    assert (info.value.code, info.value.field) == ("payers_do_not_sum", "paid_by")
    assert "900, 100 short of 1,000" in info.value.message


@pytest.mark.parametrize(
    ("paid_by", "code", "field"),
    [
        ([], "payers_empty", "paid_by"),
        ([(A, 500), ("mbr_x", 500)], "unknown_member", "paid_by.1.user_id"),
        ([(A, 500), (A, 500)], "duplicate_payer", "paid_by.1.user_id"),
        ([(A, 1_100), (B, -100)], "invalid_payer_amount", "paid_by.1.amount"),
        ([(A, 1_000), (B, 0)], "invalid_payer_amount", "paid_by.1.amount"),
        ([(A, 1_000.0)], "invalid_payer_amount", "paid_by.0.amount"),
        ([(A, True)], "invalid_payer_amount", "paid_by.0.amount"),
    ],
)
def test_payers_refused(paid_by: list[tuple[str, object]], code: str, field: str):
    with pytest.raises(SplitError) as info:
        check_payers(1_000, paid_by, M)  # type: ignore[arg-type]
    assert (info.value.code, info.value.field) == (code, field)


# --- properties -----------------------------------------------------------------------------

MEMBERS = [f"mbr_{i:02d}" for i in range(12)]


@st.composite
def expenses(draw: st.DrawFn) -> tuple[int, ExpenseSplit, list[str]]:
    n = draw(st.integers(1, len(MEMBERS)))
    members = MEMBERS[:n]
    method = draw(
        st.sampled_from(["equal", "exact", "percent", "shares", "adjustment", "itemized"])
    )
    people = draw(st.lists(st.sampled_from(members), min_size=1, max_size=n, unique=True))
    amount = draw(st.integers(1, 10**9))
    if method == "equal":
        everyone = draw(st.booleans())
        return (
            amount,
            ExpenseSplit("equal", () if everyone else s(*((p, None) for p in people))),
            members,
        )
    if method == "exact":
        cuts = sorted(
            draw(
                st.lists(st.integers(0, amount), min_size=len(people) - 1, max_size=len(people) - 1)
            )
        )
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, amount], strict=True)]
        return amount, ExpenseSplit("exact", s(*zip(people, parts, strict=True))), members
    if method == "percent":
        cuts = sorted(
            draw(
                st.lists(st.integers(0, 10_000), min_size=len(people) - 1, max_size=len(people) - 1)
            )
        )
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000], strict=True)]
        return amount, ExpenseSplit("percent", s(*zip(people, parts, strict=True))), members
    if method == "shares":
        weights = draw(st.lists(st.integers(0, 1000), min_size=len(people), max_size=len(people)))
        weights[0] += 1
        return amount, ExpenseSplit("shares", s(*zip(people, weights, strict=True))), members
    if method == "adjustment":
        # adjustments within ±amount / 2n keep everyone at or above zero: the rest is at
        # least amount / 2, so each equal part is at least amount // 2n
        bound = amount // (2 * len(people))
        adj = draw(st.lists(st.integers(-bound, bound), min_size=len(people), max_size=len(people)))
        return amount, ExpenseSplit("adjustment", s(*zip(people, adj, strict=True))), members
    items = draw(
        st.lists(
            st.tuples(
                st.integers(1, 10**6), st.lists(st.sampled_from(members), min_size=1, unique=True)
            ),
            min_size=1,
            max_size=8,
        )
    )
    tax = draw(st.integers(0, 10**5))
    tip = draw(st.integers(0, 10**5))
    total = sum(a for a, _ in items) + tax + tip
    split = ExpenseSplit(
        "itemized", items=tuple(Item(a, tuple(u)) for a, u in items), tax=tax, tip=tip
    )
    return total, split, members


@settings(max_examples=600, deadline=None)
@given(expenses())
def test_property_shares_sum_exactly_never_negative_in_member_order(case):  # type: ignore[no-untyped-def]
    amount, split, members = case
    owed = split_expense(amount, split, members)
    assert sum(a for _, a in owed) == amount
    assert all(a > 0 for _, a in owed)
    ids = [u for u, _ in owed]
    assert ids == [m for m in members if m in set(ids)]  # members order, no repeats
    assert split_expense(amount, split, members) == owed  # deterministic
    # listing the people in another order changes nothing
    flipped = ExpenseSplit(
        split.method, split.shares[::-1], split.items[::-1], split.tax, split.tip
    )
    assert split_expense(amount, flipped, members) == owed


@settings(max_examples=300, deadline=None)
@given(expenses())
def test_property_each_share_within_one_unit_of_its_exact_fraction(case):  # type: ignore[no-untyped-def]
    amount, split, members = case
    owed = dict(split_expense(amount, split, members))
    if split.method == "exact":
        assert owed == {sh.user_id: sh.value for sh in split.shares if sh.value}
        return
    if split.method == "adjustment":
        rest = amount - sum(sh.value or 0 for sh in split.shares)
        for sh in split.shares:
            exact = Fraction(rest, len(split.shares)) + (sh.value or 0)
            assert abs(owed.get(sh.user_id, 0) - exact) < 1
        return
    if split.method == "itemized":
        items_total = sum(item.amount for item in split.items)
        exact_of: dict[str, Fraction] = {}
        for item in split.items:
            for user in item.user_ids:
                part = Fraction(item.amount, len(item.user_ids)) * Fraction(amount, items_total)
                exact_of[user] = exact_of.get(user, Fraction(0)) + part
        for user, exact in exact_of.items():
            assert abs(owed.get(user, 0) - exact) < 1
        return
    if split.method == "equal":
        people = [sh.user_id for sh in split.shares] or members
        weights = dict.fromkeys(people, 1)
    else:
        weights = {sh.user_id: sh.value or 0 for sh in split.shares}
    total = sum(weights.values())
    for user, w in weights.items():
        exact = Fraction(amount * w, total)
        assert abs(owed.get(user, 0) - exact) < 1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**9), st.lists(st.integers(1, 10**6), min_size=1, max_size=6))
def test_property_payers_summing_are_accepted_others_refused(amount, parts):  # type: ignore[no-untyped-def]
    members = MEMBERS[: len(parts)]
    paid = list(zip(members, parts, strict=True))
    if sum(parts) == amount:
        check_payers(amount, paid, members)
    else:
        with pytest.raises(SplitError) as info:
            check_payers(amount, paid, members)
        assert info.value.code == "payers_do_not_sum"


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 10**6),
    st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=len(MEMBERS)),
)
def test_property_adjustment_is_the_equal_rest_plus_each_adjustment_or_refused(amount, adj):  # type: ignore[no-untyped-def]
    people = MEMBERS[: len(adj)]
    split = ExpenseSplit("adjustment", s(*zip(people, adj, strict=True)))
    rest = amount - sum(adj)
    try:
        owed = dict(split_expense(amount, split, MEMBERS))
    except SplitError as err:
        code = err.code
        # refused only when the equal part of the rest plus someone's adjustment is below 0
        assert code == "negative_share"
        assert any(Fraction(rest, len(adj)) + a < 1 for a in adj)
        return
    assert sum(owed.values()) == amount
    for user, a in zip(people, adj, strict=True):
        assert abs(owed.get(user, 0) - a - Fraction(rest, len(adj))) < 1
