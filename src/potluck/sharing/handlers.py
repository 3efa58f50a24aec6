"""Event handlers of the sharing service."""

from __future__ import annotations

from potluck.bus import Event, HandlerContext, HandlerRegistry
from potluck.sharing import recurring, wallet_settlement
from potluck.sharing.groups import claim_places


def on_user_registered(ctx: HandlerContext, event: Event) -> None:
    """A new person claims the places in groups that were waiting for their email."""
    data = event.data
    claim_places(
        ctx.session,
        user_id=str(data["user_id"]),
        email=str(data["email"]),
        name=str(data.get("name") or data["email"]),
    )


def register(registry: HandlerRegistry) -> None:
    registry.register("sharing", "user.registered", on_user_registered)
    registry.register("sharing", recurring.DUE, recurring.on_due)
    # Not an event: wallets calls it in the transaction that posts a group_settlement payment.
    wallet_settlement.register()
