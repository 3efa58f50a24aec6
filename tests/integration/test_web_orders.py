"""Group order pages (TestClient, SQLite and PostgreSQL): create from the form (refusals
next to their field; twice with one idempotency key → one group order), another person's
order is a 404 page, the live status partial shows a payment, host actions."""

from __future__ import annotations

import re

from potluck.checkout.models import GroupOrder
from tests.integration.test_checkout_helpers import count, drain, pay, person, shop
from tests.integration.web_helpers import cheap_hashing_fixture, client_fixture, sign_in  # noqa: F401 - fixtures


def browser(potluck, client, name):
    """Sign ``name`` in: a session cookie on the client; returns (user id, csrf token)."""
    user_id, _ = person(potluck, name)
    return user_id, sign_in(potluck, client, user_id)


def create_form(merchant, csrf, **extra):
    form = {
        "csrf_token": csrf,
        "idempotency_key": "form-key-1",
        "merchant": merchant,
        "sku": ["pizza", "soda"],
        "qty": ["2", "1"],
        "split": "equal",
        "expires_in": "3600",
        "fallback": "cancel",
        "invites": "bob@example.com",
        "open_now": "1",
    }
    form.update(extra)
    return form


def group_ids(potluck):
    from sqlalchemy import select

    with potluck.db.read() as s:
        return list(s.scalars(select(GroupOrder.id)))


def refusals_next_to_their_field(potluck, client, merchant, csrf):
    """Refused forms: each error next to its field, nothing created, the key still usable."""
    r = client.post("/orders", data=create_form(merchant, csrf, qty=["101", "0"]))
    assert r.status_code == 422
    assert re.search(r'id="qty-0-error">[^<]*pizza: 101 wanted, 100 in stock', r.text)
    assert 'aria-invalid="true"' in r.text
    assert "form-key-1" in r.text
    r = client.post("/orders", data=create_form(merchant, csrf, qty=["0", "0"]))
    assert re.search(r'id="items-error">choose at least one item', r.text)
    r = client.post("/orders", data=create_form(merchant, csrf, invites="not-an-email"))
    assert re.search(r'id="invites-error">not-an-email: ', r.text)
    r = client.post(
        "/orders", data=create_form(merchant, csrf, split="custom", invites="bob@example.com 5")
    )
    assert r.status_code == 422
    assert "custom shares sum to" in r.text
    assert count(potluck, GroupOrder) == 0


def test_create_twice_with_one_key_is_one_order_and_another_person_gets_404(potluck, client):
    s = shop(potluck, client)
    bob_id, _ = person(potluck, "bob")
    _, csrf = browser(potluck, client, "alice")

    page = client.get("/orders/new")
    assert page.status_code == 200
    assert "Pizzeria" in page.text
    assert 'name="idempotency_key"' in page.text
    page = client.get(f"/orders/new?merchant={s.merchant}")
    assert "Pizza" in page.text
    assert "€12.50" in page.text

    refusals_next_to_their_field(potluck, client, s.merchant, csrf)
    form = create_form(s.merchant, csrf)  # the same key, corrected, creates once
    first = client.post("/orders", data=form, follow_redirects=False)
    assert first.status_code == 303, first.text
    second = client.post("/orders", data=form, follow_redirects=False)
    assert second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert count(potluck, GroupOrder) == 1
    gid = group_ids(potluck)[0]
    assert first.headers["location"] == f"/orders/{gid}"

    page = client.get(f"/orders/{gid}")
    assert page.status_code == 200
    assert "Pay my share" in page.text
    assert "€14.00" in page.text
    assert "bob@example.com" in page.text
    assert "cancelled and everyone who" in page.text
    listing = client.get("/orders")
    assert f"/orders/{gid}" in listing.text

    # Bob is a member: he sees it (as an invitation in his list too).
    sign_in(potluck, client, bob_id)
    assert client.get(f"/orders/{gid}").status_code == 200
    assert f"/orders/{gid}" in client.get("/orders").text
    assert f'href="/orders/{gid}"' in client.get("/dashboard").text  # his inbox invitation
    # Carol is not: a 404 page, for the page, its partial and the host's actions.
    _, carol_csrf = browser(potluck, client, "carol")
    for path in (f"/orders/{gid}", f"/orders/{gid}/status", "/orders/grp_nope"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "text/html" in r.headers["content-type"]
    r = client.post(f"/orders/{gid}/cancel", data={"csrf_token": carol_csrf})
    assert r.status_code == 404
    with potluck.db.read() as db:
        assert db.get(GroupOrder, gid).status == "open"


def test_status_partial_reflects_a_payment_and_the_order_confirms(potluck, client):
    s = shop(potluck, client)
    bob_id, _ = person(potluck, "bob")
    alice_id, csrf = browser(potluck, client, "alice")
    r = client.post("/orders", data=create_form(s.merchant, csrf), follow_redirects=False)
    gid = r.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/orders/{gid}")
    v = re.search(r"status\?v=([0-9a-f]+)", page.text).group(1)

    with potluck.db.read() as db:
        from potluck.checkout.service import get_group_order

        g = get_group_order(db, gid, user_id=alice_id)
    bob = next(m for m in g.members if m.user_id == bob_id)
    alice = next(m for m in g.members if m.is_host)

    live = client.get(f"/orders/{gid}/status?v={v}", headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert "HX-Refresh" not in live.headers
    assert live.text.count("Not paid yet") == 2

    pay(potluck, bob.payment_intent)
    drain(potluck)
    live = client.get(f"/orders/{gid}/status?v={v}", headers={"HX-Request": "true"})
    assert live.headers.get("HX-Refresh") == "true"  # the page reloads: a member paid
    assert live.text.count("Not paid yet") == 1
    assert re.search(rf'id="member-{bob.id}".*?member-status">Paid<', live.text, re.S)
    assert "Some shares are paid" in live.text
    assert "€14.00 of €28.00" in live.text

    pay(potluck, alice.payment_intent)
    drain(potluck)
    live = client.get(f"/orders/{gid}/status")
    assert 'id="order-status">Confirmed<' in live.text
    assert "hx-trigger" not in live.text  # a finished order stops polling
    page = client.get(f"/orders/{gid}")
    assert "merchant order placed" in page.text  # the history


def test_draft_members_open_pay_the_rest_and_cancel(potluck, client):
    s = shop(potluck, client)
    _, csrf = browser(potluck, client, "alice")
    form = create_form(s.merchant, csrf, invites="", open_now="")
    del form["open_now"]
    r = client.post("/orders", data=form, follow_redirects=False)
    gid = r.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/orders/{gid}")
    assert "Draft" in page.text
    assert "Add someone" in page.text

    add = {"csrf_token": csrf, "idempotency_key": "add-1", "email": "dave@example.com"}
    assert client.post(f"/orders/{gid}/members", data=add).status_code == 200
    assert client.post(f"/orders/{gid}/members", data=add).status_code == 200  # same key
    again = dict(add, idempotency_key="add-2")
    r = client.post(f"/orders/{gid}/members", data=again)
    assert r.status_code == 422
    assert re.search(r'id="email-error">dave@example.com is already a member', r.text)

    client.post(f"/orders/{gid}/open", data={"csrf_token": csrf})
    page = client.get(f"/orders/{gid}")
    assert "Open" in page.text
    assert "Pay the unpaid €28.00 myself" in page.text
    r = client.post(f"/orders/{gid}/pay-rest", data={"csrf_token": csrf})
    assert "Pay the rest (€28.00)" in r.text
    assert "/sandbox/pay/" in r.text
    r = client.post(f"/orders/{gid}/open", data={"csrf_token": csrf})  # refused: shown
    assert "cannot become open" in r.text
    r = client.post(f"/orders/{gid}/cancel", data={"csrf_token": csrf})
    assert "Cancelled" in r.text
    # Without the CSRF token nothing runs.
    assert client.post(f"/orders/{gid}/cancel", data={}).status_code == 403
