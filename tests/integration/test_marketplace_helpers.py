"""Factories shared by the marketplace tests (no tests here, named to sit with them)."""

from __future__ import annotations

from sqlalchemy import func, select

from potluck.bus.models import OutboxEvent
from potluck.identity.service import create_platform


def platform_headers(potluck, name="Acme"):
    view, secret = create_platform(potluck, name=name)
    return view.id, {"Authorization": f"Bearer {secret}"}


def make_party(client, headers, name="Shop", kind="merchant", currency="EUR"):
    r = client.post(
        "/v1/parties", json={"name": name, "kind": kind, "currency": currency}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def put_rules(client, headers, rules, remainder_to, currency="EUR"):
    r = client.put(
        "/v1/split-rules",
        json={"currency": currency, "rules": rules, "remainder_to": remainder_to},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def pct(party, bps):
    return {"party": party, "type": "percent", "value": bps}


def fixed(party, amount):
    return {"party": party, "type": "fixed", "value": amount}


def record(client, headers, order_id, amount, currency="EUR", split=None, key=None):
    body = {"order_id": order_id, "amount": amount, "currency": currency}
    if split is not None:
        body["split"] = split
    h = dict(headers)
    if key:
        h["Idempotency-Key"] = key
    return client.post("/v1/orders", json=body, headers=h)


def balance(client, headers, party):
    r = client.get(f"/v1/parties/{party}/balance", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


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
