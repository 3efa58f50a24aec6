"""Wallet pages (TestClient, SQLite and PostgreSQL): top-up through the hosted page, send with
insufficient funds (the error next to the amount, nothing moved), the send form twice with
one key (one transfer), a blocked payment in plain words, another person's transfer is a 404
page, requests asked and paid."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from potluck.risk import service as risk
from potluck.wallets import service as wallets
from potluck.wallets.models import WalletTransfer
from tests.integration.test_checkout_helpers import drain, pay, person
from tests.integration.web_helpers import cheap_hashing_fixture, client_fixture, sign_in  # noqa: F401 - fixtures


def available(potluck, user_id, currency="EUR"):
    with potluck.db.read() as s:
        rows = {b.currency: b for b in wallets.balances(s, user_id=user_id)}
    return rows[currency].available if currency in rows else 0


def transfers(potluck, status):
    with potluck.db.read() as s:
        return s.scalar(
            select(func.count()).select_from(WalletTransfer).where(WalletTransfer.status == status)
        )


def top_up(potluck, client, csrf, amount="20.00"):
    r = client.post(
        "/wallet/top-up",
        data={
            "csrf_token": csrf,
            "idempotency_key": f"top-{amount}",
            "amount": amount,
            "currency": "EUR",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert "/sandbox/pay/" in location  # the provider's hosted page
    pay(potluck, location.rsplit("/", 1)[1])
    drain(potluck)


def test_send_insufficient_then_twice_with_one_key_and_404_for_others(potluck, client):
    alice_id, _ = person(potluck, "alice")
    bob_id, _ = person(potluck, "bob")
    carol_id, _ = person(potluck, "carol")
    csrf = sign_in(potluck, client, alice_id)
    assert "Your wallet is empty" in client.get("/wallet").text
    top_up(potluck, client, csrf)
    page = client.get("/wallet")
    assert re.search(r'balance-available"><strong>€20.00<', page.text)
    assert "Top-up" in page.text

    form = {
        "csrf_token": csrf,
        "idempotency_key": "send-1",
        "to": "bob@example.com",
        "amount": "50",
        "currency": "EUR",
        "note": "concert",
    }
    r = client.post("/wallet/send", data=form)
    assert r.status_code == 200  # after the redirect to the form, filled in again
    assert re.search(r'id="amount-error">Not enough money in your wallet: €20.00 available', r.text)
    assert 'aria-invalid="true"' in r.text
    assert 'value="50.00"' in r.text
    assert available(potluck, alice_id) == 2000
    assert available(potluck, bob_id) == 0
    assert transfers(potluck, "failed") == 1  # the attempt is kept, nothing moved

    form = dict(form, idempotency_key="send-2", amount="5")
    first = client.post("/wallet/send", data=form, follow_redirects=False)
    second = client.post("/wallet/send", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert transfers(potluck, "completed") == 1
    assert available(potluck, alice_id) == 1500
    assert available(potluck, bob_id) == 500
    page = client.get(first.headers["location"])
    assert "Payment to bob@example.com" in page.text
    assert re.search(r'id="transfer-status">\s*Sent.', page.text)
    history = client.get("/wallet/history")
    assert "To bob@example.com" in history.text
    assert "−€5.00" in history.text

    r = client.post("/wallet/send", data=dict(form, idempotency_key="send-3", to="nobody@x.org"))
    assert r.status_code == 422
    assert re.search(r'id="to-error">nobody is known as nobody@x.org', r.text)
    r = client.post("/wallet/send", data=dict(form, idempotency_key="send-4", amount="1.234"))
    assert re.search(r'id="amount-error">EUR has 2 decimal places', r.text)

    # A payment our risk checks block: said in plain words, nothing moved.
    with potluck.db.transaction() as db:
        risk.add_to_blocklist(
            db, kind="user", value=carol_id, reason="test", created_by=None, now=potluck.clock.now()
        )
    r = client.post(
        "/wallet/send", data=dict(form, idempotency_key="send-5", to="carol@example.com")
    )
    assert "Blocked by our safety checks. Nothing was sent." in r.text
    assert available(potluck, alice_id) == 1500
    assert available(potluck, carol_id) == 0

    sign_in(potluck, client, carol_id)
    r = client.get(first.headers["location"])
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    assert (
        client.get(f"/wallet/send?retry={first.headers['location'].rsplit('/', 1)[1]}").status_code
        == 404
    )


def test_requests_ask_pay_decline(potluck, client):
    alice_id, _ = person(potluck, "alice")
    bob_id, _ = person(potluck, "bob")
    bob_csrf = sign_in(potluck, client, bob_id)
    ask = {
        "csrf_token": bob_csrf,
        "idempotency_key": "ask-1",
        "from": "alice@example.com",
        "amount": "3",
        "currency": "EUR",
        "note": "coffee",
    }
    assert client.post("/wallet/requests", data=ask).status_code == 200
    assert client.post("/wallet/requests", data=ask).status_code == 200  # same key: one
    ask2 = dict(ask, idempotency_key="ask-2", amount="4", note="cake")
    client.post("/wallet/requests", data=ask2)
    with potluck.db.read() as s:
        rows, _ = wallets.list_requests(s, user_id=bob_id, limit=10)
    assert len(rows) == 2
    coffee = next(r for r in rows if r.note == "coffee")
    cake = next(r for r in rows if r.note == "cake")

    alice_csrf = sign_in(potluck, client, alice_id)
    page = client.get("/wallet/requests")
    assert "bob@example.com</strong> asks €3.00 for coffee" in page.text
    assert "(2 waiting for you)" in client.get("/wallet").text
    # Nothing in the wallet yet: the request stays open, the reason is shown.
    r = client.post(f"/wallet/requests/{coffee.id}/accept", data={"csrf_token": alice_csrf})
    assert "Not enough money in your wallet to pay this request" in r.text
    top_up(potluck, client, alice_csrf, "10")
    r = client.post(f"/wallet/requests/{coffee.id}/accept", data={"csrf_token": alice_csrf})
    assert "Paid." in r.text
    r = client.post(f"/wallet/requests/{cake.id}/decline", data={"csrf_token": alice_csrf})
    assert "Declined." in r.text
    assert available(potluck, alice_id) == 700
    assert available(potluck, bob_id) == 300
