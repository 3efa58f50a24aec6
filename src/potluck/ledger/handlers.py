"""Ledger event handlers: hold timeouts are timers on the bus."""

from __future__ import annotations

from potluck.bus.outbox import Event
from potluck.bus.registry import HandlerContext, HandlerRegistry
from potluck.ledger.service import HOLD_TIMEOUT_EVENT, expire_pending


def on_hold_timeout(ctx: HandlerContext, event: Event) -> None:
    expire_pending(ctx.session, event.data["transfer_id"], now=ctx.now)


def register(registry: HandlerRegistry) -> None:
    registry.register("ledger", HOLD_TIMEOUT_EVENT, on_hold_timeout)
