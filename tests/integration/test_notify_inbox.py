"""Notify: the person inbox's read state, the messages written from wallet and risk events,
and the platform webhooks of transfer, fraud and payout events.

Events are published here directly (as wallets and risk publish them), then the bus drained.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from potluck.api.app import create_app
from potluck.bus.outbox import publish
from potluck.identity import passwords
from potluck.identity.service import promote_user
from potluck.notify import service as webhooks
from potluck.notify.models import EmailMessage, WebhookDelivery
from tests.integration.test_checkout_helpers import person
from tests.integration.test_marketplace_helpers import make_party, platform_headers


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def emit(potluck, event_type, data):
    with potluck.db.transaction() as s:
        publish(s, event_type, data, now=potluck.clock.now())
    potluck.bus.drain()


def inbox(client, headers, **params):
    r = client.get("/v1/notifications", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def transfer(**extra):
    return {
        "transfer_id": "wtr_1",
        "from_user_id": None,
        "to_user_id": None,
        "to_party_id": None,
        "platform_id": None,
        "amount": 1250,
        "currency": "EUR",
        "note": "pizza",
        "purpose": "transfer",
        "risk_score": 0,
        **extra,
    }


def request(requester, payer, **extra):
    return {
        "request_id": "wrq_1",
        "requester_user_id": requester,
        "payer_user_id": payer,
        "amount": 3000,
        "currency": "EUR",
        "note": "rent",
        **extra,
    }


def test_wallet_and_risk_events_become_plain_messages_with_formatted_amounts(potluck, client):
    ada, ada_h = person(potluck, "ada")
    bob, bob_h = person(potluck, "bob")
    _, root_h = person(potluck, "root")
    promote_user(potluck, email="root@example.com")

    emit(potluck, "transfer.completed", transfer(from_user_id=ada, to_user_id=bob))
    emit(
        potluck,
        "wallet.topped_up",
        {
            "top_up_id": "wtu_1",
            "user_id": ada,
            "intent_id": "pi_1",
            "amount": 5000,
            "currency": "EUR",
        },
    )
    emit(potluck, "wallet.request.created", request(bob, ada))
    emit(potluck, "wallet.request.accepted", request(bob, ada))
    emit(potluck, "wallet.request.declined", request(bob, ada, request_id="wrq_2"))
    emit(
        potluck,
        "transfer.in_review",
        transfer(transfer_id="wtr_2", from_user_id=ada, to_user_id=bob, amount=90000),
    )
    emit(
        potluck,
        "transfer.rejected",
        transfer(transfer_id="wtr_2", from_user_id=ada, to_user_id=bob, amount=90000),
    )
    emit(potluck, "fraud.flagged", {
        "decision_id": "rsk_1", "subject_id": "wtr_2", "payer_user_id": ada,
        "recipient": f"user:{bob}", "amount": 90000, "currency": "EUR", "score": 65,
        "action": "review", "reasons": [{"rule": "amount_spike", "points": 40, "detail": "x"}],
    })  # fmt: skip

    got_bob = {n["kind"]: n for n in inbox(client, bob_h)}
    assert got_bob["wallet.money_received"]["title"] == "You received €12.50"
    assert got_bob["wallet.money_received"]["body"] == (
        'ada sent you €12.50 ("pizza"). It is in your wallet.'
    )
    assert got_bob["wallet.request_accepted"]["title"] == "ada accepted your request for €30.00"
    assert got_bob["wallet.request_declined"]["title"] == "ada declined your request for €30.00"

    got_ada = {n["kind"]: n for n in inbox(client, ada_h)}
    assert got_ada["wallet.payment_sent"]["body"] == 'You paid €12.50 to bob ("pizza").'
    assert got_ada["wallet.topped_up"]["title"] == "€50.00 added to your wallet"
    assert got_ada["wallet.request_received"]["title"] == "bob asks you for €30.00"
    assert "€900.00" in got_ada["wallet.payment_in_review"]["title"]
    assert got_ada["wallet.payment_rejected"]["title"] == (
        "Your payment of €900.00 was not approved"
    )
    assert got_ada["wallet.topped_up"]["data"]["top_up_id"] == "wtu_1"

    (alert,) = inbox(client, root_h)
    assert alert["kind"] == "risk.fraud_flagged"
    assert "€900.00" in alert["body"]
    assert "amount_spike" in alert["body"]

    # SMTP is not configured here: no message is queued as an email (with SMTP, every message
    # to a person with an address is: see test_notify_email.py).
    assert potluck.settings.smtp_host is None
    with potluck.db.read() as s:
        emails = s.execute(select(EmailMessage.to_address, EmailMessage.subject)).all()
    assert emails == []


def test_read_state_is_per_owner(potluck, client):
    ada, ada_h = person(potluck, "ada")
    _, bob_h = person(potluck, "bob")
    for i in range(3):
        emit(potluck, "wallet.topped_up", {"top_up_id": f"wtu_{i}", "user_id": ada,
                                           "intent_id": "pi", "amount": 100 * (i + 1),
                                           "currency": "EUR"})  # fmt: skip
    first, second, third = inbox(client, ada_h)  # newest first
    assert first["read"] is False
    assert first["read_at"] is None
    assert client.get("/v1/notifications/unread-count", headers=ada_h).json() == {"unread": 3}

    # Someone else's notification is unknown to them, read or not.
    r = client.post(f"/v1/notifications/{second['id']}/read", headers=bob_h)
    assert r.status_code == 404
    assert r.json()["code"] == "notification_not_found"
    assert inbox(client, bob_h) == []

    r = client.post(f"/v1/notifications/{second['id']}/read", headers=ada_h)
    assert r.status_code == 200, r.text
    assert r.json()["read"] is True
    read_at = r.json()["read_at"]
    potluck.clock.advance(60)
    again = client.post(f"/v1/notifications/{second['id']}/read", headers=ada_h).json()
    assert again["read_at"] == read_at  # idempotent: the first time stays
    assert [n["id"] for n in inbox(client, ada_h, unread="true")] == [first["id"], third["id"]]
    assert client.get("/v1/notifications/unread-count", headers=ada_h).json() == {"unread": 2}

    assert client.post("/v1/notifications/read-all", headers=bob_h).json() == {"marked": 0}
    assert client.post("/v1/notifications/read-all", headers=ada_h).json() == {"marked": 2}
    assert inbox(client, ada_h, unread="true") == []
    assert all(n["read"] for n in inbox(client, ada_h))
    assert client.get("/v1/notifications/unread-count", headers=ada_h).json() == {"unread": 0}
    assert client.post("/v1/notifications/nope/read", headers=ada_h).status_code == 404


def test_merchant_platforms_get_webhooks_and_a_real_wallet_payment_tells_people(potluck, client):
    platform_id, headers = platform_headers(potluck, "Eats")
    party = make_party(client, headers, "Pizzeria")
    other_platform, other_headers = platform_headers(potluck, "Other")
    settings = potluck.settings.model_copy(update={"webhook_allow_private_urls": True})
    with potluck.db.transaction() as s:
        for pid in (platform_id, other_platform):
            webhooks.create_endpoint(
                s, platform_id=pid, url="https://hooks.example.com/in", events=["*"],
                description=None, settings=settings, now=potluck.clock.now(),
                resolve=lambda _h: ["93.184.216.34"],
            )  # fmt: skip
    ada, ada_h = person(potluck, "ada")
    for t in ("transfer.completed", "transfer.failed", "transfer.in_review", "fraud.flagged",
              "payout.completed", "payout.failed"):  # fmt: skip
        assert t in webhooks.DELIVERABLE_EVENTS
    emit(potluck, "transfer.completed",
         transfer(from_user_id=ada, to_party_id=party, platform_id=platform_id))  # fmt: skip
    (paid,) = inbox(client, ada_h)
    assert paid["body"] == 'You paid €12.50 to Pizzeria ("pizza").'
    emit(potluck, "fraud.flagged", {
        "decision_id": "rsk_1", "subject_id": "wtr_9", "payer_user_id": ada,
        "recipient": f"party:{party}", "amount": 70000, "currency": "EUR", "score": 90,
        "action": "block", "reasons": [],
    })  # fmt: skip
    emit(potluck, "payout.failed", {"platform_id": platform_id, "payout_id": "po_1",
                                    "party_id": party, "amount": 500, "currency": "EUR",
                                    "status": "failed", "reason": "declined"})  # fmt: skip
    # A person-to-person transfer concerns no platform.
    bob, bob_h = person(potluck, "bob")
    emit(potluck, "transfer.completed", transfer(from_user_id=ada, to_user_id=bob))

    with potluck.db.read() as s:
        rows = s.execute(select(WebhookDelivery.platform_id, WebhookDelivery.event_type)).all()
    assert sorted(rows) == sorted(
        [
            (platform_id, "transfer.completed"),
            (platform_id, "fraud.flagged"),
            (platform_id, "payout.failed"),
        ]
    )

    # Through the wallets product itself: both people hear of it.
    from potluck.wallets import service as wallets
    from tests.integration.test_wallets_helpers import fund

    fund(potluck, ada, 10_000)
    with potluck.db.transaction() as s:
        wallets.send(
            s,
            potluck,
            payer_user_id=ada,
            to="bob@example.com",
            amount=1999,
            currency="EUR",
            note="tickets",
            client_id="t1",
            now=potluck.clock.now(),
        )
    potluck.bus.drain()
    received = inbox(client, bob_h)[0]
    assert received["title"] == "You received €19.99"
    assert received["body"] == 'ada sent you €19.99 ("tickets"). It is in your wallet.'
    assert inbox(client, ada_h)[0]["title"] == "You paid €19.99"
