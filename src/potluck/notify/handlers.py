"""Event handlers of the webhooks service: fan-out of deliverable events, and the sender."""

from __future__ import annotations

from potluck.bus.outbox import Event
from potluck.bus.registry import HandlerContext, HandlerRegistry
from potluck.notify import sender, service

SERVICE = "webhooks"


def on_deliverable_event(ctx: HandlerContext, event: Event) -> None:
    """One delivery per matching endpoint, in this delivery's transaction (inbox: once)."""
    service.fan_out(ctx.session, event, settings=ctx.app.settings, now=ctx.now)


def register(registry: HandlerRegistry) -> None:
    for event_type in service.DELIVERABLE_EVENTS:
        registry.register(SERVICE, event_type, on_deliverable_event)
    registry.register_poller(SERVICE, sender.send_due)
