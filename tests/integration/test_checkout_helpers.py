"""Factories shared by the checkout tests (no tests here, named to sit with them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from potluck.bus.models import OutboxEvent
from potluck.identity import tokens
from potluck.identity.service import create_platform, register_user, signing_key
from potluck.ledger import service as ledger
from potluck.payments import sandbox_control
from potluck.payments import service as payments

PASSWORD = "correct horse battery"


def person(potluck, name):
    """Register ``name``@example.com; returns (user id, auth headers)."""
    user = register_user(potluck, email=f"{name}@example.com", password=PASSWORD, name=name)
    token = tokens.encode_access_token(
        key=signing_key(potluck), user_id=user.id, now=potluck.clock.now(), ttl_seconds=3600
    )
    return user.id, {"Authorization": f"Bearer {token}"}


@dataclass
class Shop:
    platform_id: str
    headers: dict[str, str]
    merchant: str
    courier: str
    people: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


def shop(potluck, client, *, stock=100, rules=True):
    """A platform with a merchant (catalogue: pizza 1250, soda 300) and a courier; split
    rules: courier 10 %, the rest to the merchant."""
    view, secret = create_platform(potluck, name="Eats")
    headers = {"Authorization": f"Bearer {secret}"}
    parties = []
    for name, kind in (("Pizzeria", "merchant"), ("Courier", "partner")):
        r = client.post(
            "/v1/parties", json={"name": name, "kind": kind, "currency": "EUR"}, headers=headers
        )
        assert r.status_code == 201, r.text
        parties.append(r.json()["id"])
    merchant, courier = parties
    for sku, name, price in (("pizza", "Pizza", 1250), ("soda", "Soda", 300)):
        put_item(client, headers, merchant, sku, price, stock, name=name)
    if rules:
        r = client.put(
            "/v1/split-rules",
            json={
                "currency": "EUR",
                "rules": [{"party": courier, "type": "percent", "value": 1000}],
                "remainder_to": merchant,
            },
            headers=headers,
        )
        assert r.status_code == 200, r.text
    return Shop(view.id, headers, merchant, courier)


def put_item(client, headers, merchant, sku, price, stock, *, name="Item"):
    r = client.post(
        "/v1/catalog/items",
        json={"merchant": merchant, "sku": sku, "name": name, "unit_price": price, "stock": stock},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def create_group(
    client,
    headers,
    merchant,
    *,
    items=None,
    split="equal",
    fallback="cancel",
    expires=3600,
    host_share=None,
):
    body = {
        "merchant": merchant,
        "items": items or [{"sku": "pizza", "quantity": 3}, {"sku": "soda", "quantity": 1}],
        "currency": "EUR",
        "split": split,
        "expires_in_seconds": expires,
        "fallback": fallback,
    }
    if host_share is not None:
        body["host_share"] = host_share
    return client.post("/v1/group-orders", json=body, headers=headers)


def add(client, headers, group_id, email, **extra):
    return client.post(
        f"/v1/group-orders/{group_id}/members", json={"email": email, **extra}, headers=headers
    )


def group_of_four(potluck, client, s, *, fallback="cancel", **kw):
    """Host alice, registered bob and carol, and dave who has no account; opened.
    Total 3 × 1250 + 300 = 4050 → equal shares 1013, 1013, 1012, 1012."""
    host = person(potluck, "alice")
    s.people["alice"] = host
    for name in ("bob", "carol"):
        s.people[name] = person(potluck, name)
    r = create_group(client, host[1], s.merchant, fallback=fallback, **kw)
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    for name in ("bob", "carol", "dave"):
        assert add(client, host[1], gid, f"{name}@example.com").status_code == 201
    r = client.post(f"/v1/group-orders/{gid}/open", headers=host[1])
    assert r.status_code == 200, r.text
    return r.json()


def get(client, headers, gid):
    r = client.get(f"/v1/group-orders/{gid}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def pay(potluck, intent_id, outcome="succeeded"):
    return sandbox_control.pay(potluck, intent_id, outcome)


def drain(potluck):
    return potluck.bus.drain()


def balance(potluck, account_id):
    with potluck.db.read() as s:
        return ledger.get_account(s, account_id).total


def wallet_total(client, headers, party):
    r = client.get(f"/v1/parties/{party}/balance", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["total"]


def intent(potluck, intent_id):
    with potluck.db.read() as s:
        return payments.get_intent(s, intent_id)


def events(potluck, event_type):
    with potluck.db.read() as s:
        return [
            e.data
            for e in s.execute(
                select(OutboxEvent).where(OutboxEvent.type == event_type).order_by(OutboxEvent.id)
            ).scalars()
        ]


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def problem(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    return body
