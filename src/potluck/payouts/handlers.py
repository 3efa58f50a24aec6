"""Event handlers of the payouts service: the sending poller and the recovery timer."""

from __future__ import annotations

from potluck.bus.registry import HandlerRegistry
from potluck.payouts import worker


def register(registry: HandlerRegistry) -> None:
    registry.register(worker.SERVICE, worker.RECOVERY_TICK, worker.on_recovery_tick)
    registry.register_poller(worker.SERVICE, worker.send_due_payouts)
