"""The ledger API for platforms, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.identity.service import create_platform


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def platform_headers(potluck, name="Acme"):
    _, secret = create_platform(potluck, name=name)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def acme(potluck):
    return platform_headers(potluck, "Acme")


def account(client, headers, currency="EUR", *, wallet=True, code="wallet"):
    body = {
        "currency": currency,
        "code": code,
        "flags": {"debits_must_not_exceed_credits": wallet},
    }
    r = client.post("/v1/accounts", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def transfer(client, headers, debit, credit, amount, **extra):
    body = {"debit_account": debit, "credit_account": credit, "amount": amount, "currency": "EUR"}
    body.update(extra)
    return client.post("/v1/transfers", json=body, headers=headers)


def balance(client, headers, account_id):
    r = client.get(f"/v1/accounts/{account_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def test_account_shape(client, acme):
    a = account(client, acme)
    assert a["id"].startswith("acc_")
    assert a["currency"] == "EUR"
    assert a["flags"] == {
        "debits_must_not_exceed_credits": True,
        "credits_must_not_exceed_debits": False,
    }
    assert a["balance"] == {"total": 0, "available": 0, "held": 0}
    for total in ("debits_posted", "credits_posted", "debits_pending", "credits_pending"):
        assert a[total] == 0


def test_transfer_moves_money_and_replays(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    r = transfer(client, acme, clearing, wallet, 1250, id="top-up-1", metadata={"ref": "x"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "top-up-1"
    assert body["status"] == "posted"
    assert body["amount"] == 1250
    assert balance(client, acme, wallet) == {"total": 1250, "available": 1250, "held": 0}

    again = transfer(client, acme, clearing, wallet, 1250, id="top-up-1", metadata={"ref": "x"})
    assert again.status_code == 200
    assert again.json() == body
    assert balance(client, acme, wallet)["total"] == 1250

    different = transfer(client, acme, clearing, wallet, 999, id="top-up-1", metadata={"ref": "x"})
    assert different.status_code == 409
    problem = different.json()
    assert different.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "transfer_exists_with_different_fields"
    assert problem["errors"][0]["field"].endswith("amount")
    assert balance(client, acme, wallet)["total"] == 1250


def test_insufficient_funds_is_402_and_changes_nothing(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    other = account(client, acme)["id"]
    assert transfer(client, acme, clearing, wallet, 100).status_code == 201
    r = transfer(client, acme, wallet, other, 101)
    assert r.status_code == 402
    assert r.json()["code"] == "insufficient_funds"
    assert balance(client, acme, wallet)["total"] == 100
    assert balance(client, acme, other)["total"] == 0


@pytest.mark.parametrize(
    ("amount", "field"),
    [(12.5, "amount"), ("1250", "amount"), (0, "amount"), (-5, "amount"), (True, "amount")],
)
def test_bad_amounts_are_422_naming_the_field(client, acme, amount, field):
    a = account(client, acme, wallet=False)["id"]
    b = account(client, acme)["id"]
    r = transfer(client, acme, a, b, amount)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["status"] == 422
    assert any(e["field"] == field for e in problem["errors"])
    assert balance(client, acme, b)["total"] == 0


def test_self_transfer_and_currency_mismatch_are_422(client, acme):
    eur = account(client, acme, wallet=False)["id"]
    eur2 = account(client, acme)["id"]
    usd = account(client, acme, "USD")["id"]
    r = transfer(client, acme, eur, eur, 10)
    assert (r.status_code, r.json()["code"]) == (422, "accounts_must_be_different")
    r = transfer(client, acme, eur, usd, 10)
    assert (r.status_code, r.json()["code"]) == (422, "currency_mismatch")
    r = transfer(client, acme, eur, eur2, 10, currency="USD")
    assert (r.status_code, r.json()["code"]) == (422, "currency_mismatch")
    r = transfer(client, acme, eur, eur2, 10, currency="ABC")
    assert r.status_code == 422


def test_hold_post_partial_and_void(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    shop = account(client, acme)["id"]
    transfer(client, acme, clearing, wallet, 1000)
    r = transfer(client, acme, wallet, shop, 600, id="hold-1", pending=True, timeout_seconds=60)
    assert r.status_code == 201
    assert r.json()["status"] == "pending"
    assert balance(client, acme, wallet) == {"total": 1000, "available": 400, "held": 600}

    r = client.post("/v1/transfers/hold-1/post", json={"amount": 450}, headers=acme)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "posted"
    assert r.json()["posted_amount"] == 450
    assert balance(client, acme, wallet) == {"total": 550, "available": 550, "held": 0}
    assert balance(client, acme, shop)["total"] == 450

    r = client.post("/v1/transfers/hold-1/void", headers=acme)
    assert (r.status_code, r.json()["code"]) == (409, "pending_transfer_already_posted")

    transfer(client, acme, wallet, shop, 100, id="hold-2", pending=True)
    r = client.post("/v1/transfers/hold-2/void", headers=acme)
    assert r.status_code == 200
    assert r.json()["status"] == "voided"
    assert balance(client, acme, wallet) == {"total": 550, "available": 550, "held": 0}


def test_expired_hold_cannot_be_posted(client, acme, potluck, clock):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    shop = account(client, acme)["id"]
    transfer(client, acme, clearing, wallet, 1000)
    transfer(client, acme, wallet, shop, 300, id="hold-x", pending=True, timeout_seconds=30)
    clock.advance(31)
    r = client.post("/v1/transfers/hold-x/post", headers=acme)
    assert (r.status_code, r.json()["code"]) == (409, "pending_transfer_expired")
    potluck.bus.drain()
    assert client.get("/v1/transfers/hold-x", headers=acme).json()["status"] == "expired"
    assert balance(client, acme, wallet) == {"total": 1000, "available": 1000, "held": 0}


def test_batch_is_all_or_nothing(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    a = account(client, acme)["id"]
    b = account(client, acme)["id"]
    batch = {
        "transfers": [
            {"debit_account": clearing, "credit_account": a, "amount": 100, "currency": "EUR"},
            {"debit_account": a, "credit_account": b, "amount": 60, "currency": "EUR"},
            {"debit_account": a, "credit_account": b, "amount": 60, "currency": "EUR"},
        ]
    }
    r = client.post("/v1/transfers/batch", json=batch, headers=acme)
    assert r.status_code == 402
    assert r.json()["index"] == 2
    assert balance(client, acme, a)["total"] == 0
    batch["transfers"].pop()
    r = client.post("/v1/transfers/batch", json=batch, headers=acme)
    assert r.status_code == 201
    assert [t["amount"] for t in r.json()["data"]] == [100, 60]
    assert balance(client, acme, a)["total"] == 40
    assert balance(client, acme, b)["total"] == 60


def test_entries_paginate(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    for i in range(5):
        assert transfer(client, acme, clearing, wallet, 10 + i, id=f"t{i}").status_code == 201
    seen = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"starting_after": cursor} if cursor else {})
        page = client.get(f"/v1/accounts/{wallet}/entries", params=params, headers=acme).json()
        seen += page["data"]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert [e["transfer"] for e in seen] == [f"t{i}" for i in range(5)]
    assert all(e["side"] == "credit" for e in seen)
    assert sum(e["posted_delta"] for e in seen) == balance(client, acme, wallet)["total"]


def test_platforms_see_only_their_own(client, acme, potluck):
    globex = platform_headers(potluck, "Globex")
    mine = account(client, acme, wallet=False)["id"]
    theirs = account(client, globex)["id"]
    mine2 = account(client, acme)["id"]
    assert client.get(f"/v1/accounts/{theirs}", headers=acme).status_code == 404
    assert client.get(f"/v1/accounts/{theirs}/entries", headers=acme).status_code == 404
    r = transfer(client, acme, mine, theirs, 10)
    assert r.status_code == 404
    transfer(client, acme, mine, mine2, 10, id="shared-name")
    assert client.get("/v1/transfers/shared-name", headers=globex).status_code == 404
    # The same client id in another platform is a different transfer.
    g2 = account(client, globex, wallet=False)["id"]
    assert transfer(client, globex, g2, theirs, 5, id="shared-name").status_code == 201
    listed = client.get("/v1/accounts", headers=acme).json()["data"]
    assert {a["id"] for a in listed} == {mine, mine2}


def test_requires_a_platform_key(client, acme):
    assert client.post("/v1/accounts", json={"currency": "EUR", "code": "x"}).status_code == 401
    bad = {"Authorization": "Bearer sk_not_a_real_key"}
    assert client.get("/v1/accounts", headers=bad).status_code == 401
