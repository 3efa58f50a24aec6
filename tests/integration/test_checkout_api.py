"""Group orders end to end with the sandbox provider, on SQLite and PostgreSQL: four members
pay → confirmed and split; expiry with ``cancel`` (refunds) and ``host_pays`` (the host pays
the rest); force-finalize; stock that ran out; a payment after the cancel; illegal
transitions (409 naming the state, nothing changed); shares; the notification inbox."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.checkout.models import GroupTransition
from potluck.identity import passwords
from potluck.payments import sandbox_control
from tests.integration.test_checkout_helpers import (
    add,
    balance,
    count,
    create_group,
    drain,
    events,
    get,
    group_of_four,
    intent,
    pay,
    person,
    problem,
    put_item,
    shop,
    wallet_total,
)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def shares(g):
    return [m["share"] for m in g["members"]]


def test_four_members_pay_and_the_order_is_confirmed_and_split(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid, host = g["id"], s.people["alice"][1]
    assert g["status"] == "open"
    assert g["total"] == 4050
    assert shares(g) == [1013, 1013, 1012, 1012]
    assert sum(shares(g)) == g["total"]
    assert [m["is_host"] for m in g["members"]] == [True, False, False, False]
    dave = g["members"][3]
    assert dave["email"] == "dave@example.com"
    assert dave["user_id"] is None
    assert all(m["payment_url"] and m["status"] == "due" for m in g["members"])

    # Each registered member finds the invitation with the payment link in their inbox.
    bob = s.people["bob"][1]
    r = client.get("/v1/notifications", headers=bob)
    assert r.status_code == 200, r.text
    [invite] = r.json()["data"]
    assert invite["kind"] == "group_order.invitation"
    assert invite["data"]["payment_url"] == g["members"][1]["payment_url"]
    assert invite["data"]["amount"] == 1013
    # A member may read the group order; someone else gets 404.
    assert get(client, bob, gid)["id"] == gid
    _, eve = person(potluck, "eve")
    problem(client.get(f"/v1/group-orders/{gid}", headers=eve), 404, "group_order_not_found")

    for i, m in enumerate(g["members"]):
        pay(potluck, m["payment_intent"])
        drain(potluck)
        if i == 0:
            assert get(client, host, gid)["status"] == "pending"
    g = get(client, host, gid)
    assert g["status"] == "confirmed", g
    assert g["paid"] == 4050
    assert g["order"] is not None
    assert [h["status"] for h in g["history"]] == ["draft", "open", "pending", "paid", "confirmed"]
    assert all(m["status"] == "paid" for m in g["members"])
    # The escrow is empty; the marketplace split credited courier 10 % and the merchant the rest.
    assert balance(potluck, g["escrow_account"]) == 0
    assert wallet_total(client, s.headers, s.courier) == 405
    assert wallet_total(client, s.headers, s.merchant) == 3645
    r = client.get(f"/v1/orders/{g['order']}", headers=s.headers)
    assert r.status_code == 200
    assert r.json()["order_id"] == gid
    # Stock was taken: 100 − 3 pizzas.
    r = client.get("/v1/catalog/items", params={"merchant": s.merchant}, headers=s.headers)
    assert {i["sku"]: i["stock"] for i in r.json()["data"]} == {"pizza": 97, "soda": 99}
    assert len(events(potluck, "member.paid")) == 4
    assert len(events(potluck, "group.fully_paid")) == 1
    assert [e["order_id"] for e in events(potluck, "order.confirmed")] == [gid]
    assert len(events(potluck, "group.finalized")) == 1
    # Everyone is told; newest first.
    first = client.get("/v1/notifications", headers=bob).json()["data"][0]
    assert first["kind"] == "group_order.confirmed"


def test_three_of_four_pay_and_expiry_with_cancel_refunds_them(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s, fallback="cancel", expires=600)
    gid, host = g["id"], s.people["alice"][1]
    # The provider sends every webhook of the first payment twice: it counts once.
    sandbox_control.script(potluck, g["members"][0]["payment_intent"], duplicate=True)
    sandbox_control.deliver(potluck)
    for m in g["members"][1:3]:
        pay(potluck, m["payment_intent"])
    drain(potluck)
    assert len(events(potluck, "member.paid")) == 3
    assert get(client, host, gid)["paid"] == 1013 + 1013 + 1012
    assert balance(potluck, g["escrow_account"]) == 1013 + 1013 + 1012
    potluck.clock.advance(601)
    drain(potluck)
    g = get(client, host, gid)
    assert g["status"] == "expired"
    assert g["order"] is None
    assert balance(potluck, g["escrow_account"]) == 0
    statuses = [p["status"] for p in g["payments"]]
    assert statuses == ["refunded", "refunded", "refunded", "canceled"]
    for m in g["members"][:3]:
        assert intent(potluck, m["payment_intent"]).refunded_amount == m["share"]
    assert intent(potluck, g["members"][3]["payment_intent"]).status == "canceled"
    [expired] = events(potluck, "group.expired")
    assert expired["fallback"] == "cancel"
    assert expired["refunded"] == 3
    assert events(potluck, "order.confirmed") == []
    # Paying now is too late: the intent is cancelled at the provider.
    assert wallet_total(client, s.headers, s.merchant) == 0


def test_expiry_with_host_pays_has_the_host_pay_the_rest(potluck, client):
    s = shop(potluck, client, rules=False)  # no split rules: everything to the merchant
    g = group_of_four(potluck, client, s, fallback="host_pays", expires=600)
    gid, host = g["id"], s.people["alice"][1]
    for m in g["members"][:3]:
        pay(potluck, m["payment_intent"])
    drain(potluck)
    potluck.clock.advance(601)
    drain(potluck)
    g = get(client, host, gid)
    assert g["status"] == "host_paying"
    assert g["host_deadline_at"] is not None
    [remainder] = [p for p in g["payments"] if p["kind"] == "remainder"]
    assert remainder["amount"] == 1012
    assert remainder["status"] == "requires_payment"
    note = client.get("/v1/notifications", headers=host).json()["data"][0]
    assert note["kind"] == "group_order.host_payment"
    assert note["data"]["amount"] == 1012
    pay(potluck, remainder["intent"])
    drain(potluck)
    g = get(client, host, gid)
    assert g["status"] == "confirmed", g
    assert g["members"][3]["status"] == "covered"
    assert balance(potluck, g["escrow_account"]) == 0
    assert wallet_total(client, s.headers, s.merchant) == 4050
    assert wallet_total(client, s.headers, s.courier) == 0
    [expired] = events(potluck, "group.expired")
    assert expired["fallback"] == "host_pays"
    assert expired["paid_members"] == 3


def test_host_who_does_not_pay_in_time_cancels_and_refunds(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid, host = g["id"], s.people["alice"][1]
    pay(potluck, g["members"][1]["payment_intent"])
    first_carol = g["members"][2]
    pay(potluck, first_carol["payment_intent"], "failed")  # carol's card is declined
    drain(potluck)
    g = get(client, host, gid)
    note = client.get("/v1/notifications", headers=host).json()["data"][0]
    assert note["kind"] == "group_order.payment_failed"
    # Carol gets a new payment link to try again.
    carol = g["members"][2]
    assert carol["status"] == "due"
    assert carol["payment_intent"] != first_carol["payment_intent"]
    retry = client.get("/v1/notifications", headers=s.people["carol"][1]).json()["data"][0]
    assert retry["data"]["payment_url"] == carol["payment_url"]
    assert retry["data"]["attempt"] == 2
    assert [p["status"] for p in g["payments"]].count("failed") == 1
    r = client.post(f"/v1/group-orders/{gid}/force-finalize", headers=host)
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["status"] == "host_paying"
    [remainder] = [p for p in g["payments"] if p["kind"] == "remainder"]
    assert remainder["amount"] == 4050 - 1013  # everything but bob's share
    # The unpaid intents are cancelled (carol's second one too).
    for m in (0, 2, 3):
        assert intent(potluck, g["members"][m]["payment_intent"]).status == "canceled"
    potluck.clock.advance(15 * 60 + 1)
    drain(potluck)
    g = get(client, host, gid)
    assert g["status"] == "cancelled"
    assert "in time" in g["reason"]
    assert balance(potluck, g["escrow_account"]) == 0
    assert intent(potluck, remainder["intent"]).status == "canceled"


def test_stock_that_ran_out_fails_the_order_and_refunds_everyone(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid, host = g["id"], s.people["alice"][1]
    put_item(client, s.headers, s.merchant, "pizza", 1250, 2)  # someone else ate them
    for m in g["members"]:
        pay(potluck, m["payment_intent"])
    drain(potluck)
    g = get(client, host, gid)
    assert g["status"] == "cancelled"
    assert g["reason"] == "out_of_stock"
    assert [h["status"] for h in g["history"]][-2:] == ["paid", "cancelled"]
    assert all(p["status"] == "refunded" for p in g["payments"])
    assert balance(potluck, g["escrow_account"]) == 0
    [failed] = events(potluck, "order.failed")
    assert failed["reason"] == "out_of_stock: pizza"
    assert events(potluck, "order.confirmed") == []
    r = client.get("/v1/catalog/items", params={"merchant": s.merchant}, headers=s.headers)
    assert {i["sku"]: i["stock"] for i in r.json()["data"]}["pizza"] == 2  # untouched


def test_a_payment_that_lands_after_the_cancel_is_refunded(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid, host = g["id"], s.people["alice"][1]
    late = g["members"][2]["payment_intent"]
    # Carol pays at the provider; its webhook is delayed past the host's cancel, and a
    # duplicate of every webhook follows.
    sandbox_control.script(potluck, late, delay_seconds=30, duplicate=True)
    r = client.post(f"/v1/group-orders/{gid}/cancel", headers=host)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    potluck.clock.advance(31)
    sandbox_control.deliver(potluck)
    drain(potluck)
    g = get(client, host, gid)
    assert g["status"] == "cancelled"
    [carol] = [p for p in g["payments"] if p["intent"] == late]
    assert carol["status"] == "refunded"
    assert intent(potluck, late).refunded_amount == intent(potluck, late).captured_amount > 0
    assert balance(potluck, g["escrow_account"]) == 0
    assert events(potluck, "member.paid") == []


def test_illegal_transitions_are_409_naming_the_state_and_change_nothing(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid, host = g["id"], s.people["alice"][1]
    before = count(potluck, GroupTransition)
    body = problem(add(client, host, gid, "zoe@example.com"), 409, "invalid_state")
    assert "open" in body["detail"]
    assert body["status_current"] == "open"
    problem(
        client.delete(f"/v1/group-orders/{gid}/members/{g['members'][1]['id']}", headers=host),
        409,
        "invalid_state",
    )
    problem(client.post(f"/v1/group-orders/{gid}/open", headers=host), 409, "invalid_state")
    # Only the host acts; a member is told the order does not exist.
    bob = s.people["bob"][1]
    problem(
        client.post(f"/v1/group-orders/{gid}/cancel", headers=bob), 404, "group_order_not_found"
    )
    assert client.post(f"/v1/group-orders/{gid}/cancel", headers=host).status_code == 200
    after_cancel = get(client, host, gid)
    for action in ("open", "cancel", "force-finalize"):
        body = problem(
            client.post(f"/v1/group-orders/{gid}/{action}", headers=host), 409, "invalid_state"
        )
        assert body["status_current"] == "cancelled"
        assert "cancelled" in body["detail"]
    assert get(client, host, gid) == after_cancel
    assert count(potluck, GroupTransition) == before + 1
    assert len(events(potluck, "group.cancelled")) == 1

    # The host's inbox, newest first, one per page.
    page = client.get("/v1/notifications", params={"limit": 1}, headers=host).json()
    assert page["has_more"] is True
    assert page["data"][0]["kind"] == "group_order.cancelled"
    r = client.get(
        "/v1/notifications",
        params={"limit": 1, "starting_after": page["data"][0]["id"]},
        headers=host,
    )
    assert r.json()["data"][0]["kind"] == "group_order.invitation"
    assert r.json()["has_more"] is False
    problem(
        client.get("/v1/notifications", params={"starting_after": "ntf_nope"}, headers=host),
        422,
        "invalid_cursor",
    )
    # dave had no account: his messages wait for whoever registers with his email, and he
    # may read the group order then.
    _, dave = person(potluck, "dave")
    kinds = [n["kind"] for n in client.get("/v1/notifications", headers=dave).json()["data"]]
    assert kinds == ["group_order.cancelled", "group_order.invitation"]
    assert get(client, dave, gid)["status"] == "cancelled"


def test_create_refusals_and_member_rules(potluck, client):
    s = shop(potluck, client, stock=2)
    _, host = person(potluck, "alice")
    problem(
        create_group(client, host, s.merchant, items=[{"sku": "pizza", "quantity": 3}]),
        422,
        "out_of_stock",
    )
    problem(
        create_group(client, host, s.merchant, items=[{"sku": "nope", "quantity": 1}]),
        422,
        "unknown_sku",
    )
    problem(create_group(client, host, "pty_missing"), 404, "merchant_not_found")
    # People see a merchant's catalogue to choose from.
    menu = client.get(f"/v1/merchants/{s.merchant}/items", headers=host).json()["data"]
    assert [(i["sku"], i["unit_price"], i["stock"]) for i in menu] == [
        ("pizza", 1250, 2),
        ("soda", 300, 2),
    ]
    problem(client.get("/v1/merchants/pty_missing/items", headers=host), 404, "merchant_not_found")
    # A retried create with the same Idempotency-Key returns the first order.
    keyed = {**host, "Idempotency-Key": "create-1"}
    first = create_group(client, keyed, s.merchant, items=[{"sku": "soda", "quantity": 1}])
    again = create_group(client, keyed, s.merchant, items=[{"sku": "soda", "quantity": 1}])
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    problem(
        client.post("/v1/group-orders", json={"merchant": s.merchant}, headers=host),
        422,
        "validation_error",
    )
    # custom: shares must add up at open, and the reply says by how much they are off.
    r = create_group(
        client,
        host,
        s.merchant,
        split="custom",
        host_share=1000,
        items=[{"sku": "pizza", "quantity": 2}],
    )
    gid = r.json()["id"]
    assert add(client, host, gid, "bob@example.com", share=1000).status_code == 201
    problem(add(client, host, gid, "bob@example.com", share=1), 409, "member_exists")
    problem(add(client, host, gid, "carol@example.com"), 422, "share_required")
    body = problem(
        client.post(f"/v1/group-orders/{gid}/open", headers=host), 422, "shares_do_not_sum"
    )
    assert "500 missing" in body["detail"]
    assert get(client, host, gid)["status"] == "draft"
    carol_id, _ = person(potluck, "carol")
    member = add(client, host, gid, "carol@example.com", share=600).json()
    assert member["user_id"] == carol_id  # linked to her account
    # The host removes her by user id (and then may not remove themself).
    r = client.delete(f"/v1/group-orders/{gid}/members/{carol_id}", headers=host)
    assert r.status_code == 200
    assert [m["email"] for m in r.json()["members"]] == ["alice@example.com", "bob@example.com"]
    host_member = r.json()["members"][0]["id"]
    problem(
        client.delete(f"/v1/group-orders/{gid}/members/{host_member}", headers=host),
        409,
        "host_cannot_leave",
    )
    assert add(client, host, gid, "carol@example.com", share=500).status_code == 201
    g = client.post(f"/v1/group-orders/{gid}/open", headers=host).json()
    assert shares(g) == [1000, 1000, 500]
    # by_items: members pay what they claimed, the host what nobody claimed.
    r = create_group(
        client,
        host,
        s.merchant,
        split="by_items",
        items=[{"sku": "pizza", "quantity": 2}, {"sku": "soda", "quantity": 2}],
    )
    gid = r.json()["id"]
    assert (
        add(
            client,
            host,
            gid,
            "bob@example.com",
            items=[{"sku": "pizza", "quantity": 1}, {"sku": "soda", "quantity": 1}],
        ).status_code
        == 201
    )
    problem(
        add(client, host, gid, "carol@example.com", items=[{"sku": "pizza", "quantity": 2}]),
        422,
        "items_over_claimed",
    )
    g = client.post(f"/v1/group-orders/{gid}/open", headers=host).json()
    assert shares(g) == [1550, 1550]
    assert g["total"] == 3100
    mine = client.get("/v1/group-orders", headers=host).json()
    assert len(mine["data"]) == 3
    assert mine["has_more"] is False
