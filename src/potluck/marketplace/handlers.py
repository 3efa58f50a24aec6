"""Event handlers of the marketplace: the splitter and the wallets.

``order.recorded`` → (splitter) allocations + one ``wallet.credit.requested`` per party →
(wallets) clearing → wallet credit, split history, ``wallet.credited``; the last credit of an
order completes it and publishes ``split.completed``. Each handler runs in its delivery's
transaction, so its effect and its inbox row commit together.
"""

from __future__ import annotations

from potluck.bus import Event, HandlerContext
from potluck.bus.registry import HandlerRegistry
from potluck.marketplace import service

SPLITTER = "splitter"
WALLETS = "wallets"


def on_orders_recorded(ctx: HandlerContext, events: list[Event]) -> None:
    """Every fresh order of a worker batch at once: one INSERT of allocations, one of events."""
    service.split_orders(ctx.session, order_pks=[e.data["order"] for e in events], now=ctx.now)


def on_wallet_credits_requested(ctx: HandlerContext, events: list[Event]) -> None:
    """Every fresh credit request of a worker batch at once: one ledger batch per platform."""
    service.apply_credits(
        ctx.session, allocation_ids=[e.data["allocation_id"] for e in events], now=ctx.now
    )


def register(registry: HandlerRegistry) -> None:
    registry.register_batch(SPLITTER, "order.recorded", on_orders_recorded)
    registry.register_batch(WALLETS, "wallet.credit.requested", on_wallet_credits_requested)
