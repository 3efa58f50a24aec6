"""Event handlers of the payments product."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry


def register(registry: HandlerRegistry) -> None:
    """Register the payments handlers (none yet)."""
