"""Payment intents through the service and the sandbox: pay, decline, webhooks in any order,
refunds, cancel, reconciliation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from potluck.ledger import service as ledger
from potluck.payments import sandbox_control, service
from potluck.payments.models import ProviderEventRecord
from potluck.payments.providers.sandbox import sandbox_of


def escrow(potluck, currency="EUR"):
    with potluck.db.transaction() as s:
        return ledger.create_account(
            s,
            currency=currency,
            code="escrow",
            now=potluck.clock.now(),
            flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
        ).id


def new_intent(potluck, dest, amount=2_500, **kw):
    with potluck.db.transaction() as s:
        return service.create_intent(
            s,
            potluck,
            amount=amount,
            currency="EUR",
            purpose="group_order",
            destination_account_id=dest,
            metadata={"group_order": "go_1", "member": "m_1"},
            now=potluck.clock.now(),
            **kw,
        )


def balance(potluck, account_id):
    with potluck.db.read() as s:
        return ledger.get_account(s, account_id).total


def events(potluck, event_type):
    from potluck.bus.models import OutboxEvent

    with potluck.db.read() as s:
        return [
            e.data
            for e in s.execute(
                select(OutboxEvent).where(OutboxEvent.type == event_type).order_by(OutboxEvent.id)
            ).scalars()
        ]


def stored_events(potluck):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(ProviderEventRecord))


def test_create_then_pay_moves_the_money_once(potluck):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    assert intent.status == "requires_payment"
    assert intent.payment_url.endswith(f"/sandbox/pay/{intent.id}")
    assert events(potluck, "payment.requested")[0]["intent"] == intent.id

    paid = sandbox_control.pay(potluck, intent.id)

    assert paid.status == "succeeded"
    assert paid.captured_amount == 2_500
    assert balance(potluck, dest) == 2_500
    [ok] = events(potluck, "payment.succeeded")
    assert ok["intent"] == intent.id
    assert ok["metadata"] == {"group_order": "go_1", "member": "m_1"}
    assert len(events(potluck, "payment.processing")) == 1
    with potluck.db.read() as s:
        transfer = ledger.get_transfer(s, f"pay-{intent.id}", scope="system")
    assert transfer.amount == 2_500
    assert transfer.credit_account_id == dest


def test_the_same_client_id_returns_the_same_intent(potluck):
    dest = escrow(potluck)
    first = new_intent(potluck, dest, client_id="go_1-m_1")
    again = new_intent(potluck, dest, client_id="go_1-m_1")
    assert again.id == first.id
    with pytest.raises(service.PaymentsError) as refused:
        new_intent(potluck, dest, amount=9, client_id="go_1-m_1")
    assert refused.value.code == "intent_exists_with_different_fields"


def test_a_declined_payment_fails_and_moves_nothing(potluck):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    failed = sandbox_control.pay(potluck, intent.id, "failed")
    assert failed.status == "failed"
    assert failed.failure_reason == "card_declined"
    assert balance(potluck, dest) == 0
    [data] = events(potluck, "payment.failed")
    assert data["failure_reason"] == "card_declined"
    assert data["purpose"] == "group_order"


def test_duplicated_and_out_of_order_webhooks_have_one_effect(potluck):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    sandbox_control.script(potluck, intent.id, duplicate=True, out_of_order=True)
    assert sandbox_control.deliver(potluck) == 4
    with potluck.db.read() as s:
        got = service.get_intent(s, intent.id)
        outcomes = sorted(s.execute(select(ProviderEventRecord.outcome)).scalars())
    assert got.status == "succeeded"
    assert balance(potluck, dest) == 2_500
    assert len(events(potluck, "payment.succeeded")) == 1
    # succeeded arrived first; the later processing is ignored; the copies were not stored
    assert outcomes == ["applied", "ignored"]
    assert events(potluck, "payment.processing") == []


def test_a_delayed_payment_waits_for_the_clock(potluck):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    sandbox_control.script(potluck, intent.id, delay_seconds=60)
    assert sandbox_control.deliver(potluck) == 0
    potluck.clock.advance(61)
    assert sandbox_control.deliver(potluck) == 2
    with potluck.db.read() as s:
        assert service.get_intent(s, intent.id).status == "succeeded"


def test_forged_tampered_and_stale_webhooks_are_refused_and_not_stored(potluck):
    from potluck.payments.webhooks import receive_webhook

    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    sandbox = sandbox_of(potluck)
    body = json.dumps(
        {
            "id": "sbxevt_forged",
            "type": "payment.succeeded",
            "created": int(potluck.clock.now().timestamp()),
            "data": {"intent": intent.provider_ref, "amount": 2_500, "currency": "EUR"},
        }
    ).encode()
    now = potluck.clock.now()
    good = sandbox.sign(body, now=now)
    forged = {"sandbox-signature": f"t={int(now.timestamp())},v1={'0' * 64}"}
    tampered_body = body.replace(b"2500", b"9999")
    for b, headers in ((body, forged), (tampered_body, good), (body, {})):
        with pytest.raises(service.PaymentsError) as refused:
            receive_webhook(potluck, "sandbox", b, headers)
        assert refused.value.code == "invalid_signature"
        assert refused.value.status == 400
    potluck.clock.advance(301)
    with pytest.raises(service.PaymentsError) as stale:
        receive_webhook(potluck, "sandbox", body, good)
    assert stale.value.code == "invalid_signature"
    assert stored_events(potluck) == 0
    assert balance(potluck, dest) == 0
    # the same body signed now is accepted
    assert receive_webhook(potluck, "sandbox", body, sandbox.sign(body, now=potluck.clock.now()))
    assert balance(potluck, dest) == 2_500


def test_a_pending_refund_settles_or_is_reversed_by_the_providers_webhook(potluck):
    from potluck.payments.providers.base import ProviderRefund
    from potluck.payments.providers.sandbox import SandboxProvider
    from potluck.payments.webhooks import receive_webhook

    class PendingRefunds(SandboxProvider):
        def refund(self, *, refund_id, intent_provider_ref, amount, currency):
            return ProviderRefund(
                f"ref_{refund_id}", intent_provider_ref, amount, currency, "pending"
            )

    sandbox = PendingRefunds(potluck.settings, potluck.db, potluck.clock)
    potluck.providers["sandbox"] = sandbox
    dest = escrow(potluck)
    intent = new_intent(potluck, dest, amount=1_000)
    sandbox_control.pay(potluck, intent.id)
    with potluck.db.transaction() as s:
        kept = service.refund_intent(s, potluck, intent.id, amount=300, now=potluck.clock.now())
        lost = service.refund_intent(s, potluck, intent.id, amount=200, now=potluck.clock.now())
    assert (kept.status, lost.status) == ("pending", "pending")
    assert balance(potluck, dest) == 500

    def webhook(kind, refund):
        body = json.dumps(
            {
                "id": f"sbxevt_{refund.id}",
                "type": kind,
                "created": int(potluck.clock.now().timestamp()),
                "data": {"intent": intent.provider_ref, "refund": refund.provider_ref},
            }
        ).encode()
        return receive_webhook(
            potluck, "sandbox", body, sandbox.sign(body, now=potluck.clock.now())
        )

    assert webhook("refund.succeeded", kept).outcome == "applied"
    assert webhook("refund.failed", lost).outcome == "applied"
    with potluck.db.read() as s:
        refunds = {r.id: r.status for r in service.list_refunds(s, intent.id)}
        assert service.get_intent(s, intent.id).refunded_amount == 300
    assert refunds == {kept.id: "succeeded", lost.id: "failed"}
    assert balance(potluck, dest) == 700  # the failed refund's money is back


def test_a_signed_event_in_another_currency_is_stored_but_not_applied(potluck):
    from potluck.payments.webhooks import receive_webhook

    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    body = json.dumps(
        {
            "id": "sbxevt_usd",
            "type": "payment.succeeded",
            "created": int(potluck.clock.now().timestamp()),
            "data": {"intent": intent.provider_ref, "amount": 2_500, "currency": "USD"},
        }
    ).encode()
    headers = sandbox_of(potluck).sign(body, now=potluck.clock.now())
    assert receive_webhook(potluck, "sandbox", body, headers).outcome == "ignored"
    assert stored_events(potluck) == 1
    assert balance(potluck, dest) == 0
