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
from potluck.bus.worker import run_pollers, work_once

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()


class Bus:
    def __init__(self, app: Potluck) -> None:
        self.app = app
        self.transport: Transport = make_transport(app)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        # What this process's loops did since it started (its heartbeat reports them).
        self.counts = {"published": 0, "processed": 0, "errors": 0}

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
        """Run relay and workers in daemon threads until ``stop()``.

        One thread relays and applies deliveries; each service with pollers gets a thread of
        its own, so a slow bank or a dead webhook URL never holds up the events of the others.
        """
        if any(t.is_alive() for t in self._threads):
            return
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._run, name="potluck-bus", daemon=True)]
        for service in self.app.registry.services():
            if self.app.registry.pollers(service):
                self._threads.append(
                    threading.Thread(
                        target=self._run_pollers,
                        args=(service,),
                        name=f"potluck-poller-{service}",
                        daemon=True,
                    )
                )
        for thread in self._threads:
            thread.start()

    @property
    def running(self) -> bool:
        """Whether the embedded relay and workers run in this process (``start()``)."""
        return any(t.is_alive() for t in self._threads)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Ask the loops to finish their current round and wait for them."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("bus.stop_timeout", thread=thread.name, timeout_seconds=timeout)
        self._threads = []

    def _run(self) -> None:
        interval = self.app.settings.bus_poll_interval_seconds
        while not self._stopping.is_set():
            try:
                published = self.relay_once()
                self.counts["published"] += published
                processed = self._work_deliveries()
                self.counts["processed"] += processed
                busy = published + processed > 0
            except Exception:
                # The loop must outlive a database hiccup; the next round retries.
                log.exception("bus.loop_error")
                self.counts["errors"] += 1
                busy = False
            if not busy:
                # Event.wait returns at once on stop(), so shutdown does not wait a full poll.
                self._stopping.wait(interval)

    def _work_deliveries(self) -> int:
        """Deliveries of every service, without the pollers (they have their own threads)."""
        return work_once(self.app, limit=100, pollers=False)

    def _run_pollers(self, service: str) -> None:
        interval = self.app.settings.bus_poll_interval_seconds
        while not self._stopping.is_set():
            busy = run_pollers(self.app, [service]) > 0  # run_pollers logs a poller's failure
            if not busy:
                self._stopping.wait(interval)

    # ------------------------------------------------------------ separate processes

    def run_relay(self, stop: threading.Event) -> None:
        """``potluck relay``: publish due outbox events until ``stop`` is set."""
        interval = self.app.settings.bus_poll_interval_seconds
        while not stop.is_set():
            try:
                published = self.relay_once(limit=2 * self.app.settings.bus_batch_size)
                self.counts["published"] += published
                busy = published > 0
            except Exception:
                log.exception("bus.relay_error")  # the database went away: try again
                self.counts["errors"] += 1
                busy = False
            if not busy:
                stop.wait(interval)

    def run_worker(self, services: list[str], stop: threading.Event) -> None:
        """``potluck worker --service …``: apply these services' deliveries and run their
        pollers until ``stop`` is set. Several workers of one service share its queue."""
        interval = self.app.settings.bus_poll_interval_seconds
        while not stop.is_set():
            busy = False
            for service in services:
                try:
                    processed = self.work_once(service, limit=2 * self.app.settings.bus_batch_size)
                    self.counts["processed"] += processed
                    busy = processed > 0 or busy
                except Exception:
                    log.exception("bus.worker_error", service=service)
                    self.counts["errors"] += 1
            if not busy:
                stop.wait(interval)

    # ------------------------------------------------------------ operations

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        return self.transport.dead_letters(limit=limit)

    def retry_dead(self, delivery_id: int) -> bool:
        return self.transport.retry_dead(delivery_id)

    def stats(self) -> dict[str, Any]:
        """Outbox depth and lag, queue depth and dead letters: for /readyz and admin status."""
        return {**outbox_stats(self.app), **self.transport.stats()}
