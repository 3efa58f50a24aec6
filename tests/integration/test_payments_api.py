"""The payments HTTP API: payment intents, refunds, cancel, provider webhooks, the sandbox's
hosted page."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.ledger import service as ledger
from potluck.payments import sandbox_control
from potluck.payments.models import PaymentIntent, ProviderEventRecord
from potluck.payments.providers.sandbox import sandbox_of
from tests.integration.test_marketplace_helpers import events, platform_headers


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


@pytest.fixture
def acme(potluck):
    return platform_headers(potluck, "Acme")


def create(client, headers, amount=4_200, currency="EUR", **extra):
    body = {"amount": amount, "currency": currency, "payer": "ann@example.com", "purpose": "order"}
    body.update(extra)
    return client.post("/v1/payment-intents", json=body, headers=headers)


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def received_balance(potluck, intent_id):
    with potluck.db.read() as s:
        dest = s.get(PaymentIntent, intent_id).destination_account_id
        account = ledger.get_account(s, dest)
    assert account.code == "payments_received"
    return account.total


def test_a_platform_creates_pays_and_refunds_an_intent(client, potluck, acme):
    _, headers = acme
    r = create(client, headers, metadata={"order": "o-1"})
    assert r.status_code == 201, r.text
    intent = r.json()
    assert intent["status"] == "requires_payment"
    assert intent["payer_email"] == "ann@example.com"
    assert intent["metadata"] == {"order": "o-1"}

    page = client.get(intent["payment_url"].split("8000", 1)[-1])
    assert page.status_code == 200
    assert "€42.00" in page.text
    assert 'value="pay"' in page.text
    paid = client.post(f"/sandbox/pay/{intent['id']}", data={"action": "pay"})
    assert paid.status_code == 200  # followed the redirect to the page
    assert "Paid" in paid.text

    got = client.get(f"/v1/payment-intents/{intent['id']}", headers=headers).json()
    assert got["status"] == "succeeded"
    assert received_balance(potluck, intent["id"]) == 4_200

    part = client.post(
        f"/v1/payment-intents/{intent['id']}/refunds", json={"amount": 1_000}, headers=headers
    )
    assert part.status_code == 201, part.text
    assert part.json()["amount"] == 1_000
    too_much = client.post(
        f"/v1/payment-intents/{intent['id']}/refunds", json={"amount": 3_201}, headers=headers
    )
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "refund_exceeds_captured"
    rest = client.post(f"/v1/payment-intents/{intent['id']}/refunds", json={}, headers=headers)
    assert rest.status_code == 201
    assert rest.json()["amount"] == 3_200
    again = client.post(f"/v1/payment-intents/{intent['id']}/refunds", json={}, headers=headers)
    assert again.status_code == 422
    assert again.json()["code"] == "refund_exceeds_captured"
    final = client.get(f"/v1/payment-intents/{intent['id']}", headers=headers).json()
    assert final["refunded_amount"] == 4_200
    assert received_balance(potluck, intent["id"]) == 0
    assert [e["amount"] for e in events(potluck, "payment.refunded")] == [1_000, 3_200]


def test_declining_on_the_hosted_page_fails_the_intent(client, potluck, acme):
    _, headers = acme
    intent = create(client, headers).json()
    r = client.post(f"/sandbox/pay/{intent['id']}", data={"action": "decline"})
    assert "Declined" in r.text
    got = client.get(f"/v1/payment-intents/{intent['id']}", headers=headers).json()
    assert got["status"] == "failed"
    assert got["failure_reason"] == "card_declined"
    refund = client.post(f"/v1/payment-intents/{intent['id']}/refunds", json={}, headers=headers)
    assert refund.status_code == 409
    assert refund.json()["code"] == "intent_not_refundable"
    again = client.post(f"/sandbox/pay/{intent['id']}", data={"action": "pay"})
    assert again.status_code == 409


def test_cancel_only_while_open(client, potluck, acme):
    _, headers = acme
    intent = create(client, headers).json()
    r = client.post(f"/v1/payment-intents/{intent['id']}/cancel", headers=headers)
    assert r.status_code == 200
    assert r.json()["status"] == "canceled"
    assert len(events(potluck, "payment.canceled")) == 1
    again = client.post(f"/v1/payment-intents/{intent['id']}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "intent_not_cancelable"
    late = client.post(f"/sandbox/pay/{intent['id']}", data={"action": "pay"})
    assert late.status_code == 409  # the sandbox canceled it too


def test_a_platform_cannot_see_another_platforms_intents(client, potluck, acme):
    _, headers = acme
    _, other = platform_headers(potluck, "Other")
    intent = create(client, headers).json()
    for r in (
        client.get(f"/v1/payment-intents/{intent['id']}", headers=other),
        client.post(f"/v1/payment-intents/{intent['id']}/cancel", headers=other),
        client.post(f"/v1/payment-intents/{intent['id']}/refunds", json={}, headers=other),
    ):
        assert r.status_code == 404
        assert r.json()["code"] == "intent_not_found"
    assert client.get("/v1/payment-intents", headers=other).json()["data"] == []


def test_intents_are_listed_with_keyset_paging_and_status_filter(client, potluck, acme):
    _, headers = acme
    ids = [create(client, headers, amount=100 + i).json()["id"] for i in range(3)]
    sandbox_control.pay(potluck, ids[1])
    first = client.get("/v1/payment-intents?limit=2", headers=headers).json()
    assert [p["id"] for p in first["data"]] == ids[:2]
    assert first["has_more"] is True
    rest = client.get(f"/v1/payment-intents?limit=2&starting_after={ids[1]}", headers=headers)
    assert [p["id"] for p in rest.json()["data"]] == ids[2:]
    paid = client.get("/v1/payment-intents?status=succeeded", headers=headers).json()
    assert [p["id"] for p in paid["data"]] == [ids[1]]


BAD_INTENTS = [
    ({"amount": 12.5}, "validation_error"),
    ({"amount": 0}, "validation_error"),
    ({"currency": "XXX"}, "validation_error"),
    ({"payer": "usr_nobody"}, "payer_not_found"),
    ({"payer": "not@mail"}, "invalid_payer"),
    ({"purpose": "Not A Word"}, "validation_error"),
    ({"metadata": {"k": "v" * 501}}, "validation_error"),
]


def test_bad_intents_are_422_and_store_nothing(client, potluck, acme):
    _, headers = acme
    for change, code in BAD_INTENTS:
        r = create(client, headers, **change)
        assert r.status_code == 422, (change, r.text)
        assert r.json()["code"] == code, change
    assert count(potluck, PaymentIntent) == 0
    assert events(potluck, "payment.requested") == []


def test_an_idempotency_key_replays_the_same_intent(client, potluck, acme):
    _, headers = acme
    keyed = {**headers, "Idempotency-Key": "k-1"}
    a = create(client, keyed)
    b = create(client, keyed)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] == b.json()["id"]
    assert b.headers.get("Idempotent-Replayed") == "true"
    assert count(potluck, PaymentIntent) == 1


def test_webhooks_over_http_refuse_bad_signatures_and_store_valid_ones_once(client, potluck, acme):
    _, headers = acme
    intent = create(client, headers).json()
    sandbox = sandbox_of(potluck)
    body = json.dumps(
        {
            "id": "sbxevt_http",
            "type": "payment.succeeded",
            "created": int(potluck.clock.now().timestamp()),
            "data": {"intent": intent["provider_ref"], "amount": 4200, "currency": "EUR"},
        }
    ).encode()
    signed = sandbox.sign(body, now=potluck.clock.now())
    bad = client.post(
        "/v1/webhooks/sandbox", content=body, headers={"Sandbox-Signature": "t=1,v1=00"}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_signature"
    assert count(potluck, ProviderEventRecord) == 0
    assert client.post("/v1/webhooks/nope", content=body, headers=signed).status_code == 404
    ok = client.post("/v1/webhooks/sandbox", content=body, headers=signed)
    assert ok.status_code == 200
    assert ok.json()["outcome"] == "applied"
    dup = client.post("/v1/webhooks/sandbox", content=body, headers=signed)
    assert dup.json()["outcome"] == "duplicate"
    assert count(potluck, ProviderEventRecord) == 1
    assert received_balance(potluck, intent["id"]) == 4_200
