"""Event handlers of the checkout product (service ``checkout``).

``payment.succeeded`` / ``payment.failed`` (purpose ``group_order``) → count or refund the
payment; ``group.expiry_due`` (timer at ``expires_at``) → fallback; ``group.host_deadline_due``
(timer) → cancel if the host has not paid; ``group.fully_paid`` → finalize into a merchant
order. Each runs in its delivery's transaction and locks the group order first.
"""

from __future__ import annotations

from potluck.bus import Event, HandlerContext
from potluck.bus.registry import HandlerRegistry
from potluck.checkout import service

SERVICE = "checkout"


def _group_of(event: Event) -> str | None:
    if event.data.get("purpose") != service.PURPOSE:
        return None
    metadata = event.data.get("metadata") or {}
    group_id = metadata.get("group_order")
    return group_id if isinstance(group_id, str) else None


def _intent_of(event: Event) -> str:
    intent = event.data.get("intent") or event.data.get("intent_id") or event.data.get("payment_id")
    return str(intent)


def on_payment_succeeded(ctx: HandlerContext, event: Event) -> None:
    group_id = _group_of(event)
    if group_id is None:
        return
    service.payment_succeeded(
        ctx.session, ctx.app, intent_id=_intent_of(event), group_id=group_id, now=ctx.now
    )


def on_payment_failed(ctx: HandlerContext, event: Event) -> None:
    group_id = _group_of(event)
    if group_id is None:
        return
    reason = event.data.get("failure_reason") or event.data.get("reason")
    service.payment_failed(
        ctx.session,
        ctx.app,
        intent_id=_intent_of(event),
        group_id=group_id,
        reason=str(reason) if reason else None,
        now=ctx.now,
    )


def on_expiry_due(ctx: HandlerContext, event: Event) -> None:
    service.expire(ctx.session, ctx.app, group_id=event.data["group_id"], now=ctx.now)


def on_host_deadline_due(ctx: HandlerContext, event: Event) -> None:
    service.host_deadline_passed(ctx.session, ctx.app, group_id=event.data["group_id"], now=ctx.now)


def on_fully_paid(ctx: HandlerContext, event: Event) -> None:
    service.finalize(ctx.session, ctx.app, group_id=event.data["group_id"], now=ctx.now)


def register(registry: HandlerRegistry) -> None:
    registry.register(SERVICE, "payment.succeeded", on_payment_succeeded)
    registry.register(SERVICE, "payment.failed", on_payment_failed)
    registry.register(SERVICE, service.EXPIRY_TIMER, on_expiry_due)
    registry.register(SERVICE, service.HOST_DEADLINE_TIMER, on_host_deadline_due)
    registry.register(SERVICE, "group.fully_paid", on_fully_paid)
