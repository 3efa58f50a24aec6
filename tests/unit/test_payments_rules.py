"""Payments without a database: the transition table and the sandbox's webhook signatures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potluck.config import Settings
from potluck.payments import states
from potluck.payments.providers.base import WebhookSignatureError
from potluck.payments.providers.sandbox import SandboxProvider, ref_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def sandbox(secret="whsec_unit"):
    settings = Settings(sandbox_webhook_secret=secret, log_json=False)
    return SandboxProvider(settings, db=None, clock=None)  # type: ignore[arg-type]


def body(**data):
    return json.dumps(
        {
            "id": "sbxevt_1",
            "type": "payment.succeeded",
            "created": int(NOW.timestamp()),
            "data": {"intent": "sbx_1", "amount": 100, "currency": "EUR", **data},
        }
    ).encode()


def test_terminal_states_never_change():
    for terminal in (states.SUCCEEDED, states.FAILED, states.CANCELED):
        assert terminal in states.TERMINAL
        for target in states.STATUSES:
            assert not states.can_move(terminal, target)


def test_processing_may_be_skipped_but_never_goes_back():
    assert states.can_move(states.REQUIRES_PAYMENT, states.SUCCEEDED)
    assert states.can_move(states.PROCESSING, states.SUCCEEDED)
    assert not states.can_move(states.PROCESSING, states.REQUIRES_PAYMENT)
    assert not states.can_move(states.PROCESSING, states.PROCESSING)


@given(st.lists(st.sampled_from(states.STATUSES), max_size=12))
def test_any_order_of_reports_ends_in_at_most_one_terminal_state(reports):
    status, entered = states.REQUIRES_PAYMENT, []
    for report in reports:
        if states.can_move(status, report):
            status = report
            entered.append(report)
    assert len([s for s in entered if s in states.TERMINAL]) <= 1
    assert len(entered) == len(set(entered))  # no state is entered twice
    if entered and entered[-1] in states.TERMINAL:
        assert status == entered[-1]


def test_a_signed_event_is_parsed_into_our_terms():
    provider = sandbox()
    raw = body()
    event = provider.verify_webhook(body=raw, headers=provider.sign(raw, now=NOW), now=NOW)
    assert event.event_id == "sbxevt_1"
    assert event.kind == "payment.succeeded"
    assert event.intent_provider_ref == "sbx_1"
    assert event.amount == 100


@pytest.mark.parametrize(
    ("mutate", "when"),
    [
        (lambda b, h: (b.replace(b"100", b"900"), h), NOW),  # tampered body
        (lambda b, h: (b, {"sandbox-signature": h["sandbox-signature"][:-2] + "00"}), NOW),
        (lambda b, h: (b, {}), NOW),  # no signature
        (lambda b, h: (b, {"sandbox-signature": "garbage"}), NOW),
        (lambda b, h: (b, h), NOW + timedelta(seconds=301)),  # replayed after 300 s
        (lambda b, h: (b, h), NOW - timedelta(seconds=301)),  # from the future
        (lambda b, h: (b, sandbox("whsec_other").sign(b, now=NOW)), NOW),  # forged
    ],
)
def test_bad_signatures_are_refused(mutate, when):
    provider = sandbox()
    raw = body()
    b, h = mutate(raw, provider.sign(raw, now=NOW))
    with pytest.raises(WebhookSignatureError):
        provider.verify_webhook(body=b, headers=h, now=when)


def test_a_signature_300_seconds_old_is_still_accepted():
    provider = sandbox()
    raw = body()
    headers = provider.sign(raw, now=NOW)
    assert provider.verify_webhook(body=raw, headers=headers, now=NOW + timedelta(seconds=300))


def test_a_signed_but_malformed_event_is_refused():
    provider = sandbox()
    raw = b'{"id": "x"}'
    with pytest.raises(WebhookSignatureError):
        provider.verify_webhook(body=raw, headers=provider.sign(raw, now=NOW), now=NOW)


def test_the_derived_secret_is_stable_and_depends_on_the_secret_key():
    def derived(key):
        settings = Settings(secret_key=key, log_json=False)
        return SandboxProvider(settings, db=None, clock=None).secret()  # type: ignore[arg-type]

    a = derived("a" * 40)
    assert a == derived("a" * 40)
    assert a != derived("b" * 40)
    assert "a" * 40 not in a


def test_sandbox_refs_follow_our_ids():
    assert ref_for("pi_01ABC") == "sbx_01ABC"
