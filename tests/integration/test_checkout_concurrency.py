"""Group order races with real threads on PostgreSQL (row locks), released together by a
barrier: each resolves to exactly one outcome, and the ledger audit (run after every test)
passes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.checkout import service
from potluck.errors import DomainError
from potluck.identity import passwords
from tests.integration.test_checkout_helpers import (
    balance,
    drain,
    events,
    get,
    group_of_four,
    intent,
    pay,
    shop,
    wallet_total,
)

pytestmark = pytest.mark.postgres_only


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def race(*fns):
    barrier = threading.Barrier(len(fns))

    def call(fn):
        barrier.wait()
        try:
            return fn()
        except Exception as exc:  # collected and asserted on below
            return exc

    with ThreadPoolExecutor(max_workers=len(fns)) as pool:
        return list(pool.map(call, fns))


def in_tx(potluck, fn):
    def run():
        with potluck.db.transaction() as s:
            return fn(s)

    return run


def count_in(potluck, g):
    """Count the payments that reached the escrow (as the payment handler would)."""
    for m in g["members"]:
        with potluck.db.transaction() as s:
            service.payment_succeeded(
                s, potluck, intent_id=m["payment_intent"], group_id=g["id"], now=potluck.clock.now()
            )


def test_last_member_paying_while_the_expiry_timer_fires(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s, fallback="cancel", expires=600)
    gid, host = g["id"], s.people["alice"][1]
    for m in g["members"][:3]:
        pay(potluck, m["payment_intent"])
    drain(potluck)
    last = g["members"][3]["payment_intent"]
    pay(potluck, last)  # succeeded at the provider, its payment.succeeded not handled yet
    potluck.clock.advance(601)
    now = potluck.clock.now()
    results = race(
        in_tx(
            potluck,
            lambda s: service.payment_succeeded(s, potluck, intent_id=last, group_id=gid, now=now),
        ),
        in_tx(potluck, lambda s: service.expire(s, potluck, group_id=gid, now=now)),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert results in (["counted", "ignored"], ["refunded", "expired"]), results
    drain(potluck)  # the event and the timer again: both find their work done
    g = get(client, host, gid)
    if results[0] == "counted":
        assert g["status"] == "confirmed"
        assert wallet_total(client, s.headers, s.merchant) == 4050 - 405
        assert events(potluck, "group.expired") == []
    else:
        assert g["status"] == "expired"
        assert all(p["status"] == "refunded" for p in g["payments"])
        assert intent(potluck, last).refunded_amount == 1012
        assert events(potluck, "order.confirmed") == []
    assert balance(potluck, g["escrow_account"]) == 0


def test_two_deliveries_of_one_payment_at_once_count_it_once(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid = g["id"]
    first = g["members"][0]["payment_intent"]
    pay(potluck, first)
    now = potluck.clock.now()
    twice = in_tx(
        potluck,
        lambda s: service.payment_succeeded(s, potluck, intent_id=first, group_id=gid, now=now),
    )
    results = race(twice, twice)
    assert sorted(results) == ["counted", "duplicate"], results
    drain(potluck)
    g = get(client, s.people["alice"][1], gid)
    assert g["paid"] == g["members"][0]["share"]
    assert len(events(potluck, "member.paid")) == 1


def test_cancel_during_finalization_has_one_outcome(potluck, client):
    s = shop(potluck, client)
    g = group_of_four(potluck, client, s)
    gid, host_id, host = g["id"], s.people["alice"][0], s.people["alice"][1]
    for m in g["members"]:
        pay(potluck, m["payment_intent"])
    count_in(potluck, g)  # PAID; group.fully_paid waits in the outbox
    now = potluck.clock.now()
    results = race(
        in_tx(potluck, lambda s: service.finalize(s, potluck, group_id=gid, now=now)),
        in_tx(
            potluck,
            lambda s: service.cancel_group_order(
                s, potluck, group_id=gid, host_user_id=host_id, now=now
            ),
        ),
    )
    finalized, cancelled = results
    drain(potluck)
    g = get(client, host, gid)
    if finalized == "confirmed":
        assert isinstance(cancelled, DomainError), results
        assert cancelled.code == "invalid_state"
        assert g["status"] == "confirmed"
        assert wallet_total(client, s.headers, s.merchant) == 4050 - 405
    else:
        assert finalized == "ignored", results
        assert g["status"] == "cancelled"
        assert all(p["status"] == "refunded" for p in g["payments"])
        assert events(potluck, "order.created") == []
    assert balance(potluck, g["escrow_account"]) == 0
