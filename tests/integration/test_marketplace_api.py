"""The marketplace over HTTP on SQLite and PostgreSQL: parties, split rules, orders split
through the bus, refunds, and the 422s that record nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.marketplace.models import Order, SplitRuleSet
from tests.integration.test_marketplace_helpers import (
    balance,
    count,
    events,
    fixed,
    make_party,
    pct,
    platform_headers,
    put_rules,
    record,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


@pytest.fixture
def acme(potluck):
    return platform_headers(potluck, "Acme")[1]


@pytest.fixture
def parties(client, acme):
    return [make_party(client, acme, name) for name in ("Merchant", "Courier", "Platform")]


def drain(potluck):
    potluck.bus.drain()


def problem(r, status, code, field=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


# ---------------------------------------------------------------- parties


def test_party_shape_balance_and_list(client, acme, potluck):
    r = client.post(
        "/v1/parties", json={"name": "Pizza", "kind": "merchant", "currency": "EUR"}, headers=acme
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["id"].startswith("pty_")
    assert p["kind"] == "merchant"
    assert p["balance"] == {"total": 0, "available": 0, "held": 0}
    assert client.get(f"/v1/parties/{p['id']}", headers=acme).json() == p
    assert balance(client, acme, p["id"]) == {
        "total": 0,
        "available": 0,
        "held": 0,
        "currency": "EUR",
    }
    more = [make_party(client, acme, f"P{i}") for i in range(3)]
    page = client.get("/v1/parties?limit=2", headers=acme).json()
    assert [x["id"] for x in page["data"]] == [p["id"], more[0]]
    assert page["has_more"] is True
    rest = client.get(f"/v1/parties?limit=10&starting_after={more[0]}", headers=acme).json()
    assert [x["id"] for x in rest["data"]] == more[1:]
    assert rest["has_more"] is False


def test_party_of_another_platform_is_404(client, acme, potluck):
    _, other = platform_headers(potluck, "Other")
    theirs = make_party(client, other, "Theirs")
    for path in ("", "/balance", "/ledger"):
        problem(client.get(f"/v1/parties/{theirs}{path}", headers=acme), 404, "party_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "kind": "courier", "currency": "EUR"}, "kind"),
        ({"name": "X", "kind": "merchant", "currency": "EURO"}, "currency"),
        ({"name": "", "kind": "merchant", "currency": "EUR"}, "name"),
    ],
)
def test_bad_party_is_422(client, acme, potluck, body, field):
    r = client.post("/v1/parties", json=body, headers=acme)
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get("/v1/parties", headers=acme).json()["data"] == []


# ---------------------------------------------------------------- split rules


def test_split_rules_are_versioned(client, acme, parties):
    m, c, p = parties
    first = put_rules(client, acme, [pct(c, 1000)], m)
    assert first["version"] == 1
    second = put_rules(client, acme, [pct(c, 1500), fixed(p, 50)], m)
    assert second["version"] == 2
    assert second["rules"] == [pct(c, 1500), fixed(p, 50)]
    current = client.get("/v1/split-rules?currency=EUR", headers=acme).json()
    assert current["version"] == 2
    assert current["remainder_to"] == m
    problem(client.get("/v1/split-rules?currency=USD", headers=acme), 404, "split_rules_not_found")


def test_putting_the_current_rules_again_adds_no_version(client, acme, parties, potluck):
    m, c, p = parties
    rules = [pct(c, 1000), fixed(p, 50)]
    first = put_rules(client, acme, rules, m)
    potluck.clock.advance(60)
    # A retried PUT (PUT is not covered by Idempotency-Key) returns the current version.
    again = put_rules(client, acme, rules, m)
    assert again == first
    assert count(potluck, SplitRuleSet) == 1
    # Same rules in another order, or another remainder_to, are a new version.
    reordered = put_rules(client, acme, [fixed(p, 50), pct(c, 1000)], m)
    assert reordered["version"] == 2
    other_remainder = put_rules(client, acme, [fixed(p, 50), pct(c, 1000)], c)
    assert other_remainder["version"] == 3
    # Going back to older rules is a change too: only the current version counts.
    back = put_rules(client, acme, rules, m)
    assert back["version"] == 4
    assert back["id"] != first["id"]
    assert put_rules(client, acme, rules, m) == back
    assert count(potluck, SplitRuleSet) == 4


def test_split_rules_of_one_platform_are_not_anothers(client, acme, parties, potluck):
    put_rules(client, acme, [pct(parties[1], 1000)], parties[0])
    _, other = platform_headers(potluck, "Other")
    problem(client.get("/v1/split-rules?currency=EUR", headers=other), 404, "split_rules_not_found")


def bad_rule_cases(m, c, foreign, usd):
    return [
        ({"rules": [pct(m, 6000), pct(c, 4001)], "remainder_to": m}, "percent_above_100", "rules"),
        ({"rules": [pct(m, 10001)], "remainder_to": m}, "percent_above_100", "rules.0.value"),
        ({"rules": [pct(m, 0)], "remainder_to": m}, None, "rules.0.value"),
        ({"rules": [fixed(m, -5)], "remainder_to": m}, None, "rules.0.value"),
        ({"rules": [fixed(m, 12.5)], "remainder_to": m}, None, "rules.0.value"),
        ({"rules": [pct(m, 10), pct(m, 20)], "remainder_to": m}, "duplicate_rule", "rules.1.party"),
        ({"rules": [pct("pty_nope", 10)], "remainder_to": m}, "unknown_party", "rules.0.party"),
        ({"rules": [pct(foreign, 10)], "remainder_to": m}, "unknown_party", "rules.0.party"),
        ({"rules": [pct(usd, 10)], "remainder_to": m}, "currency_mismatch", "rules.0.party"),
        ({"rules": [pct(c, 10)], "remainder_to": "pty_nope"}, "unknown_party", "remainder_to"),
        ({"rules": [], "remainder_to": m}, None, "rules"),
        (
            {"rules": [{"party": m, "type": "share", "value": 1}], "remainder_to": m},
            None,
            "rules.0.type",
        ),
    ]


def test_bad_split_rules_are_422_and_store_nothing(client, acme, parties, potluck):
    m, c, _ = parties
    _, other = platform_headers(potluck, "Other")
    foreign = make_party(client, other, "Foreign")
    usd = make_party(client, acme, "Dollar", currency="USD")
    for body, code, field in bad_rule_cases(m, c, foreign, usd):
        r = client.put("/v1/split-rules", json={"currency": "EUR", **body}, headers=acme)
        assert r.status_code == 422, (body, r.text)
        if code is not None:
            assert r.json()["code"] == code, (body, r.json())
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    assert count(potluck, SplitRuleSet) == 0


# ---------------------------------------------------------------- orders


def test_order_is_recorded_then_split_through_events(client, acme, parties, potluck):
    m, c, p = parties
    put_rules(client, acme, [pct(c, 1500), fixed(p, 100), pct(p, 500)], m)
    r = record(client, acme, "A-1", 10000, key="k-a-1")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["id"].startswith("ord_")
    assert order["order_id"] == "A-1"
    assert order["split_status"] == "pending"
    assert order["rules_version"] == 1
    assert order["allocations"] == []
    assert [e["order"] for e in events(potluck, "order.recorded")] == [order["id"]]

    drain(potluck)
    done = client.get(f"/v1/orders/{order['id']}", headers=acme).json()
    assert done["split_status"] == "completed"
    got = {a["party"]: a["amount"] for a in done["allocations"]}
    # p: 100 fixed + 5 % (500); c: 15 % (1500); m: the rest (7900)
    assert got == {c: 1500, p: 600, m: 7900}
    assert all(a["status"] == "applied" for a in done["allocations"])
    assert balance(client, acme, m)["total"] == 7900
    assert balance(client, acme, c)["available"] == 1500
    assert balance(client, acme, p)["total"] == 600

    history = client.get("/v1/splits?order_id=A-1", headers=acme).json()
    assert sorted((h["party"], h["amount"]) for h in history["data"]) == sorted(got.items())
    assert {h["transfer"] for h in history["data"]} == {
        f"split-{a['id']}" for a in done["allocations"]
    }
    by_ours = client.get(f"/v1/splits?order={order['id']}", headers=acme).json()
    assert by_ours == history

    ledger = client.get(f"/v1/parties/{m}/ledger", headers=acme).json()["data"]
    assert [(e["side"], e["posted_delta"]) for e in ledger] == [("credit", 7900)]

    credited = events(potluck, "wallet.credited")
    assert len(credited) == 3
    assert all(e["platform_id"] for e in credited)
    completed = events(potluck, "split.completed")
    assert len(completed) == 1
    assert completed[0]["order"] == order["id"]
    assert completed[0]["amount"] == 10000
    # split.completed tells the whole split: every party's credit, summing to the order.
    credits = completed[0]["credits"]
    assert sorted((c["party_id"], c["amount"]) for c in credits) == sorted(
        (e["party_id"], e["amount"]) for e in credited
    )
    assert sum(c["amount"] for c in credits) == 10000

    listed = client.get("/v1/orders?order_id=A-1", headers=acme).json()
    assert [o["id"] for o in listed["data"]] == [order["id"]]
    # the idempotent replay returns the original reply
    again = record(client, acme, "A-1", 10000, key="k-a-1")
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == order


def test_100_01_split_three_ways_allocates_every_cent(client, acme, parties, potluck):
    m, c, p = parties
    put_rules(client, acme, [pct(m, 3333), pct(c, 3333), pct(p, 3334)], m)
    order = record(client, acme, "cents", 10001).json()
    drain(potluck)
    allocations = client.get(f"/v1/orders/{order['id']}", headers=acme).json()["allocations"]
    assert sum(a["amount"] for a in allocations) == 10001
    assert sum(balance(client, acme, x)["total"] for x in parties) == 10001


def test_order_uses_the_rules_version_current_when_recorded(client, acme, parties, potluck):
    m, c, _ = parties
    put_rules(client, acme, [pct(c, 1000)], m)
    first = record(client, acme, "v1", 1000).json()
    put_rules(client, acme, [pct(c, 5000)], m)
    second = record(client, acme, "v2", 1000).json()
    drain(potluck)
    one = client.get(f"/v1/orders/{first['id']}", headers=acme).json()
    two = client.get(f"/v1/orders/{second['id']}", headers=acme).json()
    assert (one["rules_version"], two["rules_version"]) == (1, 2)
    assert {a["party"]: a["amount"] for a in one["allocations"]}[c] == 100
    assert {a["party"]: a["amount"] for a in two["allocations"]}[c] == 500


def test_order_with_its_own_split_overrides_the_rules(client, acme, parties, potluck):
    m, c, p = parties
    put_rules(client, acme, [pct(c, 1000)], m)
    split = {"rules": [fixed(p, 250), pct(c, 2500)], "remainder_to": p}
    order = record(client, acme, "own", 1000, split=split).json()
    assert order["rules_version"] == "custom"
    assert order["split"] == split
    drain(potluck)
    allocations = client.get(f"/v1/orders/{order['id']}", headers=acme).json()["allocations"]
    assert {a["party"]: a["amount"] for a in allocations} == {p: 750, c: 250}


def test_same_order_id_is_409_order_exists(client, acme, parties, potluck):
    put_rules(client, acme, [pct(parties[1], 1000)], parties[0])
    assert record(client, acme, "dup", 500).status_code == 201
    problem(record(client, acme, "dup", 500), 409, "order_exists")
    assert count(potluck, Order) == 1
    # another platform may use the same order id
    _, other = platform_headers(potluck, "Other")
    o = make_party(client, other, "O")
    put_rules(client, other, [pct(o, 1000)], o)
    assert record(client, other, "dup", 500).status_code == 201


def test_bad_orders_are_422_and_record_nothing(client, acme, parties, potluck):
    m, c, _ = parties
    problem(record(client, acme, "none", 100), 422, "split_rules_missing")
    put_rules(client, acme, [fixed(c, 300), pct(m, 5000)], m)
    problem(record(client, acme, "small", 500), 422, "split_exceeds_amount", "amount")
    problem(record(client, acme, "small", 299), 422, "split_exceeds_amount", "amount")
    problem(record(client, acme, "usd", 1000, currency="USD"), 422, "currency_mismatch", "currency")
    for amount in (0, -5, 12.5, "100"):
        r = record(client, acme, "bad", amount)
        assert r.status_code == 422
        assert "amount" in [e["field"] for e in r.json()["errors"]]
    too_much = {"rules": [pct(c, 9000), pct(m, 2000)], "remainder_to": m}
    problem(
        record(client, acme, "pct", 1000, split=too_much), 422, "percent_above_100", "split.rules"
    )
    foreign = {"rules": [pct("pty_x", 10)], "remainder_to": m}
    problem(
        record(client, acme, "f", 1000, split=foreign), 422, "unknown_party", "split.rules.0.party"
    )
    r = client.post(
        "/v1/orders", json={"order_id": "", "amount": 5, "currency": "EUR"}, headers=acme
    )
    assert r.status_code == 422
    assert count(potluck, Order) == 0
    assert events(potluck, "order.recorded") == []


def test_another_platforms_order_is_404(client, acme, parties, potluck):
    put_rules(client, acme, [pct(parties[1], 1000)], parties[0])
    order = record(client, acme, "mine", 1000).json()
    _, other = platform_headers(potluck, "Other")
    problem(client.get(f"/v1/orders/{order['id']}", headers=other), 404, "order_not_found")
    problem(
        client.post(f"/v1/orders/{order['id']}/refunds", json={"amount": 1}, headers=other),
        404,
        "order_not_found",
    )
    assert client.get("/v1/orders", headers=other).json()["data"] == []


def test_orders_are_paginated(client, acme, parties, potluck):
    put_rules(client, acme, [pct(parties[1], 1000)], parties[0])
    ids = [record(client, acme, f"o{i}", 100 + i).json()["id"] for i in range(5)]
    first = client.get("/v1/orders?limit=3", headers=acme).json()
    assert [o["id"] for o in first["data"]] == ids[:3]
    assert first["has_more"]
    rest = client.get(f"/v1/orders?limit=3&starting_after={ids[2]}", headers=acme).json()
    assert [o["id"] for o in rest["data"]] == ids[3:]
    assert not rest["has_more"]


# ---------------------------------------------------------------- refunds


def refund(client, headers, order, amount):
    return client.post(f"/v1/orders/{order}/refunds", json={"amount": amount}, headers=headers)


def test_refund_reverses_the_split_proportionally(client, acme, parties, potluck):
    m, c, p = parties
    put_rules(client, acme, [pct(c, 2000), pct(p, 1000)], m)
    order = record(client, acme, "r1", 10000).json()
    problem(refund(client, acme, order["id"], 100), 409, "split_pending")
    drain(potluck)
    r = refund(client, acme, order["id"], 5001)
    assert r.status_code == 201, r.text
    parts = {x["party"]: x["amount"] for x in r.json()["parts"]}
    assert sum(parts.values()) == 5001
    assert parts == {m: 3501, c: 1000, p: 500}
    assert balance(client, acme, m)["total"] == 7000 - 3501
    assert balance(client, acme, c)["total"] == 1000
    # refunds never exceed what was paid; never take more from a party than it got
    problem(refund(client, acme, order["id"], 5000), 422, "refund_exceeds_order", "amount")
    last = refund(client, acme, order["id"], 4999)
    assert last.status_code == 201, last.text
    assert all(balance(client, acme, x)["total"] == 0 for x in parties)
    problem(refund(client, acme, order["id"], 1), 422, "refund_exceeds_order")
    shown = client.get(f"/v1/orders/{order['id']}", headers=acme).json()
    assert shown["refunded_amount"] == 10000
    assert [x["amount"] for x in shown["refunds"]] == [5001, 4999]
    assert all(a["refunded_amount"] == a["amount"] for a in shown["allocations"])
    refunded = events(potluck, "order.refunded")
    assert [e["amount"] for e in refunded] == [5001, 4999]
    assert refunded[0]["platform_id"]
    assert refunded[0]["currency"] == "EUR"


def test_refund_a_wallet_cannot_cover_fails_whole_with_402(client, acme, parties, potluck):
    m, c, _ = parties
    put_rules(client, acme, [pct(c, 5000)], m)
    order = record(client, acme, "r2", 1000).json()
    drain(potluck)
    # the courier spends its 500 elsewhere (a transfer out of its wallet)
    wallet_c = client.get(f"/v1/parties/{c}", headers=acme).json()["wallet_account"]
    sink = client.post(
        "/v1/accounts", json={"currency": "EUR", "code": "sink"}, headers=acme
    ).json()
    spent = client.post(
        "/v1/transfers",
        json={
            "debit_account": wallet_c,
            "credit_account": sink["id"],
            "amount": 450,
            "currency": "EUR",
        },
        headers=acme,
    )
    assert spent.status_code == 201, spent.text
    before = (balance(client, acme, m), balance(client, acme, c))
    problem(refund(client, acme, order["id"], 1000), 402, "insufficient_funds")
    assert (balance(client, acme, m), balance(client, acme, c)) == before
    shown = client.get(f"/v1/orders/{order['id']}", headers=acme).json()
    assert shown["refunded_amount"] == 0
    assert shown["refunds"] == []
    assert events(potluck, "order.refunded") == []
    # a refund the courier can cover still works
    assert refund(client, acme, order["id"], 100).status_code == 201


def test_refund_amount_must_be_a_positive_integer(client, acme, parties, potluck):
    put_rules(client, acme, [pct(parties[1], 5000)], parties[0])
    order = record(client, acme, "r3", 1000).json()
    drain(potluck)
    for amount in (0, -1, 1.5):
        r = refund(client, acme, order["id"], amount)
        assert r.status_code == 422
        assert "amount" in [e["field"] for e in r.json()["errors"]]


def test_refund_replay_with_the_same_key_refunds_once(client, acme, parties, potluck):
    put_rules(client, acme, [pct(parties[1], 5000)], parties[0])
    order = record(client, acme, "r4", 1000).json()
    drain(potluck)
    headers = {**acme, "Idempotency-Key": "refund-r4"}
    first = client.post(f"/v1/orders/{order['id']}/refunds", json={"amount": 300}, headers=headers)
    again = client.post(f"/v1/orders/{order['id']}/refunds", json={"amount": 300}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    shown = client.get(f"/v1/orders/{order['id']}", headers=acme).json()
    assert shown["refunded_amount"] == 300
    assert sum(balance(client, acme, p)["total"] for p in parties) == 700


def test_party_ledger_and_split_history_are_paginated(client, acme, parties, potluck):
    m, c, _ = parties
    put_rules(client, acme, [pct(c, 1000)], m)
    for i in range(3):
        record(client, acme, f"h{i}", 1000)
    drain(potluck)
    first = client.get(f"/v1/parties/{c}/ledger?limit=2", headers=acme).json()
    assert [e["posted_delta"] for e in first["data"]] == [100, 100]
    assert first["has_more"] is True
    rest = client.get(
        f"/v1/parties/{c}/ledger?limit=2&starting_after={first['data'][-1]['id']}", headers=acme
    ).json()
    assert len(rest["data"]) == 1
    assert rest["has_more"] is False
    problem(
        client.get(f"/v1/parties/{c}/ledger?starting_after=x", headers=acme), 422, "invalid_cursor"
    )

    history = client.get("/v1/splits?limit=4", headers=acme).json()
    assert len(history["data"]) == 4
    assert history["has_more"] is True
    more = client.get(f"/v1/splits?starting_after={history['data'][-1]['id']}", headers=acme)
    assert len(more.json()["data"]) == 2
    problem(client.get("/v1/splits?order_id=nope", headers=acme), 404, "order_not_found")


# ---------------------------------------------------------------- found walking issue 3 with curl


def test_refund_a_wallet_cannot_cover_names_the_party_and_the_amount(
    client, acme, parties, potluck
):
    m, c, _ = parties
    put_rules(client, acme, [pct(c, 5000)], m)
    order = record(client, acme, "r5", 1000).json()
    drain(potluck)
    wallet_c = client.get(f"/v1/parties/{c}", headers=acme).json()["wallet_account"]
    sink = client.post("/v1/accounts", json={"currency": "EUR", "code": "sink"}, headers=acme)
    spent = client.post(
        "/v1/transfers",
        json={
            "debit_account": wallet_c,
            "credit_account": sink.json()["id"],
            "amount": 450,
            "currency": "EUR",
        },
        headers=acme,
    )
    assert spent.status_code == 201, spent.text
    body = problem(refund(client, acme, order["id"], 1000), 402, "insufficient_funds", "amount")
    assert [e["field"] for e in body["errors"]] == ["amount"]  # not the ledger's debit_account
    assert c in body["detail"]
    assert "50 available, 500 needed" in body["detail"]


def test_a_non_numeric_party_ledger_cursor_names_the_field(client, acme, parties):
    r = client.get(f"/v1/parties/{parties[0]}/ledger?starting_after=abc", headers=acme)
    problem(r, 422, "invalid_cursor", "starting_after")


def test_a_party_ledger_cursor_must_be_an_entry_of_that_wallet(client, acme, parties, potluck):
    m, c, _ = parties
    put_rules(client, acme, [pct(c, 1000)], m)
    record(client, acme, "cur", 1000)
    drain(potluck)
    of_m = client.get(f"/v1/parties/{m}/ledger", headers=acme).json()["data"][0]["id"]
    of_c = client.get(f"/v1/parties/{c}/ledger", headers=acme).json()["data"][0]["id"]
    for cursor in ("999999", of_m):  # no such entry; an entry of another party's wallet
        r = client.get(f"/v1/parties/{c}/ledger?starting_after={cursor}", headers=acme)
        problem(r, 422, "invalid_cursor", "starting_after")
    r = client.get(f"/v1/parties/{c}/ledger?starting_after={of_c}", headers=acme)
    assert r.status_code == 200
    assert r.json() == {"data": [], "has_more": False}


def test_split_rules_reply_starts_with_its_id_like_every_resource(client, acme, parties):
    m, c, _ = parties
    put = put_rules(client, acme, [pct(c, 1000)], m)
    assert list(put) == ["id", "currency", "version", "rules", "remainder_to", "created_at"]
    got = client.get("/v1/split-rules?currency=EUR", headers=acme).json()
    assert got == put
