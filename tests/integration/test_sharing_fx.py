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
    # only the pair as loaded, no inverse
    with pytest.raises(DomainError) as exc, potluck.db.transaction() as s:
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
    with pytest.raises(DomainError) as exc, potluck.db.transaction() as s:
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


def test_http_expense_in_another_currency_and_the_admin_rates(potluck, monkeypatch, tmp_path):
    from potluck import bootstrap as boot
    from potluck.cli import app as cli
    from potluck.identity.service import promote_user

    ada_id, ada = person(potluck, "ada")
    _, bob = person(potluck, "bob")
    promote_user(potluck, email="ada@example.com")
    with TestClient(create_app(potluck)) as client:
        g = client.post(
            "/v1/groups",
            json={"name": "trip", "currency": "EUR", "members": ["bob@example.com"]},
            headers=ada,
        ).json()
        url = f"/v1/groups/{g['id']}/expenses"
        body = {"description": "hotel", "amount": 12_000, "currency": "USD"}
        # a JSON number as the rate is refused like a float amount; junk too; nothing written
        r = client.post(url, json=body | {"fx_rate": 0.92}, headers=ada)
        assert r.status_code == 422, r.text
        assert "fx_rate" in r.text
        r = client.post(url, json=body | {"fx_rate": "1e3"}, headers=ada)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_fx_rate")
        r = client.post(url, json=body, headers=ada)
        assert (r.status_code, r.json()["code"]) == (422, "fx_rate_missing")
        assert client.get(url, headers=ada).json()["data"] == []
        # the request's rate
        r = client.post(url, json=body | {"fx_rate": "0.9150"}, headers=ada)
        assert r.status_code == 201, r.text
        e = r.json()
        assert (e["amount"], e["currency"], e["original_amount"], e["original_currency"]) == (
            10_980,
            "EUR",
            12_000,
            "USD",
        )
        assert e["fx_rate"] == "0.915"
        assert sum(o["amount"] for o in e["owed"]) == 10_980
        # admin rates: bob is not an admin
        rates = {"rates": [{"date": "2026-01-01", "base": "GBP", "quote": "EUR", "rate": "1.17"}]}
        r = client.put("/v1/admin/fx-rates", json=rates, headers=bob)
        assert (r.status_code, r.json()["code"]) == (403, "admin_required")
        r = client.put("/v1/admin/fx-rates", json=rates, headers=ada)
        assert r.json() == {"count": 1}
        bad = {"rates": rates["rates"] + [{**rates["rates"][0], "rate": 1.2}]}
        assert client.put("/v1/admin/fx-rates", json=bad, headers=ada).status_code == 422
        # the CLI: a bad line names it and loads nothing; a good file loads (idempotent)
        monkeypatch.setattr(boot, "bootstrap", lambda: potluck)
        csv_bad = tmp_path / "bad.csv"
        csv_bad.write_text("date,base,quote,rate\n2026-01-01,CHF,EUR,1.05\n2026-01-02,CHF,EUR,x\n")
        out = CliRunner().invoke(cli, ["fx", "load", str(csv_bad)])
        assert out.exit_code == 1
        assert "line 3" in out.output
        good = tmp_path / "good.csv"
        good.write_text(
            "date,base,quote,rate\n2026-01-01,CHF,EUR,1.05\n2025-12-01,GBP,EUR,1.1500\n"
        )
        for _ in range(2):
            out = CliRunner().invoke(cli, ["fx", "load", str(good)])
            assert out.exit_code == 0, out.output
            assert "loaded 2 rates" in out.output
        listed = client.get("/v1/admin/fx-rates", headers=ada).json()
        assert [(x["base"], x["date"], x["rate"]) for x in listed["data"]] == [
            ("CHF", "2026-01-01", "1.05"),
            ("GBP", "2026-01-01", "1.17"),
            ("GBP", "2025-12-01", "1.15"),
        ]
        assert client.get("/v1/admin/fx-rates", headers=bob).status_code == 403
        # the table's rate, then a PATCH to another rate; JPY (no decimals) both ways
        r = client.post(
            url, json={"description": "pub", "amount": 3000, "currency": "GBP"}, headers=ada
        )
        assert (r.json()["amount"], r.json()["fx_rate"]) == (3510, "1.17")
        r = client.patch(f"/v1/expenses/{r.json()['id']}", json={"fx_rate": "1.2"}, headers=bob)
        assert r.status_code == 200, r.text
        assert (r.json()["amount"], r.json()["version"], r.json()["original_amount"]) == (
            3600,
            2,
            3000,
        )
        assert r.json()["history"][-1]["snapshot"]["fx_rate"] == "1.2"
        r = client.patch(f"/v1/expenses/{e['id']}", json={"fx_rate": 1.2}, headers=bob)
        assert r.status_code == 422
        # a rate already there for the day and pair is replaced
        rates["rates"][0]["rate"] = "1.1800"
        assert client.put("/v1/admin/fx-rates", json=rates, headers=ada).json() == {"count": 1}
        listed = client.get(
            "/v1/admin/fx-rates", params={"base": "GBP", "limit": 1}, headers=ada
        ).json()
        assert listed == {
            "data": [{"date": "2026-01-01", "base": "GBP", "quote": "EUR", "rate": "1.18"}],
            "has_more": True,
        }
    with potluck.db.read() as s:
        bal = {b.member.id: b.balance for b in sharing.group_balances(s, g["id"], user_id=ada_id)}
    assert sum(bal.values()) == 0
    assert bal[g["members"][0]["id"]] == (10_980 - 5490) + (3600 - 1800)
