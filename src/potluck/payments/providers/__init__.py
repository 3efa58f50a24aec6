"""Payment provider adapters behind one interface (``PaymentProvider``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from potluck.clock import Clock
    from potluck.config import Settings
    from potluck.db import Database


def make_providers(settings: Settings, db: Database, clock: Clock) -> dict[str, Any]:
    """The configured providers by name (filled in by the payments work)."""
    return {}
