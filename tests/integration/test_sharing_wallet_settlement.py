"""Settling an IOU with wallet money (``method: "wallet"``): the money book and the IOU book
change together or not at all — insufficient funds, a risk block, a failure injected between
the two books, a review (settled only when approved). On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.sharing import balances as sharing_balances
from potluck.sharing import wallet_settlement
from potluck.sharing.models import Settlement
from potluck.wallets import service as wallets
from potluck.wallets.models import WalletTransfer
from tests.integration.test_sharing_api import (
    balances,
    cheap_hashing,  # noqa: F401 - autouse fixture
    expense,
    make_group,
    person,
    problem,
)
from tests.integration.test_wallets_helpers import available, fund


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


@pytest.fixture
def flat(potluck, client):
    """Ada paid 900 for Ada, Bob and Cy (Cy invited, not registered): Bob owes Ada 300.
    Bob's wallet holds 1,000 EUR."""
    ada_id, ada = person(potluck, "ada")
    bob_id, bob = person(potluck, "bob")
    group = make_group(client, ada, "bob@example.com", "cy@example.com")
    expense(client, ada, group["id"], amount=900)
    fund(potluck, bob_id, 1_000)
    m_ada, m_bob, m_cy = (m["id"] for m in group["members"])
    return {
        "gid": group["id"],
        "ada": ada,
        "bob": bob,
        "ada_id": ada_id,
        "bob_id": bob_id,
        "m_ada": m_ada,
        "m_bob": m_bob,
        "m_cy": m_cy,
    }


def pay(client, f, amount, *, headers=None, frm=None, to=None, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"/v1/groups/{f['gid']}/settlements",
        json={
            "from": frm or f["m_bob"],
            "to": to or f["m_ada"],
            "amount": amount,
            "method": "wallet",
        },
        headers={**(headers or f["bob"]), **extra},
    )


def books(potluck, client, f):
    """(IOU balances of Ada and Bob, Ada's wallet, Bob's wallet (total, held))."""
    b = balances(client, f["ada"], f["gid"])
    ada_w, bob_w = available(potluck, f["ada_id"]), available(potluck, f["bob_id"])
    return (b[f["m_ada"]], b[f["m_bob"]]), (ada_w.total, ada_w.held), (bob_w.total, bob_w.held)


BEFORE = ((600, -300), (0, 0), (1_000, 0))


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_wallet_settlement_changes_both_books_once_and_refusals_change_neither(
    potluck, client, flat
):
    f = flat
    assert books(potluck, client, f) == BEFORE
    # refused before any money moves: not the payer, unregistered payee, not a member
    problem(pay(client, f, 300, headers=f["ada"]), 403, "not_the_payer", "from")
    problem(pay(client, f, 100, to=f["m_cy"]), 422, "member_not_registered", "to")
    _, dan = person(potluck, "dan")
    problem(pay(client, f, 300, headers=dan), 404, "group_not_found")
    # insufficient funds: 402, neither book changes (the refused attempt is kept by wallets)
    problem(pay(client, f, 1_001), 402, "insufficient_funds")
    assert books(potluck, client, f) == BEFORE
    assert count(potluck, Settlement) == 0

    r = pay(client, f, 300, key="settle-1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["method"], body["amount"], body["currency"]) == ("wallet", 300, "EUR")
    assert body["wallet_transfer_id"].startswith("wtr_")
    assert books(potluck, client, f) == ((300, 0), (300, 0), (700, 0))
    # the same Idempotency-Key again: the first answer, one effect
    again = pay(client, f, 300, key="settle-1")
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == body
    assert books(potluck, client, f) == ((300, 0), (300, 0), (700, 0))
    assert count(potluck, Settlement) == 1
    with potluck.db.read() as s:
        t = wallets.get_transfer(s, body["wallet_transfer_id"])
    assert (t.purpose, t.reference) == (
        "group_settlement",
        {"group": f["gid"], "from": f["m_bob"], "to": f["m_ada"]},
    )


def test_a_failure_between_the_books_changes_neither(potluck, client, flat, monkeypatch):
    f = flat

    def broken(*args, **kwargs):
        raise RuntimeError("the IOU book is down")

    # The money transfer is planned and posted in the transaction, then the IOU side fails.
    monkeypatch.setattr(sharing_balances, "record_settlement", broken)
    assert pay(client, f, 300, key="settle-broken").status_code == 500
    assert books(potluck, client, f) == BEFORE
    assert count(potluck, WalletTransfer) == 0
    assert count(potluck, Settlement) == 0
    monkeypatch.undo()
    # the client retries with the same key once the IOU book is back: settled once
    r = pay(client, f, 300, key="settle-broken")
    assert r.status_code == 201, r.text
    assert books(potluck, client, f) == ((300, 0), (300, 0), (700, 0))


def _risk_says(monkeypatch, action):
    decision = wallets._AllowAll(id="", score=90, action=action, reasons=[])
    monkeypatch.setattr(wallets, "_score", lambda *a, **k: decision)


def test_review_settles_the_iou_only_when_approved_and_a_block_changes_nothing(
    potluck, client, flat, monkeypatch
):
    f = flat
    _risk_says(monkeypatch, "block")
    problem(pay(client, f, 300), 403, "payment_blocked")
    assert books(potluck, client, f) == BEFORE

    _risk_says(monkeypatch, "review")
    r = pay(client, f, 300)
    assert r.status_code == 202, r.text
    pending = r.json()
    assert (pending["status"], pending["from"], pending["amount"]) == ("in_review", f["m_bob"], 300)
    # the money is held, the IOU unchanged
    assert books(potluck, client, f) == ((600, -300), (0, 0), (1_000, 300))
    assert count(potluck, Settlement) == 0

    with potluck.db.transaction() as s:
        wallets.approve_review(
            s,
            potluck,
            transfer_id=pending["wallet_transfer_id"],
            reviewer_id="usr_reviewer",
            now=potluck.clock.now(),
        )
    assert books(potluck, client, f) == ((300, 0), (300, 0), (700, 0))
    with potluck.db.read() as s:
        st = s.execute(select(Settlement)).scalar_one()
        assert (st.method, st.amount, st.from_member_id) == ("wallet", 300, f["m_bob"])

    # a second review that is rejected: the money goes back, the IOU never moves
    r = pay(client, f, 200)
    assert r.status_code == 202, r.text
    with potluck.db.transaction() as s:
        wallets.reject_review(
            s,
            potluck,
            transfer_id=r.json()["wallet_transfer_id"],
            reviewer_id="usr_reviewer",
            now=potluck.clock.now(),
        )
    assert books(potluck, client, f) == ((300, 0), (300, 0), (700, 0))
    assert count(potluck, Settlement) == 1


@pytest.mark.postgres_only
def test_two_concurrent_wallet_settlements_pay_only_what_the_wallet_holds(potluck, client, flat):
    """Bob's 1,000 cannot pay two settlements of 600 racing each other: one is recorded in
    both books, the other fails in both (wallets are locked before the group: no deadlock)."""
    f = flat
    barrier = threading.Barrier(2)
    outcomes = []

    def settle():
        barrier.wait()
        with potluck.db.transaction() as s:
            done = wallet_settlement.settle_with_wallet(
                s,
                potluck,
                user_id=f["bob_id"],
                group_id=f["gid"],
                from_member_id=f["m_bob"],
                to_member_id=f["m_ada"],
                amount=600,
                now=potluck.clock.now(),
            )
        outcomes.append(done.status)

    threads = [threading.Thread(target=settle) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["completed", "failed"]
    assert books(potluck, client, f) == ((0, 300), (600, 0), (400, 0))
    assert count(potluck, Settlement) == 1
