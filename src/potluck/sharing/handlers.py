"""Event handlers of the sharing service."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry


def register(registry: HandlerRegistry) -> None:
    pass
