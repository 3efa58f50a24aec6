"""Event handlers of the webhooks service: fan-out of deliverable events, and the sender."""

from __future__ import annotations

from potluck.bus.outbox import Event
from potluck.bus.registry import HandlerContext, HandlerRegistry
from potluck.notify import sender, service

SERVICE = "webhooks"


def on_deliverable_events(ctx: HandlerContext, events: list[Event]) -> None:
    """One delivery per matching endpoint and event, in the worker batch's transaction (the
    inbox makes it once per event)."""
    service.fan_out_many(ctx.session, events, settings=ctx.app.settings, now=ctx.now)


def register(registry: HandlerRegistry) -> None:
    for event_type in service.DELIVERABLE_EVENTS:
        registry.register_batch(SERVICE, event_type, on_deliverable_events)
    registry.register_poller(SERVICE, sender.send_due)
