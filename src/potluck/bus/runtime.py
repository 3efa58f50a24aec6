"""The bus runtime (relay + workers). Placeholder until the bus lands."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck


class Bus:
    def __init__(self, app: Potluck) -> None:
        self.app = app

    def drain(self, *, max_rounds: int = 100) -> int:
        return 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
