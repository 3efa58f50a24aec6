"""Event handlers of the notify service."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry


def register(registry: HandlerRegistry) -> None:
    pass
