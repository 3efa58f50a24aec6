"""The bus runtime: one object that owns the transport, the relay and the workers.

``drain()`` runs them until nothing is due (tests, CLI); ``start()``/``stop()`` run them in a
background thread for embedded mode (``potluck serve``). Time always comes from
``app.clock``, so a test moves a FakeClock to fire timers and retries instead of sleeping.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import structlog

from potluck.bus.relay import outbox_stats, relay_once
from potluck.bus.transport import DeadLetter, Transport, make_transport
from potluck.bus.worker import work_once

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()


class Bus:
    def __init__(self, app: Potluck) -> None:
        self.app = app
        self.transport: Transport = make_transport(app)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------ one step at a time

    def relay_once(self, *, limit: int = 100) -> int:
        """Publish due outbox events; returns how many were published."""
        return relay_once(self.app, limit=limit)

    def work_once(self, service: str | None = None, *, limit: int = 100) -> int:
        """Apply due deliveries (of one service, or all); returns how many were handled."""
        return work_once(self.app, service, limit=limit)

    def drain(self, *, max_rounds: int = 100) -> int:
        """Relay and work until nothing is due; returns events published + deliveries handled.

        A handler may publish new events, hence rounds. Failed deliveries wait for their
        backoff (on the clock), so they do not keep a drain going.
        """
        total = 0
        for _ in range(max_rounds):
            done = self.relay_once() + self.work_once()
            if done == 0:
                break
            total += done
        return total

    # ------------------------------------------------------------ embedded mode

    def start(self) -> None:
        """Run relay and workers in a daemon thread until ``stop()``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="potluck-bus", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Ask the loop to finish its current round and wait for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("bus.stop_timeout", timeout_seconds=timeout)
            self._thread = None

    def _run(self) -> None:
        interval = self.app.settings.bus_poll_interval_seconds
        while not self._stopping.is_set():
            try:
                busy = self.relay_once() + self.work_once() > 0
            except Exception:
                # The loop must outlive a database hiccup; the next round retries.
                log.exception("bus.loop_error")
                busy = False
            if not busy:
                # Event.wait returns at once on stop(), so shutdown does not wait a full poll.
                self._stopping.wait(interval)

    # ------------------------------------------------------------ operations

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        return self.transport.dead_letters(limit=limit)

    def retry_dead(self, delivery_id: int) -> bool:
        return self.transport.retry_dead(delivery_id)

    def stats(self) -> dict[str, Any]:
        """Outbox depth and lag, queue depth and dead letters: for /readyz and admin status."""
        return {**outbox_stats(self.app), **self.transport.stats()}
