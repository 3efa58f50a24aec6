"""Group export: Splitwise's CSV shape and JSON with every detail. SQLite and PostgreSQL."""

from __future__ import annotations

import csv

import pytest
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.identity.service import register_user
from tests.integration.test_sharing_api import (  # noqa: F401 (cheap_hashing: autouse)
    PASSWORD,
    cheap_hashing,
    expense,
    ids,
    make_group,
    person,
)


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def test_csv_has_splitwise_shape_and_totals_equal_balances(potluck, client):
    _, ada = person(potluck, "ada")
    # two people called Sam: their columns are made unique
    for n in (1, 2):
        register_user(potluck, email=f"sam{n}@example.com", password=PASSWORD, name="Sam")
    group = make_group(client, ada, "sam1@example.com", "sam2@example.com", "cy@example.com")
    gid = group["id"]
    a, s1, s2, cy = ids(group)
    expense(client, ada, gid, description="Dinner, Luigi's", amount=1001, date="2025-12-02")
    expense(
        client,
        ada,
        gid,
        description="Taxi",
        amount=2500,
        date="2025-12-01",
        category="transport",
        paid_by=[{"user_id": s1, "amount": 2500}],
        split={
            "method": "exact",
            "shares": [{"user_id": a, "value": 999}, {"user_id": cy, "value": 1501}],
        },
    )
    gone = expense(client, ada, gid, description="Mistake", amount=777, date="2025-12-01")
    assert client.delete(f"/v1/expenses/{gone['id']}", headers=ada).status_code == 200
    r = client.post(
        f"/v1/groups/{gid}/settlements", json={"from": cy, "to": a, "amount": 301}, headers=ada
    )
    assert r.status_code == 201

    r = client.get(f"/v1/groups/{gid}/export", headers=ada)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="Flat-{gid}.csv"'
    lines = list(csv.reader(r.text.splitlines()))
    assert lines[0] == [
        "Date",
        "Description",
        "Category",
        "Cost",
        "Currency",
        "ada",
        "Sam",
        "Sam (2)",
        "cy",
    ]
    body = lines[1:-2]
    assert [row[:5] for row in body] == [
        ["2025-12-01", "Taxi", "transport", "25.00", "EUR"],
        ["2025-12-02", "Dinner, Luigi's", "general", "10.01", "EUR"],
        [body[2][0], "cy paid ada", "Payment", "3.01", "EUR"],
    ]
    assert body[0][5:] == ["-9.99", "25.00", "0.00", "-15.01"]
    assert body[1][5:] == ["7.50", "-2.50", "-2.50", "-2.50"]  # the odd cent: Ada's share
    assert body[2][5:] == ["-3.01", "0.00", "0.00", "3.01"]
    for row in body:  # every row sums to zero, in cents
        assert sum(int(v.replace(".", "")) for v in row[5:]) == 0
    assert lines[-2] == []
    total = lines[-1]
    assert total[:5] == ["", "Total balance", "", "", "EUR"]
    b = {
        x["member_id"]: x["balance"]
        for x in client.get(f"/v1/groups/{gid}/balances", headers=ada).json()["data"]
    }
    assert [int(v.replace(".", "")) for v in total[5:]] == [b[a], b[s1], b[s2], b[cy]]
    assert b[a] == -999 + 750 - 301


def test_json_has_full_detail_and_zero_decimal_currencies(potluck, client):
    _, ada = person(potluck, "ada")
    group = make_group(client, ada, "bob@example.com", currency="JPY")
    gid = group["id"]
    a, bob = ids(group)
    expense(client, ada, gid, description="Ramen", amount=1501, date="2025-12-01")
    usd = expense(
        client, ada, gid, description="Souvenir", amount=1999, currency="USD", fx_rate="151.25"
    )
    client.post(
        f"/v1/groups/{gid}/settlements", json={"from": bob, "to": a, "amount": 100}, headers=ada
    )
    text = client.get(f"/v1/groups/{gid}/export?format=csv", headers=ada).text
    rows = list(csv.reader(text.splitlines()))
    assert rows[1][3:] == ["1501", "JPY", "750", "-750"]  # no decimals for yen
    r = client.get(f"/v1/groups/{gid}/export?format=json", headers=ada)
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith(f'-{gid}.json"')
    doc = r.json()
    assert doc["format"] == "potluck.group.v1"
    assert doc["group"]["currency"] == "JPY"
    assert [m["id"] for m in doc["members"]] == [a, bob]
    souvenir = next(e for e in doc["expenses"] if e["id"] == usd["id"])
    assert souvenir["original_amount"] == 1999
    assert souvenir["original_currency"] == "USD"
    assert souvenir["fx_rate"] == "151.25"
    assert souvenir["amount"] == usd["amount"] == 3023  # 19.99 × 151.25 = 3023.49 → 3023
    assert {p["member_id"] for p in souvenir["paid_by"]} == {a}
    assert sum(o["amount"] for o in souvenir["owed"]) == 3023
    assert doc["settlements"][0]["amount"] == 100
    balances = client.get(f"/v1/groups/{gid}/balances", headers=ada).json()["data"]
    assert {x["member_id"]: x["balance"] for x in doc["balances"]} == {
        x["member_id"]: x["balance"] for x in balances
    }
    assert sum(x["balance"] for x in doc["balances"]) == 0
