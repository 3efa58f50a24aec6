"""Event handlers of risk (service ``risk``)."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry

SERVICE = "risk"


def register(registry: HandlerRegistry) -> None:
    pass
