"""Provider webhooks: verify, store once, apply through the transition table.

1. ``provider.verify_webhook`` on the raw body, before anything else and outside any
   transaction: a missing, wrong or stale (> 300 s) signature is 400 ``invalid_signature``
   and nothing is stored.
2. In one transaction: lock the intent row (found by the provider's reference), then insert
   the event under its unique ``(provider, event_id)`` (``ON CONFLICT DO NOTHING``: a
   duplicate, even a concurrent one, stops here and is 200); dispatch on the event's kind
   through ``_HANDLERS``; the transition table decides (terminal states never change,
   ``processing`` after ``succeeded`` is ignored, ``succeeded`` before ``processing`` is
   fine). The stored event records its outcome (applied, ignored, unknown_intent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from potluck.payments import service, states
from potluck.payments.models import PaymentIntent, PaymentRefund, ProviderEventRecord
from potluck.payments.providers.base import ProviderEvent, WebhookSignatureError

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class WebhookResult:
    status: int  # the HTTP status the provider gets
    outcome: str  # applied | ignored | duplicate | unknown_intent
    event_id: str
    intent_id: str | None = None


def receive_webhook(
    app: Potluck, provider_name: str, body: bytes, headers: Mapping[str, str]
) -> WebhookResult:
    """The whole path of ``POST /v1/webhooks/{provider}`` (the sandbox delivers through it)."""
    provider = app.providers.get(provider_name)
    if provider is None:
        raise service.PaymentsError(
            "unknown_provider", f"no payment provider {provider_name!r}", status=404
        )
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        event = provider.verify_webhook(body=body, headers=lowered, now=app.clock.now())
    except WebhookSignatureError as exc:
        log.warning("payments.webhook_refused", provider=provider_name, reason=str(exc))
        raise service.PaymentsError("invalid_signature", str(exc), status=400) from None
    with app.db.transaction() as s:
        return record_event(s, provider_name, event, now=app.clock.now())


# Built once: a webhook's statements cost their execution, not their construction.
_EVENTS = cast(Table, ProviderEventRecord.__table__)
_SET_OUTCOME = (
    _EVENTS.update()
    .where(_EVENTS.c.id == bindparam("row"))
    .values(outcome=bindparam("outcome"), intent_id=bindparam("intent_id"))
)
_INSERTS: dict[str, Any] = {}


def _insert_event(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (provider, event_id) DO NOTHING RETURNING id`` for ``dialect``."""
    statement = _INSERTS.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(_EVENTS)
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(_EVENTS.c.id)
        )
        _INSERTS[dialect] = statement
    return statement


def record_event(
    session: Session, provider_name: str, event: ProviderEvent, *, now: datetime
) -> WebhookResult:
    """Store a verified event once and apply it (in the caller's transaction).

    The intent row is locked first, then the event inserted: concurrent copies of one event
    queue on the intent's lock and the later ones meet the stored event (a duplicate). The
    event is stored as ``applied`` and corrected only when it was not (the common case costs
    no second write)."""
    intent = None
    if event.intent_provider_ref:
        intent = service.find_by_provider_ref(
            session, provider_name, event.intent_provider_ref, lock=True
        )
    handler = _HANDLERS.get(event.kind)
    if intent is None:
        outcome = "unknown_intent" if handler is not None else "ignored"
    else:
        outcome = "applied" if handler is not None else "ignored"
    inserted = (
        session.connection()
        .execute(
            _insert_event(session.get_bind().dialect.name),
            {
                "provider": provider_name,
                "event_id": event.event_id,
                "kind": event.kind[:32],
                "intent_id": intent.id if intent else None,
                "outcome": outcome,
                "payload": dict(event.raw),
                "received_at": now,
            },
        )
        .scalar_one_or_none()
    )
    if inserted is None:
        return WebhookResult(200, "duplicate", event.event_id, intent.id if intent else None)
    if intent is not None and handler is not None and not handler(session, intent, event, now):
        outcome = "ignored"
        session.connection().execute(
            _SET_OUTCOME, {"row": inserted, "outcome": outcome, "intent_id": intent.id}
        )
    log.info(
        "payments.webhook",
        provider=provider_name,
        event_id=event.event_id,
        kind=event.kind,
        outcome=outcome,
    )
    return WebhookResult(200, outcome, event.event_id, intent.id if intent else None)


def _to(status: str) -> Callable[[Session, PaymentIntent, ProviderEvent, datetime], bool]:
    def apply(session: Session, intent: PaymentIntent, event: ProviderEvent, now: datetime) -> bool:
        if event.currency is not None and event.currency.upper() != intent.currency:
            log.warning(
                "payments.webhook_currency_mismatch",
                intent=intent.id,
                ours=intent.currency,
                theirs=event.currency,
            )
            return False  # stored, not applied; reconciliation will report it
        return service.apply_status(
            session,
            intent,
            status,
            now=now,
            captured_amount=event.amount if status == states.SUCCEEDED else None,
            failure_reason=event.failure_reason,
        )

    return apply


def _refund_event(
    session: Session, intent: PaymentIntent, event: ProviderEvent, now: datetime
) -> bool:
    if not event.refund_provider_ref:
        return False
    refund = session.execute(
        select(PaymentRefund)
        .where(
            PaymentRefund.intent_id == intent.id,
            PaymentRefund.provider_ref == event.refund_provider_ref,
        )
        .with_for_update()
    ).scalar_one_or_none()
    if refund is None or refund.status != "pending":
        return False  # already settled when we asked for it (the usual case)
    if event.kind == "refund.succeeded":
        refund.status = "succeeded"
        refund.updated_at = now
        return True
    return service.fail_refund(session, refund, now=now)


_HANDLERS: dict[str, Callable[[Session, PaymentIntent, ProviderEvent, datetime], Any]] = {
    "payment.processing": _to(states.PROCESSING),
    "payment.succeeded": _to(states.SUCCEEDED),
    "payment.failed": _to(states.FAILED),
    "payment.canceled": _to(states.CANCELED),
    "refund.succeeded": _refund_event,
    "refund.failed": _refund_event,
}
