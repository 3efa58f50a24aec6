"""Tables of the checkout product (migration 0008)."""

from __future__ import annotations

from potluck.db import Base

__all__ = ["Base"]
