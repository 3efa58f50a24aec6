"""Tables of the payments product (migration 0007)."""

from __future__ import annotations

from potluck.db import Base

__all__ = ["Base"]
