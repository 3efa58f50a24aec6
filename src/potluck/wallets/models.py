"""Tables of wallets."""

from __future__ import annotations
