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
    # a single transfer's errors name its own fields (no batch index)
    assert r.json()["errors"][0]["field"] == "credit_account"
    assert "index" not in r.json()
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


@pytest.mark.parametrize("cursor", ["999999", "abc", "²", "99999999999999999999999", "-1"])
def test_an_entry_cursor_that_is_not_an_entry_of_the_account_is_422(client, acme, cursor):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    assert transfer(client, acme, clearing, wallet, 10, id="e1").status_code == 201
    r = client.get(
        f"/v1/accounts/{wallet}/entries", params={"starting_after": cursor}, headers=acme
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_cursor"
    assert [e["field"] for e in r.json()["errors"]] == ["starting_after"]


def test_an_entry_of_another_account_is_not_a_cursor(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    assert transfer(client, acme, clearing, wallet, 10, id="e1").status_code == 201
    entries = "/v1/accounts/{}/entries"
    theirs = client.get(entries.format(clearing), headers=acme).json()["data"][0]["id"]
    mine = client.get(entries.format(wallet), headers=acme).json()["data"][0]["id"]
    r = client.get(entries.format(wallet), params={"starting_after": theirs}, headers=acme)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_cursor"
    after = client.get(entries.format(wallet), params={"starting_after": mine}, headers=acme)
    assert after.status_code == 200
    assert after.json() == {"data": [], "has_more": False}


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


# --- GET /v1/transfers ---


def list_all(client, headers, limit=2, **filters):
    """Walk every page; returns the ids in order and how many pages it took."""
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **filters} | ({"starting_after": cursor} if cursor else {})
        r = client.get("/v1/transfers", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page["data"]) <= limit
        seen += [t["id"] for t in page["data"]]
        if not page["has_more"]:
            return seen, pages
        cursor = page["data"][-1]["id"]


def test_list_transfers_paginates_oldest_first(client, acme):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    ids = [f"t{i}" for i in range(7)]
    for i, tid in enumerate(ids):
        assert transfer(client, acme, clearing, wallet, 10 + i, id=tid).status_code == 201
    assert list_all(client, acme, limit=2) == (ids, 4)
    assert list_all(client, acme, limit=7) == (ids, 1)
    first = client.get("/v1/transfers", headers=acme).json()
    assert first["has_more"] is False
    assert [t["id"] for t in first["data"]] == ids
    shown = first["data"][3]
    assert shown == client.get("/v1/transfers/t3", headers=acme).json()
    after = client.get("/v1/transfers", params={"starting_after": "t5"}, headers=acme).json()
    assert [t["id"] for t in after["data"]] == ["t6"]
    last = client.get("/v1/transfers", params={"starting_after": "t6"}, headers=acme).json()
    assert last == {"data": [], "has_more": False}


def test_list_transfers_filters_by_account_and_status(client, acme, potluck, clock):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    a = account(client, acme)["id"]
    b = account(client, acme)["id"]
    c = account(client, acme)["id"]
    transfer(client, acme, clearing, a, 1000, id="fund-a")
    transfer(client, acme, clearing, b, 1000, id="fund-b")
    transfer(client, acme, a, b, 100, id="a-to-b")
    transfer(client, acme, b, c, 50, id="b-to-c")
    transfer(client, acme, a, c, 10, id="hold-posted", pending=True)
    transfer(client, acme, a, c, 20, id="hold-voided", pending=True)
    transfer(client, acme, b, a, 30, id="hold-expired", pending=True, timeout_seconds=30)
    transfer(client, acme, a, b, 40, id="hold-open", pending=True)
    assert client.post("/v1/transfers/hold-posted/post", headers=acme).status_code == 200
    assert client.post("/v1/transfers/hold-voided/void", headers=acme).status_code == 200
    clock.advance(31)
    potluck.bus.drain()

    # debit or credit side, in id order, across pages
    of_a, _ = list_all(client, acme, account=a)
    assert of_a == [
        "fund-a",
        "a-to-b",
        "hold-posted",
        "hold-voided",
        "hold-expired",
        "hold-open",
        "hold-posted.post",
        "hold-voided.void",
        "hold-expired.expire",
    ]
    assert list_all(client, acme, limit=100, account=a)[0] == of_a
    assert list_all(client, acme, account=c)[0] == [
        "b-to-c",
        "hold-posted",
        "hold-voided",
        "hold-posted.post",
        "hold-voided.void",
    ]
    assert list_all(client, acme, status="pending")[0] == ["hold-open"]
    # a void's own record has status voided; a post's and an expiry's are posted
    assert list_all(client, acme, status="voided")[0] == ["hold-voided", "hold-voided.void"]
    assert list_all(client, acme, status="expired")[0] == ["hold-expired"]
    posted = list_all(client, acme, limit=3, status="posted")[0]
    assert posted == [
        "fund-a",
        "fund-b",
        "a-to-b",
        "b-to-c",
        "hold-posted",
        "hold-posted.post",
        "hold-expired.expire",
    ]
    assert list_all(client, acme, account=b, status="pending")[0] == ["hold-open"]
    assert list_all(client, acme, account=clearing, status="pending")[0] == []
    everything = list_all(client, acme, limit=100)[0]
    assert len(everything) == 11
    for t in client.get("/v1/transfers", params={"limit": 100}, headers=acme).json()["data"]:
        if t["id"] in posted:
            assert t["status"] == "posted"


def test_list_transfers_refuses_bad_filters(client, acme, potluck):
    clearing = account(client, acme, wallet=False, code="clearing")["id"]
    wallet = account(client, acme)["id"]
    transfer(client, acme, clearing, wallet, 10, id="only")

    def problem(params, status, code):
        r = client.get("/v1/transfers", params=params, headers=acme)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["code"] == code
        return body

    body = problem({"status": "settled"}, 422, "validation_error")
    assert body["errors"][0]["field"] == "status"
    problem({"limit": 0}, 422, "validation_error")
    problem({"limit": 101}, 422, "validation_error")
    problem({"account": "x" * 41}, 422, "validation_error")
    body = problem({"starting_after": "no-such-transfer"}, 422, "invalid_cursor")
    assert body["errors"][0]["field"] == "starting_after"
    problem({"account": "acc_nope"}, 404, "account_not_found")
    # a cursor must be a transfer of the filtered account
    other = account(client, acme)["id"]
    body = problem({"account": other, "starting_after": "only"}, 422, "invalid_cursor")
    assert "does not touch" in body["detail"]
    # another platform's ids are unknown here, as cursor and as account
    globex = platform_headers(potluck, "Globex")
    g1 = account(client, globex, wallet=False)["id"]
    g2 = account(client, globex)["id"]
    assert transfer(client, globex, g1, g2, 5, id="theirs").status_code == 201
    problem({"starting_after": "theirs"}, 422, "invalid_cursor")
    problem({"account": g1}, 404, "account_not_found")


def test_list_transfers_shows_only_my_platforms(client, acme, potluck):
    globex = platform_headers(potluck, "Globex")
    mine = [account(client, acme, wallet=False)["id"], account(client, acme)["id"]]
    theirs = [account(client, globex, wallet=False)["id"], account(client, globex)["id"]]
    for i in range(3):
        transfer(client, acme, *mine, 10, id=f"shared-{i}")
        transfer(client, globex, *theirs, 20, id=f"shared-{i}")
        transfer(client, globex, *theirs, 30, id=f"globex-only-{i}")
    page = client.get("/v1/transfers", headers=acme).json()
    assert [t["id"] for t in page["data"]] == ["shared-0", "shared-1", "shared-2"]
    assert {t["amount"] for t in page["data"]} == {10}
    assert {t["debit_account"] for t in page["data"]} == {mine[0]}
    assert len(list_all(client, globex)[0]) == 6
    # a shared client id is a cursor within the caller's own transfers
    after = client.get("/v1/transfers", params={"starting_after": "shared-0"}, headers=acme)
    assert [t["id"] for t in after.json()["data"]] == ["shared-1", "shared-2"]


def test_list_transfers_needs_a_platform_key(client, acme):
    assert client.get("/v1/transfers").status_code == 401
    r = client.get("/v1/transfers", headers={"Authorization": "Bearer sk_not_a_real_key"})
    assert r.status_code == 401


def test_accounts_list_refuses_an_unknown_cursor(client, acme, potluck):
    mine = account(client, acme)["id"]
    globex = platform_headers(potluck, "Globex")
    theirs = account(client, globex)["id"]
    for cursor in ("acc_nope", theirs):
        r = client.get("/v1/accounts", params={"starting_after": cursor}, headers=acme)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")
    r = client.get("/v1/accounts", params={"starting_after": mine}, headers=acme)
    assert r.status_code == 200
    assert r.json() == {"data": [], "has_more": False}
