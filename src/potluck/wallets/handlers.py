"""Event handlers of wallets (service ``wallets``).

``payment.succeeded`` / ``payment.failed`` (purpose ``wallet_top_up``) → mark the top-up. The
payments product has already posted the money (clearing → wallet, once, in ``apply_status``);
here the top-up row is locked and changed only while pending, so a redelivery does nothing.
"""

from __future__ import annotations

from potluck.bus import Event, HandlerContext
from potluck.bus.registry import HandlerRegistry
from potluck.wallets import service

SERVICE = "wallets"


def _top_up_intent(event: Event) -> str | None:
    if event.data.get("purpose") != service.TOP_UP_PURPOSE:
        return None
    intent = event.data.get("intent") or event.data.get("intent_id")
    return str(intent) if intent else None


def on_payment_succeeded(ctx: HandlerContext, event: Event) -> None:
    intent_id = _top_up_intent(event)
    if intent_id is not None:
        service.top_up_succeeded(ctx.session, intent_id=intent_id, now=ctx.now)


def on_payment_failed(ctx: HandlerContext, event: Event) -> None:
    intent_id = _top_up_intent(event)
    if intent_id is not None:
        service.top_up_failed(ctx.session, intent_id=intent_id, now=ctx.now)


def register(registry: HandlerRegistry) -> None:
    registry.register(SERVICE, "payment.succeeded", on_payment_succeeded)
    registry.register(SERVICE, "payment.failed", on_payment_failed)
