"""Drive the sandbox provider from tests and demos.

``pay(app, intent_id)`` is a person paying on the hosted page and the sandbox's webhooks being
delivered, synchronously: when it returns, the intent is ``succeeded`` (or ``failed``) and its
events are in the outbox. ``script`` queues the webhooks without sending them (with a delay,
duplicated, or out of order); ``deliver`` sends those that are due on the app's clock.
Call these outside any transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from potluck.payments import service
from potluck.payments.providers.sandbox import Script, sandbox_of

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck


def script(
    app: Potluck,
    intent_id: str,
    outcome: str = "succeeded",
    *,
    delay_seconds: float = 0.0,
    duplicate: bool = False,
    out_of_order: bool = False,
    failure_reason: str = "card_declined",
) -> None:
    """The payer acts now; the sandbox's webhooks are queued (due after ``delay_seconds``)."""
    sandbox = sandbox_of(app)
    plan = Script(
        outcome=outcome,
        delay_seconds=delay_seconds,
        duplicate=duplicate,
        out_of_order=out_of_order,
        failure_reason=failure_reason,
    )
    with app.db.transaction() as s:
        sandbox.act(s, intent_id, plan, now=app.clock.now())


def deliver(app: Potluck) -> int:
    """Deliver every sandbox webhook that is due; returns how many were sent."""
    sandbox = sandbox_of(app)
    sent = 0
    while batch := sandbox.deliver_due(app):
        sent += batch
    return sent


def pay(
    app: Potluck,
    intent_id: str,
    outcome: str = "succeeded",
    *,
    failure_reason: str = "card_declined",
) -> service.IntentView:
    """Pay (or decline) an intent on the sandbox and deliver its webhooks, all before
    returning the intent as it now is."""
    script(app, intent_id, outcome, failure_reason=failure_reason)
    deliver(app)
    with app.db.read() as s:
        return service.get_intent(s, intent_id)
