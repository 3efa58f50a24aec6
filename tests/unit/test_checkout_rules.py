"""Checkout's pure parts: the state machine table and the shares (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potluck.checkout import states
from potluck.checkout.models import GroupMember, GroupOrder
from potluck.checkout.service import compute_shares
from potluck.errors import DomainError


def test_terminal_states_never_change_and_every_state_is_reachable():
    assert {states.CONFIRMED, states.EXPIRED, states.CANCELLED} == states.TERMINAL
    reachable = {states.DRAFT}
    for nexts in states.TRANSITIONS.values():
        reachable |= nexts
    assert reachable == set(states.STATUSES)
    for terminal in states.TERMINAL:
        for target in states.STATUSES:
            assert not states.can_transition(terminal, target)


def test_a_refused_transition_names_the_current_state():
    with pytest.raises(states.InvalidGroupTransition) as info:
        states.check_transition("grp_1", states.CANCELLED, states.OPEN)
    assert info.value.status == 409
    assert info.value.code == "invalid_state"
    assert "cancelled" in info.value.message
    assert info.value.problem_extra() == {"status_current": "cancelled"}
    # Paid money is never un-paid: no way back to collecting.
    assert not states.can_transition(states.PAID, states.OPEN)
    assert not states.can_transition(states.PAID, states.EXPIRED)


def _group(split, lines):
    items = [{"sku": sku, "quantity": q, "unit_price": p, "amount": q * p} for sku, q, p in lines]
    return GroupOrder(split=split, items=items, total=sum(i["amount"] for i in items))


lines_strategy = st.lists(
    st.tuples(st.integers(1, 5), st.integers(1, 100_000)), min_size=1, max_size=5
).map(lambda xs: [(f"sku{i}", q, p) for i, (q, p) in enumerate(xs)])


@given(lines=lines_strategy, n=st.integers(1, 12))
def test_equal_shares_sum_exactly_and_differ_by_at_most_one(lines, n):
    group = _group("equal", lines)
    shares = compute_shares(group, [GroupMember() for _ in range(n)])
    assert sum(shares) == group.total
    assert max(shares) - min(shares) <= 1


@given(lines=lines_strategy, data=st.data())
def test_by_items_members_pay_their_claims_and_the_host_the_rest(lines, data):
    group = _group("by_items", lines)
    members = [GroupMember(claims=None)]  # the host
    left = {sku: q for sku, q, _ in lines}
    for _ in range(data.draw(st.integers(0, 3))):
        claims = []
        for sku, q in left.items():
            take = data.draw(st.integers(0, q))
            if take:
                claims.append({"sku": sku, "quantity": take})
                left[sku] -= take
        members.append(GroupMember(claims=claims))
    shares = compute_shares(group, members)
    prices = {sku: p for sku, _, p in lines}
    assert sum(shares) == group.total
    for m, share in zip(members[1:], shares[1:], strict=True):
        assert share == sum(prices[c["sku"]] * c["quantity"] for c in m.claims)
    assert shares[0] == sum(prices[sku] * q for sku, q in left.items())


def test_custom_shares_must_sum_to_the_total():
    group = _group("custom", [("a", 1, 1000)])
    members = [GroupMember(requested_share=300), GroupMember(requested_share=600)]
    with pytest.raises(DomainError) as info:
        compute_shares(group, members)
    assert info.value.code == "shares_do_not_sum"
    assert "100 missing" in info.value.message
    members[1].requested_share = 700
    assert compute_shares(group, members) == [300, 700]
