"""Reconciliation: the timer corrects intents whose webhooks never came; the daily report
(``potluck reconcile --date``) lists every mismatch with the provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from potluck.ledger import service as ledger
from potluck.payments import reconcile, sandbox_control, service
from potluck.payments.models import ReconciliationReport, SandboxIntent
from tests.integration.test_payments_service import balance, escrow, events, new_intent

LOST = 10**7  # seconds: webhooks scripted this late never arrive during the test


def status_of(potluck, intent_id):
    with potluck.db.read() as s:
        return service.get_intent(s, intent_id).status


def test_the_tick_fixes_an_intent_whose_webhooks_were_lost(potluck):
    dest = escrow(potluck)
    paid = new_intent(potluck, dest)
    declined = new_intent(potluck, dest)
    waiting = new_intent(potluck, dest)
    sandbox_control.script(potluck, paid.id, delay_seconds=LOST)
    sandbox_control.script(potluck, declined.id, "failed", delay_seconds=LOST)
    reconcile.ensure_scheduled(potluck)
    # Before requires_payment counts as stale, a tick leaves them alone.
    potluck.clock.advance(potluck.settings.payment_reconcile_interval_seconds + 1)
    potluck.bus.drain()
    assert status_of(potluck, paid.id) == "requires_payment"

    potluck.clock.advance(potluck.settings.payment_stale_after_seconds)
    potluck.bus.drain()

    assert status_of(potluck, paid.id) == "succeeded"
    assert status_of(potluck, declined.id) == "failed"
    assert status_of(potluck, waiting.id) == "requires_payment"  # the payer has not acted
    assert balance(potluck, dest) == paid.amount
    assert [e["intent"] for e in events(potluck, "payment.succeeded")] == [paid.id]
    # The webhooks arrive at last: nothing happens twice.
    potluck.clock.advance(LOST)
    sandbox_control.deliver(potluck)
    assert balance(potluck, dest) == paid.amount
    assert len(events(potluck, "payment.succeeded")) == 1
    # The chain goes on: the next tick is scheduled.
    assert any(e for e in events(potluck, reconcile.TICK) if e["interval_seconds"] > 0)


def test_the_report_lists_mismatches_and_is_stored(potluck):
    dest = escrow(potluck)
    ok = new_intent(potluck, dest)
    stuck = new_intent(potluck, dest)
    sandbox_control.pay(potluck, ok.id)
    with potluck.db.transaction() as s:
        service.refund_intent(s, potluck, ok.id, amount=500, now=potluck.clock.now())
    clean = reconcile.report(potluck, potluck.clock.now().date())
    assert clean.clean
    assert (clean.intents_checked, clean.refunds_checked) == (2, 1)

    sandbox_control.script(potluck, stuck.id, delay_seconds=LOST)
    dirty = reconcile.report(potluck, potluck.clock.now().date())
    assert {(m.id, m.field, m.ours, m.provider) for m in dirty.mismatches} == {
        (stuck.id, "status", "requires_payment", "succeeded"),
        (stuck.id, "captured_amount", 0, stuck.amount),
    }
    with potluck.db.read() as s:
        assert s.get(ReconciliationReport, dirty.id).mismatch_count == 2
    # another day has nothing
    other = reconcile.report(potluck, potluck.clock.now().date().replace(year=2025))
    assert other.intents_checked == 0


@pytest.mark.sqlite_only  # a process start costs ~7 s; report() itself runs on both above
def test_the_reconcile_command_exits_1_with_mismatches(potluck, database_url):
    dest = escrow(potluck)
    intent = new_intent(potluck, dest)
    sandbox_control.pay(potluck, intent.id)
    with potluck.db.transaction() as s:  # the provider's record drifts (e.g. a dispute)
        s.execute(select(SandboxIntent)).scalar_one().captured_amount = 1
    env = os.environ | {
        "POTLUCK_DATABASE_URL": database_url,
        "POTLUCK_LOG_JSON": "false",
        "POTLUCK_SECRET_KEY": potluck.settings.secret_key,
    }
    day = potluck.clock.now().date().isoformat()
    run = subprocess.run(
        [sys.executable, "-m", "potluck.cli", "reconcile", "--date", day, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    out = json.loads(run.stdout)
    assert out["mismatches"] == [
        {
            "kind": "intent",
            "id": intent.id,
            "field": "captured_amount",
            "ours": intent.amount,
            "provider": 1,
        }
    ]
    with potluck.db.read() as s:
        assert s.get(ReconciliationReport, out["id"]).mismatch_count == 1
        assert ledger.get_account(s, dest).total == intent.amount
