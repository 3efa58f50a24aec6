"""Tables of analytics."""

from __future__ import annotations
