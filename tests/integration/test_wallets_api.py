"""The wallets HTTP API: balances, history, top-ups, transfers and payment requests."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.ledger.tables import _TRANSFERS
from potluck.marketplace.parties import create_party
from potluck.payments import sandbox_control
from potluck.payments.providers.sandbox import SandboxWebhook, sandbox_of
from potluck.wallets import service as wallets
from potluck.wallets.models import WalletTransfer
from tests.integration.test_wallets_helpers import available, count, events, fund, person


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
    return r.json()


def pay(client, headers, key=None, **body):
    h = dict(headers)
    if key:
        h["Idempotency-Key"] = key
    return client.post("/v1/wallet/transfers", json={"currency": "EUR", **body}, headers=h)


def test_wallet_transfers_validation_idempotency_and_history(client, potluck):
    ann, ah = person(potluck, "ann")
    bob, bh = person(potluck, "bob")
    assert client.get("/v1/wallet", headers=ah).json() == {"object": "wallet", "balances": []}
    fund(potluck, ann, 10_000)

    r = pay(client, ah, "k1", to="bob@example.com", amount=2_500, note="dinner")
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "completed"
    assert first["to_user_id"] == bob
    again = pay(client, ah, "k1", to="bob@example.com", amount=2_500, note="dinner")
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first
    assert count(potluck, WalletTransfer) == 1
    with potluck.db.read() as s:
        legs = s.scalar(
            select(func.count())
            .select_from(_TRANSFERS)
            .where(_TRANSFERS.c.code == "wallet_transfer")
        )
    assert legs == 1  # one ledger transfer for the two requests
    assert client.get("/v1/wallet", headers=ah).json()["balances"] == [
        {"currency": "EUR", "total": 7_500, "available": 7_500, "held": 0}
    ]

    problem(pay(client, ah, to=bob, amount=12.5), 422, "validation_error")
    problem(pay(client, ah, to="nobody@example.com", amount=1), 404, "recipient_not_found")
    problem(pay(client, ah, to=ann, amount=1), 422, "self_payment")
    view, _ = create_platform(potluck, name="Eats")
    with potluck.db.transaction() as s:
        usd = create_party(
            s,
            platform_id=view.id,
            name="Deli",
            kind="merchant",
            currency="USD",
            now=potluck.clock.now(),
        )
    problem(pay(client, ah, to=usd.id, amount=1), 422, "currency_mismatch")

    # Insufficient funds: 402, nothing moved, the attempt is stored and replayed.
    before = available(potluck, bob)
    broke = problem(pay(client, bh, "k2", to=ann, amount=9_999), 402, "insufficient_funds")
    assert available(potluck, bob) == before
    assert problem(pay(client, bh, "k2", to=ann, amount=9_999), 402, "insufficient_funds") == broke
    with potluck.db.read() as s:
        assert s.get(WalletTransfer, broke["transfer_id"]).status == "failed"
    assert [e["transfer_id"] for e in events(potluck, "transfer.failed")] == [broke["transfer_id"]]

    history = client.get("/v1/wallet/transactions?limit=1", headers=bh).json()
    assert history["has_more"] is True
    assert history["data"][0]["id"] == broke["transfer_id"]
    assert history["data"][0]["direction"] == "out"
    rest = client.get(
        f"/v1/wallet/transactions?starting_after={broke['transfer_id']}&currency=EUR", headers=bh
    ).json()
    assert [(t["id"], t["direction"], t["note"]) for t in rest["data"]] == [
        (first["id"], "in", "dinner")
    ]
    counterparty = rest["data"][0]["counterparty"]
    assert (counterparty["type"], counterparty["id"]) == ("user", ann)
    assert counterparty["email"] == "ann@example.com"
    assert counterparty["name"] == "ann"
    assert client.get("/v1/wallet/transactions?currency=USD", headers=bh).json()["data"] == []
    problem(
        client.get("/v1/wallet/transactions?starting_after=wtr_nope", headers=bh),
        422,
        "invalid_cursor",
    )
    assert client.get(f"/v1/wallet/transfers/{first['id']}", headers=bh).status_code == 200
    _, ch = person(potluck, "cat")
    problem(
        client.get(f"/v1/wallet/transfers/{first['id']}", headers=ch), 404, "transfer_not_found"
    )


def test_a_payment_request_is_seen_by_its_two_people_only(client, potluck):
    ann, ah = person(potluck, "ann")
    bob, bh = person(potluck, "bob")
    _, ch = person(potluck, "cat")
    fund(potluck, bob, 1_000)
    body = {"from": "bob@example.com", "amount": 600, "currency": "EUR", "note": "tickets"}
    r = client.post("/v1/wallet/requests", json=body, headers=ah)
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["direction"] == "outgoing"
    assert (
        client.get("/v1/wallet/requests", headers=bh).json()["data"][0]["direction"] == "incoming"
    )
    assert client.get("/v1/wallet/requests", headers=ch).json()["data"] == []
    for verb in ("accept", "decline", "cancel"):
        problem(
            client.post(f"/v1/wallet/requests/{req['id']}/{verb}", headers=ch),
            404,
            "request_not_found",
        )
    problem(client.get(f"/v1/wallet/requests/{req['id']}", headers=ch), 404, "request_not_found")
    problem(
        client.post(f"/v1/wallet/requests/{req['id']}/cancel", headers=bh), 403, "not_the_requester"
    )

    r = client.post(f"/v1/wallet/requests/{req['id']}/accept", headers=bh)
    assert r.status_code == 201, r.text
    assert r.json()["request"]["status"] == "accepted"
    assert r.json()["transfer"]["status"] == "completed"
    assert available(potluck, ann).total == 600
    problem(
        client.post(f"/v1/wallet/requests/{req['id']}/decline", headers=bh), 409, "invalid_state"
    )

    # A second request larger than the wallet: 402, stays pending; the requester cancels.
    req2 = client.post("/v1/wallet/requests", json={**body, "amount": 900}, headers=ah).json()
    problem(
        client.post(f"/v1/wallet/requests/{req2['id']}/accept", headers=bh),
        402,
        "insufficient_funds",
    )
    assert client.get(f"/v1/wallet/requests/{req2['id']}", headers=ah).json()["status"] == "pending"
    r = client.post(f"/v1/wallet/requests/{req2['id']}/cancel", headers=ah)
    assert r.json()["status"] == "cancelled"
    assert [e["request_id"] for e in events(potluck, "wallet.request.created")] == [
        req["id"],
        req2["id"],
    ]
    assert len(events(potluck, "wallet.request.accepted")) == 1
    assert len(events(potluck, "wallet.request.cancelled")) == 1
    problem(
        client.post("/v1/wallet/requests", json={**body, "from": "ann@example.com"}, headers=ah),
        422,
        "self_request",
    )


def test_a_top_up_webhook_delivered_three_times_credits_once(client, potluck):
    ann, ah = person(potluck, "ann")
    r = client.post(
        "/v1/wallet/top-ups",
        json={"amount": 5_000, "currency": "EUR"},
        headers={**ah, "Idempotency-Key": "t1"},
    )
    assert r.status_code == 201, r.text
    top_up = r.json()
    assert top_up["status"] == "pending"
    assert top_up["payment_url"]
    problem(
        client.post("/v1/wallet/top-ups", json={"amount": 1.5, "currency": "EUR"}, headers=ah),
        422,
        "validation_error",
    )

    sandbox_control.script(potluck, top_up["intent_id"], duplicate=True)
    assert sandbox_control.deliver(potluck) == 4  # processing and succeeded, each twice
    # The third delivery: the same signed webhook body posted again over HTTP.
    with potluck.db.read() as s:
        bodies = s.execute(select(SandboxWebhook.body)).scalars().all()
    raw = next(b for b in bodies if json.loads(b)["type"] == "payment.succeeded").encode()
    signed = sandbox_of(potluck).sign(raw, now=potluck.clock.now())
    assert client.post("/v1/webhooks/sandbox", content=raw, headers=signed).status_code == 200
    potluck.bus.drain()
    potluck.bus.drain()

    b = available(potluck, ann)
    assert (b.total, b.available) == (5_000, 5_000)
    assert [e["top_up_id"] for e in events(potluck, "wallet.topped_up")] == [top_up["id"]]
    with potluck.db.transaction() as s:  # the handler again (a redelivered event): nothing
        assert not wallets.top_up_succeeded(
            s, intent_id=top_up["intent_id"], now=potluck.clock.now()
        )
    history = client.get("/v1/wallet/transactions", headers=ah).json()["data"]
    assert [(t["kind"], t["status"], t["amount"]) for t in history] == [
        ("top_up", "succeeded", 5_000)
    ]


def test_review_and_block_answers_and_a_merchant_payment(client, potluck, monkeypatch):
    from potluck.risk import service as risk

    ann, ah = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 5_000)
    action = {"now": "review"}

    def decide(session, app, **kw):
        reasons = [{"rule": "test", "points": 60, "detail": "stub"}]
        return risk.Decision(id="", score=60, action=action["now"], reasons=reasons)

    monkeypatch.setattr(wallets, "_score", decide)
    r = pay(client, ah, to=bob, amount=1_000)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "in_review"
    assert client.get("/v1/wallet", headers=ah).json()["balances"] == [
        {"currency": "EUR", "total": 5_000, "available": 4_000, "held": 1_000}
    ]
    action["now"] = "block"
    blocked = problem(pay(client, ah, to=bob, amount=1_000), 403, "payment_blocked")
    assert blocked["reasons"] == [{"rule": "test", "points": 60, "detail": "stub"}]
    assert [e["transfer_id"] for e in events(potluck, "transfer.in_review")] == [r.json()["id"]]

    action["now"] = "allow"
    view, _ = create_platform(potluck, name="Eats")
    with potluck.db.transaction() as s:
        shop = create_party(
            s,
            platform_id=view.id,
            name="Pizza",
            kind="merchant",
            currency="EUR",
            now=potluck.clock.now(),
        )
    r = pay(client, ah, to=shop.id, amount=1_500)
    assert r.status_code == 201, r.text
    assert (r.json()["to_party_id"], r.json()["platform_id"]) == (shop.id, view.id)
    [completed] = events(potluck, "transfer.completed")
    assert completed["to_party_id"] == shop.id
    assert completed["to_user_id"] is None
    with potluck.db.read() as s:
        assert ledger.get_account(s, shop.wallet_account_id).total == 1_500
    latest = client.get("/v1/wallet/transactions?limit=1", headers=ah).json()["data"][0]
    assert latest["counterparty"] == {
        "type": "party",
        "id": shop.id,
        "platform_id": view.id,
        "name": "Pizza",
    }
