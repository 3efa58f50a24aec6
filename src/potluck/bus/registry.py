"""Handler registration: each service registers plain functions per event type."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from potluck.bus.outbox import Event, publish

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


Handler = Callable[[HandlerContext, Event], None]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, dict[str, list[Handler]]] = defaultdict(lambda: defaultdict(list))

    def register(self, service: str, event_type: str, handler: Handler) -> None:
        self._handlers[service][event_type].append(handler)

    def services(self) -> list[str]:
        return sorted(self._handlers)

    def services_for(self, event_type: str) -> list[str]:
        return sorted(s for s, by_type in self._handlers.items() if event_type in by_type)

    def event_types(self, service: str) -> list[str]:
        return sorted(self._handlers.get(service, {}))

    def handlers(self, service: str, event_type: str) -> list[Handler]:
        return list(self._handlers.get(service, {}).get(event_type, []))
