"""wallets.service: send to people and merchants, reviews, completion hooks (in-process)."""

from __future__ import annotations

import pytest

from potluck.errors import DomainError
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.marketplace.parties import create_party
from potluck.risk import service as risk
from potluck.wallets import service as wallets
from tests.integration.test_wallets_helpers import available, events, fund, person


def _decide(monkeypatch, action, score=0):
    def fake(session, app, **kw):
        return risk.Decision(
            id="",
            score=score,
            action=action,
            reasons=[{"rule": "t", "points": score, "detail": ""}],
        )

    monkeypatch.setattr(wallets, "_score", fake)


def _send(potluck, payer, to, amount, **kw):
    with potluck.db.transaction() as s:
        return wallets.send(
            s,
            potluck,
            payer_user_id=payer,
            to=to,
            amount=amount,
            currency="EUR",
            now=potluck.clock.now(),
            **kw,
        )


def _merchant(potluck, currency="EUR"):
    view, _ = create_platform(potluck, name="Eats")
    with potluck.db.transaction() as s:
        party = create_party(
            s,
            platform_id=view.id,
            name="Pizza",
            kind="merchant",
            currency=currency,
            now=potluck.clock.now(),
        )
    return party


def _bridges(potluck, platform_id):
    with potluck.db.read() as s:
        out = {}
        for code in (wallets.PLATFORM_BRIDGE_CODE, wallets.WALLETS_BRIDGE_CODE):
            acc = wallets.bridge_account(
                s, platform_id=platform_id, currency="EUR", code=code, now=potluck.clock.now()
            )
            out[code] = ledger.get_account(s, acc).total
        return out


def test_send_to_people_and_merchants(potluck, monkeypatch):
    ann, _ = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 10_000)
    t = _send(potluck, ann, "bob@example.com", 2_500, note="pizza", client_id="c1")
    assert t.status == "completed"
    assert t.to_user_id == bob
    assert available(potluck, bob).total == 2_500
    assert _send(potluck, ann, bob, 2_500, client_id="c1").id == t.id  # replay: one effect
    assert available(potluck, ann).available == 7_500
    with pytest.raises(DomainError) as e:
        _send(potluck, ann, bob, 999, client_id="c1")
    assert e.value.code == "transfer_exists_with_different_fields"

    party = _merchant(potluck)
    m = _send(potluck, ann, party.id, 1_000)
    assert m.status == "completed"
    assert m.platform_id == party.platform_id
    with potluck.db.read() as s:
        assert ledger.get_account(s, party.wallet_account_id).total == 1_000
    bridges = _bridges(potluck, party.platform_id)
    assert bridges[wallets.PLATFORM_BRIDGE_CODE] == 1_000
    assert bridges[wallets.WALLETS_BRIDGE_CODE] == -1_000

    failed = _send(potluck, bob, ann, 9_999)
    assert failed.status == "failed"
    assert failed.failure_reason == "insufficient_funds"
    assert available(potluck, bob).total == 2_500
    assert [e["transfer_id"] for e in events(potluck, "transfer.failed")] == [failed.id]
    assert len(events(potluck, "transfer.completed")) == 2

    for to, code in ((ann, "self_payment"), ("nobody@example.com", "recipient_not_found")):
        with pytest.raises(DomainError) as e:
            _send(potluck, ann, to, 100)
        assert e.value.code == code
    usd = _merchant(potluck, "USD")
    with pytest.raises(DomainError) as e:
        _send(potluck, ann, usd.id, 100)
    assert e.value.code == "currency_mismatch"


def test_review_approve_reject_and_hooks(potluck, monkeypatch):
    ann, _ = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 10_000)
    party = _merchant(potluck)
    _decide(monkeypatch, "review", 60)
    held = _send(potluck, ann, bob, 3_000)
    held_m = _send(potluck, ann, party.id, 2_000)
    assert (held.status, held_m.status) == ("in_review", "in_review")
    b = available(potluck, ann)
    assert (b.total, b.available, b.held) == (10_000, 5_000, 5_000)

    calls = []
    wallets.register_completion_hook("test_hook", lambda s, app, t, now: calls.append(t.id))
    now = potluck.clock.now()
    with potluck.db.transaction() as s:
        assert (
            wallets.approve_review(
                s, potluck, transfer_id=held_m.id, reviewer_id="rev", now=now
            ).status
            == "completed"
        )
        assert (
            wallets.reject_review(
                s, potluck, transfer_id=held.id, reviewer_id="rev", now=now
            ).status
            == "rejected"
        )
    with potluck.db.transaction() as s, pytest.raises(DomainError) as e:
        wallets.approve_review(s, potluck, transfer_id=held.id, reviewer_id="rev", now=now)
    assert e.value.code == "invalid_state"
    assert e.value.status == 409
    b = available(potluck, ann)
    assert (b.total, b.available, b.held) == (8_000, 8_000, 0)
    assert available(potluck, bob).total == 0
    bridges = _bridges(potluck, party.platform_id)
    assert bridges[wallets.PLATFORM_BRIDGE_CODE] == -bridges[wallets.WALLETS_BRIDGE_CODE] == 2_000

    _decide(monkeypatch, "block", 95)
    blocked = _send(potluck, ann, bob, 100)
    assert blocked.status == "blocked"
    assert available(potluck, ann).total == 8_000

    # A completion hook that raises rolls the payment back.
    _decide(monkeypatch, "allow")
    hooked = _send(potluck, ann, bob, 100, purpose="test_hook")
    assert calls == [hooked.id]

    def boom(s, app, t, now):
        raise DomainError("hook_refused", "no")

    wallets.register_completion_hook("test_boom", boom)
    with pytest.raises(DomainError):
        _send(potluck, ann, bob, 100, purpose="test_boom")
    assert available(potluck, ann).total == 7_900
    wallets._HOOKS.pop("test_hook")
    wallets._HOOKS.pop("test_boom")
