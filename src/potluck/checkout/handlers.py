"""Event handlers of the checkout product."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry


def register(registry: HandlerRegistry) -> None:
    """Register the checkout handlers (none yet)."""
