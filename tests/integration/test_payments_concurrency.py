"""Payments under real concurrency: threads released together by a barrier, each in its own
transaction (row locks on PostgreSQL, one writer at a time on SQLite)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from potluck.bus.models import OutboxEvent
from potluck.ledger.models import Transfer
from potluck.payments import sandbox_control, service
from potluck.payments.models import PaymentRefund, ProviderEventRecord
from potluck.payments.providers.sandbox import sandbox_of
from potluck.payments.webhooks import receive_webhook
from tests.integration.test_payments_service import balance, escrow, new_intent


def race(n, fn):
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected and asserted on below
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def count(potluck, query):
    with potluck.db.read() as s:
        return s.scalar(query)


def test_ten_identical_webhooks_at_once_have_one_effect(potluck):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    body = json.dumps(
        {
            "id": "sbxevt_same",
            "type": "payment.succeeded",
            "created": int(potluck.clock.now().timestamp()),
            "data": {"intent": intent.provider_ref, "amount": intent.amount, "currency": "EUR"},
        }
    ).encode()
    headers = sandbox_of(potluck).sign(body, now=potluck.clock.now())

    results = race(10, lambda _: receive_webhook(potluck, "sandbox", body, headers))

    outcomes = sorted(r.outcome for r in results)  # an exception here would fail the sort
    assert outcomes == ["applied"] + ["duplicate"] * 9
    assert balance(potluck, dest) == intent.amount
    assert count(potluck, select(func.count()).select_from(ProviderEventRecord)) == 1
    assert count(potluck, select(func.count()).where(Transfer.client_id == f"pay-{intent.id}")) == 1
    assert (
        count(
            potluck,
            select(func.count()).where(OutboxEvent.type == "payment.succeeded"),
        )
        == 1
    )


def test_concurrent_refunds_never_exceed_what_was_captured(potluck):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest, amount=1_000)
    sandbox_control.pay(potluck, intent.id)

    def refund(_):
        with potluck.db.transaction() as s:
            return service.refund_intent(s, potluck, intent.id, amount=300, now=potluck.clock.now())

    results = race(6, refund)

    ok = [r for r in results if isinstance(r, service.RefundView)]
    refused = [r for r in results if isinstance(r, service.PaymentsError)]
    assert len(ok) == 3
    assert {e.code for e in refused} == {"refund_exceeds_captured"}
    assert len(refused) == 3
    assert balance(potluck, dest) == 100
    assert count(potluck, select(func.sum(PaymentRefund.amount))) == 900
    with potluck.db.read() as s:
        assert service.get_intent(s, intent.id).refunded_amount == 900
