"""Handler registration: each service registers plain functions per event type."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from potluck.bus.outbox import Event, publish, publish_many

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck


@dataclass(slots=True)
class HandlerContext:
    """What a handler gets: the transaction its effect must be written in, and the app."""

    session: Session
    now: datetime
    app: Potluck
    service: str

    def publish(self, event_type: str, data: dict[str, Any], **kwargs: Any) -> str:
        return publish(self.session, event_type, data, now=self.now, **kwargs)

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return publish_many(self.session, events, now=self.now)


Handler = Callable[[HandlerContext, Event], None]
# A batch handler gets every fresh event of its type from one worker batch, in one call.
BatchHandler = Callable[[HandlerContext, list[Event]], None]
# A poller does work that must not sit inside one delivery's transaction (a call to a bank
# or a provider): it opens its own short transactions and returns how much it did.
Poller = Callable[["Potluck"], int]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, dict[str, list[Handler]]] = defaultdict(lambda: defaultdict(list))
        self._pollers: dict[str, list[Poller]] = defaultdict(list)
        self._batch: dict[tuple[str, str], BatchHandler] = {}

    def register(self, service: str, event_type: str, handler: Handler) -> None:
        if (service, event_type) in self._batch:
            raise ValueError(f"{service!r} has a batch handler for {event_type!r}")
        self._handlers[service][event_type].append(handler)

    def register_batch(self, service: str, event_type: str, handler: BatchHandler) -> None:
        """Let ``handler`` apply several events of ``event_type`` at once (it replaces
        per-event handlers for that type; the events' effects must not depend on each other's
        order)."""
        if self._handlers.get(service, {}).get(event_type) or (service, event_type) in self._batch:
            raise ValueError(f"{service!r} already handles {event_type!r}")
        self._batch[(service, event_type)] = handler
        self._handlers[service].setdefault(event_type, [])  # subscribes the service to the type

    def batch_handler(self, service: str, event_type: str) -> BatchHandler | None:
        return self._batch.get((service, event_type))

    def register_poller(self, service: str, poller: Poller) -> None:
        """Run ``poller(app)`` on every worker round of ``service`` (e.g. sending payouts)."""
        self._pollers[service].append(poller)

    def pollers(self, service: str) -> list[Poller]:
        return list(self._pollers.get(service, []))

    def services(self) -> list[str]:
        return sorted(set(self._handlers) | set(self._pollers))

    def services_for(self, event_type: str) -> list[str]:
        return sorted(s for s, by_type in self._handlers.items() if event_type in by_type)

    def event_types(self, service: str) -> list[str]:
        return sorted(self._handlers.get(service, {}))

    def handlers(self, service: str, event_type: str) -> list[Handler]:
        return list(self._handlers.get(service, {}).get(event_type, []))
