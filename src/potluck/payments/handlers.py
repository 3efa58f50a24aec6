"""Event handlers of the payments service: the sandbox's webhook sender (a poller) and the
reconciliation timer."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry

SERVICE = "payments"


def register(registry: HandlerRegistry) -> None:
    from potluck.payments import reconcile
    from potluck.payments.providers.sandbox import deliver_sandbox_webhooks

    registry.register(SERVICE, reconcile.TICK, reconcile.on_tick)
    registry.register_poller(SERVICE, deliver_sandbox_webhooks)
