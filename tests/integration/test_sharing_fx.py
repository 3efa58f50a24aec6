"""Expenses in another currency than the group's (SQLite and PostgreSQL): converted once at
the request's rate or the rates table's (latest on or before the expense date), the original
amount and rate kept; shares sum exactly in the group currency; edits change currency and
rate; the admin rates endpoint and `potluck fx load`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from potluck.api.app import create_app
from potluck.errors import DomainError
from potluck.identity import passwords, tokens
from potluck.identity.service import register_user, signing_key
from potluck.sharing import fx
from potluck.sharing import service as sharing
from potluck.splits.expense import ExpenseSplit, Item, Share

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def _group(potluck, currency: str = "EUR", n: int = 3):
    users = [
        register_user(potluck, email=f"f{i}@example.com", password=PASSWORD, name=f"F{i}").id
        for i in range(n)
    ]
    with potluck.db.transaction() as s:
        g = sharing.create_group(
            s,
            user_id=users[0],
            name="trip",
            currency=currency,
            emails=[f"f{i}@example.com" for i in range(1, n)],
            now=potluck.clock.now(),
        )
    return users, g, [m.id for m in g.members]


def _load(potluck, *rows: tuple[str, str, str, str]) -> None:
    with potluck.db.transaction() as s:
        fx.upsert_rates(
            s,
            fx.check_rows((date.fromisoformat(d), b, q, r) for d, b, q, r in rows),
            now=potluck.clock.now(),
        )


def test_service_converts_at_the_given_rate_and_shares_sum_exactly(potluck):
    users, g, members = _group(potluck)
    with potluck.db.transaction() as s:
        e = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=g.id,
            description="taxi",
            amount=10_000,  # 100.00 USD
            currency="USD",
            fx_rate="0.9231",
            now=potluck.clock.now(),
        )
    assert (e.amount, e.currency) == (9231, "EUR")
    assert (e.original_amount, e.original_currency, e.fx_rate) == (10_000, "USD", "0.9231")
    assert sum(a for _, a in e.owed) == e.amount == sum(a for _, a in e.paid_by)
    assert sorted(a for _, a in e.owed) == [3077, 3077, 3077]
    # JPY has no decimals: 1,000 yen at 0.0061 EUR = 6.10 EUR; exact shares in yen are spread
    with potluck.db.transaction() as s:
        e = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=g.id,
            description="ramen",
            amount=1000,
            currency="JPY",
            fx_rate=Decimal("0.0061"),
            paid_by=[(members[0], 333), (members[1], 667)],
            split=ExpenseSplit("exact", (Share(members[0], 500), Share(members[2], 500))),
            now=potluck.clock.now(),
        )
    assert e.amount == 610
    assert dict(e.paid_by) == {members[0]: 203, members[1]: 407}
    assert dict(e.owed) == {members[0]: 305, members[2]: 305}
    with potluck.db.read() as s:
        total = {b.member.id: b.balance for b in sharing.group_balances(s, g.id, user_id=users[0])}
    assert sum(total.values()) == 0


def test_service_uses_the_latest_table_rate_on_or_before_the_date(potluck):
    users, g, members = _group(potluck, n=2)
    _load(
        potluck,
        ("2025-12-01", "USD", "EUR", "0.90"),
        ("2025-12-20", "USD", "EUR", "0.95"),
        ("2026-01-10", "USD", "EUR", "0.99"),
    )

    def create(day: str, **kw):
        with potluck.db.transaction() as s:
            return sharing.create_expense(
                s,
                user_id=users[0],
                group_id=g.id,
                description="x",
                amount=2000,
                currency="USD",
                date=date.fromisoformat(day),
                now=potluck.clock.now(),
                **kw,
            )

    assert create("2025-12-31").fx_rate == "0.95"
    assert create("2025-12-20").amount == 1900
    with pytest.raises(DomainError) as exc:
        create("2025-11-30")
    assert exc.value.code == "fx_rate_missing"
    assert "USD→EUR" in exc.value.message
    with pytest.raises(DomainError) as exc:  # only the pair as loaded, no inverse
        with potluck.db.transaction() as s:
            sharing.create_expense(
                s,
                user_id=users[0],
                group_id=g.id,
                description="x",
                amount=2000,
                currency="GBP",
                now=potluck.clock.now(),
            )
    assert exc.value.code == "fx_rate_missing"
    with pytest.raises(DomainError) as exc:
        create("2025-12-31", fx_rate=0.9)  # a float is refused
    assert exc.value.code == "invalid_fx_rate"


def test_itemized_in_another_currency_and_edits(potluck):
    users, g, members = _group(potluck)
    split = ExpenseSplit(
        "itemized",
        items=(Item(700, (members[0],)), Item(200, (members[1], members[2]))),
        tax=57,
        tip=43,
    )
    with potluck.db.transaction() as s:
        e = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=g.id,
            description="dinner",
            amount=1000,
            currency="GBP",
            fx_rate="1.1713",
            split=split,
            now=potluck.clock.now(),
        )
    assert e.amount == 1171  # 11.713 → 11.71 (half even)
    assert sum(a for _, a in e.owed) == 1171
    assert e.split["items"][0]["amount"] == 700  # the split as entered
    # a new rate only: same GBP amount, new EUR amount, a new version
    with potluck.db.transaction() as s:
        e2 = sharing.update_expense(
            s, user_id=users[1], expense_id=e.id, fx_rate="1.2", now=potluck.clock.now()
        )
    assert (e2.amount, e2.fx_rate, e2.original_amount, e2.version) == (1200, "1.2", 1000, 2)
    assert sum(a for _, a in e2.owed) == 1200
    # another currency needs the amount in it
    with pytest.raises(DomainError) as exc:
        with potluck.db.transaction() as s:
            sharing.update_expense(
                s, user_id=users[1], expense_id=e.id, currency="USD", now=potluck.clock.now()
            )
    assert exc.value.code == "amount_required"
    # back to the group currency: no conversion left
    with potluck.db.transaction() as s:
        e3 = sharing.update_expense(
            s,
            user_id=users[1],
            expense_id=e.id,
            currency="EUR",
            amount=900,
            split=ExpenseSplit("equal"),
            now=potluck.clock.now(),
        )
    assert (e3.amount, e3.original_amount, e3.original_currency, e3.fx_rate) == (
        900,
        None,
        None,
        None,
    )
    # the same rate again changes nothing: no new version
    with potluck.db.transaction() as s:
        e4 = sharing.update_expense(
            s, user_id=users[1], expense_id=e.id, amount=900, now=potluck.clock.now()
        )
    assert e4.version == e3.version


# --- HTTP ---


def person(potluck, name: str) -> tuple[str, dict[str, str]]:
    user = register_user(potluck, email=f"{name}@example.com", password=PASSWORD, name=name)
    token = tokens.encode_access_token(
        key=signing_key(potluck), user_id=user.id, now=potluck.clock.now(), ttl_seconds=3600
    )
    return user.id, {"Authorization": f"Bearer {token}"}
