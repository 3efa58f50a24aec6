"""Event handlers of wallets (service ``wallets``)."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry

SERVICE = "wallets"


def register(registry: HandlerRegistry) -> None:
    pass
