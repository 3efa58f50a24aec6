"""Event handlers of the payouts service."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry


def register(registry: HandlerRegistry) -> None:
    pass
