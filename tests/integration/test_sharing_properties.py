"""Prove it: random expenses of every split method through the service (SQLite and
PostgreSQL). Group balances (from the ledger) sum to zero and equal Σpaid − Σowed per member,
also after random edits and deletions; recording the simplified settle-up payments brings
every balance to zero; pairwise settle-up keeps every net balance. Plus two concurrent edits
of one expense on PostgreSQL (the expense row is locked)."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from potluck.errors import DomainError
from potluck.identity import passwords
from potluck.identity.service import register_user
from potluck.money import allocate
from potluck.sharing import service as sharing
from potluck.splits.expense import ExpenseSplit, Item, Share

METHODS = ("equal", "exact", "percent", "shares", "adjustment", "itemized")


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def people(potluck, n: int) -> list[str]:
    return [
        register_user(
            potluck, email=f"p{i}@example.com", password="correct horse battery", name=f"P{i}"
        ).id
        for i in range(n)
    ]


@st.composite
def an_expense(draw, n: int):
    """(amount, paid_by as member positions, split with member positions) — valid."""
    method = draw(st.sampled_from(METHODS))
    amount = draw(st.integers(min_value=10, max_value=1_000_000))
    subset = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True).map(sorted))
    weights = draw(st.lists(st.integers(1, 9), min_size=len(subset), max_size=len(subset)))
    payers = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    paid = [
        (p, a) for p, a in zip(payers, allocate(amount, [1] * len(payers)), strict=True) if a > 0
    ]
    if method == "equal":
        split = ("equal", [(p, None) for p in subset], [], 0, 0)
    elif method == "exact":
        parts = allocate(amount, weights)
        split = ("exact", list(zip(subset, parts, strict=True)), [], 0, 0)
    elif method == "percent":
        parts = allocate(10_000, weights)
        split = ("percent", list(zip(subset, parts, strict=True)), [], 0, 0)
    elif method == "shares":
        split = ("shares", list(zip(subset, weights, strict=True)), [], 0, 0)
    elif method == "adjustment":
        cap = amount // (2 * n)
        adj = draw(st.lists(st.integers(0, cap), min_size=n, max_size=n))
        split = ("adjustment", list(enumerate(adj)), [], 0, 0)
    else:
        tax = draw(st.integers(0, amount // 10))
        tip = draw(st.integers(0, amount // 10))
        rest = amount - tax - tip
        k = min(len(subset), rest)
        items = [
            (part, [subset[i], subset[(i + 1) % len(subset)]])
            for i, part in enumerate(allocate(rest, [1] * k))
        ]
        split = ("itemized", [], items, tax, tip)
    return amount, paid, split


def to_split(split, members: list[str]) -> ExpenseSplit:
    method, shares, items, tax, tip = split
    return ExpenseSplit(
        method,
        tuple(Share(members[p], v) for p, v in shares),
        tuple(Item(a, tuple(dict.fromkeys(members[u] for u in us)), "") for a, us in items),
        tax,
        tip,
    )


def ledger_balances(potluck, group_id: str, user_id: str) -> dict[str, int]:
    with potluck.db.read() as s:
        rows = sharing.group_balances(s, group_id, user_id=user_id)
    return {b.member.id: b.balance for b in rows}


def expected(views) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for e in views:
        if e.deleted_at is not None:
            continue
        assert sum(a for _, a in e.owed) == e.amount
        for m, a in e.paid_by:
            out[m] += a
        for m, a in e.owed:
            out[m] -= a
    return out


def test_random_expenses_balance_and_settle_to_zero(potluck):
    users = people(potluck, 6)
    now = potluck.clock.now()

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data(), n=st.integers(2, 6))
    def check(data, n):
        with potluck.db.transaction() as s:
            group = sharing.create_group(
                s,
                user_id=users[0],
                name="g",
                currency="EUR",
                emails=[f"p{i}@example.com" for i in range(1, n)],
                now=now,
            )
        members = [m.id for m in group.members]
        views = {}
        for amount, paid, split in data.draw(st.lists(an_expense(n), min_size=1, max_size=6)):
            with potluck.db.transaction() as s:
                e = sharing.create_expense(
                    s,
                    user_id=users[0],
                    group_id=group.id,
                    description="x",
                    amount=amount,
                    paid_by=[(members[p], a) for p, a in paid],
                    split=to_split(split, members),
                    now=now,
                )
            views[e.id] = e
        # random edits and deletions (and a restore)
        for eid in list(views):
            action = data.draw(st.sampled_from(["keep", "edit", "delete", "delete+restore"]))
            with potluck.db.transaction() as s:
                if action == "edit":
                    amount, paid, split = data.draw(an_expense(n))
                    views[eid] = sharing.update_expense(
                        s,
                        user_id=users[1],
                        expense_id=eid,
                        amount=amount,
                        paid_by=[(members[p], a) for p, a in paid],
                        split=to_split(split, members),
                        now=now,
                    )
                elif action.startswith("delete"):
                    views[eid] = sharing.delete_expense(
                        s, user_id=users[0], expense_id=eid, now=now
                    )
                    if action == "delete+restore":
                        views[eid] = sharing.restore_expense(
                            s, user_id=users[0], expense_id=eid, now=now
                        )
        got = ledger_balances(potluck, group.id, users[0])
        assert sum(got.values()) == 0
        want = expected(views.values())
        assert got == {m: want.get(m, 0) for m in members}
        with potluck.db.read() as s:
            pairwise = sharing.settle_up(s, group.id, user_id=users[0], simplify=False)
            payments = sharing.settle_up(s, group.id, user_id=users[0], simplify=True)
        net: dict[str, int] = defaultdict(int)
        for p in pairwise:
            net[p.from_id] -= p.amount
            net[p.to_id] += p.amount
        assert {m: net.get(m, 0) for m in members} == got  # pairwise keeps net balances
        assert len(payments) <= max(0, sum(1 for v in got.values() if v) - 1)
        for p in payments:
            with potluck.db.transaction() as s:
                sharing.record_settlement(
                    s,
                    user_id=users[0],
                    group_id=group.id,
                    from_member_id=p.from_id,
                    to_member_id=p.to_id,
                    amount=p.amount,
                    method="cash",
                    now=now,
                )
        assert set(ledger_balances(potluck, group.id, users[0]).values()) <= {0}
        with potluck.db.read() as s:
            after = sharing.settle_up(s, group.id, user_id=users[0], simplify=False)
        net = defaultdict(int)
        for p in after:  # pairwise may keep a cycle of debts, but nobody is owed overall
            net[p.from_id] -= p.amount
            net[p.to_id] += p.amount
        assert set(net.values()) <= {0}

    check()


@pytest.mark.postgres_only
def test_two_concurrent_edits_of_one_expense_serialise(potluck):
    users = people(potluck, 3)
    now = potluck.clock.now()
    with potluck.db.transaction() as s:
        group = sharing.create_group(
            s,
            user_id=users[0],
            name="g",
            currency="EUR",
            emails=["p1@example.com", "p2@example.com"],
            now=now,
        )
        e = sharing.create_expense(
            s, user_id=users[0], group_id=group.id, description="x", amount=300, now=now
        )
    a, b, c = (m.id for m in group.members)
    barrier = threading.Barrier(2)
    amounts = [600, 900]

    def edit(i: int):
        barrier.wait()
        with potluck.db.transaction() as s:
            return sharing.update_expense(
                s, user_id=users[i], expense_id=e.id, amount=amounts[i], now=now
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(edit, range(2)))
    assert sorted(r.version for r in results) == [2, 3]
    last = max(results, key=lambda r: r.version)
    with potluck.db.read() as s:
        final = sharing.get_expense(s, e.id, user_id=users[0])
        history = sharing.expense_history(s, e.id)
    assert final.version == 3
    assert final.amount == last.amount
    assert [h.action for h in history] == ["created", "updated", "updated"]
    third = final.amount // 3
    assert ledger_balances(potluck, group.id, users[0]) == {
        a: final.amount - third,
        b: -third,
        c: -third,
    }


@pytest.mark.postgres_only
def test_removing_a_member_while_an_expense_is_added_never_leaves_a_balance(potluck):
    """The removal waits for the expense's share lock on the member rows: either the expense
    comes first (removal refused, 409) or the removal does (the expense leaves them out)."""
    users = people(potluck, 3)
    now = potluck.clock.now()
    outcomes = set()
    for _ in range(6):
        with potluck.db.transaction() as s:
            group = sharing.create_group(
                s,
                user_id=users[0],
                name="g",
                currency="EUR",
                emails=["p1@example.com", "p2@example.com"],
                now=now,
            )
        leaving = group.members[2].id
        barrier = threading.Barrier(2)

        def add_expense(group_id=group.id, barrier=barrier):
            barrier.wait()
            with potluck.db.transaction() as s:
                return sharing.create_expense(
                    s, user_id=users[0], group_id=group_id, description="x", amount=300, now=now
                )

        def remove(group_id=group.id, leaving=leaving, barrier=barrier):
            barrier.wait()
            try:
                with potluck.db.transaction() as s:
                    sharing.remove_member(
                        s, user_id=users[1], group_id=group_id, member_id=leaving, now=now
                    )
            except DomainError as exc:
                return exc.code
            return "removed"

        with ThreadPoolExecutor(max_workers=2) as pool:
            f1, f2 = pool.submit(add_expense), pool.submit(remove)
            expense, removal = f1.result(), f2.result()
        outcomes.add(removal)
        balances = ledger_balances(potluck, group.id, users[0])
        assert sum(balances.values()) == 0
        if removal == "removed":
            assert leaving not in dict(expense.owed)
            assert balances.get(leaving, 0) == 0
        else:
            assert removal == "balance_not_zero"
            assert balances[leaving] == -100
    assert outcomes <= {"removed", "balance_not_zero"}
