"""Child process of test_relay_crash: a relay that dies between publishing and marking sent.

Usage: python -m tests.integration.relay_crash_child DATABASE_URL NOW_ISO

It relays through the real InProcessTransport, wrapped so that the process SIGKILLs itself
right after the first publish returns — before the relay can mark the outbox row sent. The
kill hook lives here, not in production code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from potluck.bootstrap import bootstrap
from potluck.bus import Event, HandlerRegistry
from potluck.bus.relay import relay_once
from potluck.bus.transport import Apply, ApplyBatch, DeadLetter, Transport
from potluck.clock import FakeClock
from potluck.config import Settings
from tests.integration.bus_helpers import record_effect

EVENT_TYPE = "test.crash"
SERVICE = "crash_counter"


def register(registry: HandlerRegistry) -> None:
    """Parent and child subscribe the same service, so the child's publish targets it."""
    registry.register(SERVICE, EVENT_TYPE, record_effect)


class DieAfterPublish(Transport):
    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def publish(self, event: Event) -> None:
        self.inner.publish(event)  # durable: the delivery row is committed
        os.kill(os.getpid(), signal.SIGKILL)

    def consume(
        self,
        services: Sequence[str],
        apply: Apply,
        *,
        limit: int,
        apply_batch: ApplyBatch | None = None,
    ) -> int:
        return self.inner.consume(services, apply, limit=limit, apply_batch=apply_batch)

    def dead_letters(self, *, limit: int = 50) -> list[DeadLetter]:
        return self.inner.dead_letters(limit=limit)

    def retry_dead(self, delivery_id: int) -> bool:
        return self.inner.retry_dead(delivery_id)

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()


def main(database_url: str, now: str) -> int:
    app = bootstrap(
        Settings(database_url=database_url), clock=FakeClock(datetime.fromisoformat(now))
    )
    register(app.registry)
    app.bus.transport = DieAfterPublish(app.bus.transport)
    relay_once(app)
    return 3  # not reached unless the relay published nothing


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
