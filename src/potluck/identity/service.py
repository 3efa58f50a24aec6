"""Identity use cases (to be written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from potluck.api.deps import Principal
    from potluck.bootstrap import Potluck


def principal_from_token(app: Potluck, token: str) -> Principal | None:
    return None
