"""GET /v1/groups/{id}/reports?by=category|member|month (SQLite and PostgreSQL): deleted
expenses left out, converted expenses at their group-currency amount, settlements not
spending; member rows: Σpaid = Σshare = total, Σnet = 0; a recurring expense over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.identity import passwords, tokens
from potluck.identity.service import register_user, signing_key


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def person(potluck, name: str) -> dict[str, str]:
    user = register_user(
        potluck, email=f"{name}@example.com", password="correct horse battery", name=name
    )
    token = tokens.encode_access_token(
        key=signing_key(potluck), user_id=user.id, now=potluck.clock.now(), ttl_seconds=10**8
    )
    return {"Authorization": f"Bearer {token}"}


def test_reports_by_category_member_and_month(potluck, clock):
    clock.advance((datetime(2026, 3, 10, 8, tzinfo=UTC) - clock.now()).total_seconds())
    ada, bob = person(potluck, "ada"), person(potluck, "bob")
    with TestClient(create_app(potluck)) as client:
        g = client.post(
            "/v1/groups",
            json={"name": "flat", "currency": "EUR", "members": ["bob@example.com"]},
            headers=ada,
        ).json()
        a, b = (m["id"] for m in g["members"])
        url = f"/v1/groups/{g['id']}/expenses"

        def add(**body):
            r = client.post(url, json={"description": "x"} | body, headers=ada)
            assert r.status_code == 201, r.text
            return r.json()

        add(amount=3000, category="food", date="2026-01-05")
        add(
            amount=1001,
            category="food",
            date="2026-02-01",
            paid_by=[{"user_id": b, "amount": 1001}],
        )
        add(amount=10_000, currency="USD", fx_rate="0.9", category="travel", date="2026-02-20")
        gone = add(amount=99_999, category="food", date="2026-02-21")
        assert client.delete(f"/v1/expenses/{gone['id']}", headers=ada).status_code == 200
        rent = add(amount=50_000, category="rent", repeat="monthly")
        assert (rent["repeat"], rent["series_id"]) == ("monthly", rent["id"])
        r = client.post(
            f"/v1/groups/{g['id']}/settlements",
            json={"from": b, "to": a, "amount": 700},
            headers=bob,
        )
        assert r.status_code == 201, r.text
        # a month later the rent comes again (a timer)
        clock.advance(31 * 86_400)
        potluck.bus.drain()

        def report(by: str) -> dict:
            r = client.get(f"/v1/groups/{g['id']}/reports", params={"by": by}, headers=bob)
            assert r.status_code == 200, r.text
            return r.json()

        total = 3000 + 1001 + 9000 + 2 * 50_000
        cat = report("category")
        assert (cat["by"], cat["currency"], cat["total"]) == ("category", "EUR", total)
        assert [(x["key"], x["amount"], x["count"]) for x in cat["rows"]] == [
            ("rent", 100_000, 2),
            ("travel", 9000, 1),
            ("food", 4001, 2),
        ]
        month = report("month")
        assert [(x["key"], x["amount"]) for x in month["rows"]] == [
            ("2026-01", 3000),
            ("2026-02", 10_001),
            ("2026-03", 50_000),
            ("2026-04", 50_000),
        ]
        assert sum(x["amount"] for x in month["rows"]) == month["total"] == total
        mem = report("member")
        rows = {x["key"]: x for x in mem["rows"]}
        assert sum(x["paid"] for x in rows.values()) == total
        assert sum(x["share"] for x in rows.values()) == total
        assert sum(x["net"] for x in rows.values()) == 0
        assert rows[b]["paid"] == 1001
        assert rows[a]["paid"] == total - 1001
        assert rows[a]["share"] == rows[b]["share"] + 1  # 1001 splits 501/500
        assert (rows[b]["settlements_paid"], rows[a]["settlements_received"]) == (700, 700)
        # balances agree: net − settlements
        bal = client.get(f"/v1/groups/{g['id']}/balances", headers=ada).json()["data"]
        for x in bal:
            r_ = rows[x["member_id"]]
            assert x["balance"] == r_["net"] + r_["settlements_paid"] - r_["settlements_received"]
        r = client.get(f"/v1/groups/{g['id']}/reports", params={"by": "year"}, headers=ada)
        assert r.status_code == 422
        # PATCH without repeat keeps the series; repeat null stops it
        r = client.patch(f"/v1/expenses/{rent['id']}", json={"notes": "flat 2"}, headers=bob)
        assert r.json()["repeat"] == "monthly"
        r = client.patch(f"/v1/expenses/{rent['id']}", json={"repeat": None}, headers=bob)
        assert (r.json()["repeat"], r.json()["series_id"]) == (None, rent["id"])
        clock.advance(62 * 86_400)
        potluck.bus.drain()
        assert report("category")["rows"][0] == {
            "key": "rent",
            "amount": 100_000,
            "count": 2,
            "name": None,
            "paid": None,
            "share": None,
            "net": None,
            "settlements_paid": None,
            "settlements_received": None,
        }
