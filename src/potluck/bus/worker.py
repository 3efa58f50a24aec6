"""Workers: apply delivered events to a service, exactly once per (service, event).

Delivery is at least once (a relay that crashes republishes; a worker that crashes before
its commit is handed the message again). The inbox row is written in the same transaction
as the handlers' effect, so a second delivery of an already applied event changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from potluck.bus.models import INBOX
from potluck.bus.outbox import Event
from potluck.bus.registry import HandlerContext

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()


class NoHandler(LookupError):
    """A service was handed an event type it has no handler for (a wiring mistake)."""


def apply_event(app: Potluck, session: Session, service: str, event: Event) -> bool:
    """Record ``event`` in ``service``'s inbox and run its handlers, in ``session``.

    Returns False (and runs nothing) when the inbox shows the event was already applied.
    Any handler exception propagates: the caller rolls the whole effect back, inbox included.
    """
    return apply_events(app, session, service, [event]) == 1


def apply_events(app: Potluck, session: Session, service: str, events: Sequence[Event]) -> int:
    """Record ``events`` in ``service``'s inbox and apply the ones not applied before.

    A type with a batch handler gets all its fresh events in one call (one ledger batch for
    ten wallet credits instead of ten); other types run their handlers event by event.
    Returns how many events were fresh. Any handler exception propagates: the caller rolls
    the whole effect back, inbox included.
    """
    if not events:
        return 0
    now = app.clock.now()
    # INSERT … ON CONFLICT DO NOTHING rather than "SELECT, then INSERT": when two deliveries
    # of one event race on PostgreSQL, the second waits for the first to commit and then
    # inserts nothing, instead of failing on the unique constraint.
    dialect_insert = postgresql.insert if app.db.dialect == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: rowcount is not reliable across drivers (-1 means "unknown").
    rows = [
        {"service": service, "event_id": e.id, "type": e.type, "processed_at": now}
        for e in {e.id: e for e in events}.values()  # one row per event, even if repeated
    ]
    # A list of parameter sets, not .values(rows): SQLAlchemy then sends one cached
    # multi-row INSERT ("insertmanyvalues") instead of compiling a new statement per batch.
    inserted = set(
        session.connection()
        .execute(
            dialect_insert(INBOX)
            .on_conflict_do_nothing(index_elements=["service", "event_id"])
            .returning(INBOX.c.event_id),
            rows,
        )
        .scalars()
    )
    fresh: dict[str, list[Event]] = {}
    for event in events:
        if event.id in inserted:
            inserted.discard(event.id)  # a repeated event in the list is applied once
            fresh.setdefault(event.type, []).append(event)
    ctx = HandlerContext(session=session, now=now, app=app, service=service)
    for event_type, group in fresh.items():
        batch = app.registry.batch_handler(service, event_type)
        if batch is not None:
            batch(ctx, group)
            continue
        handlers = app.registry.handlers(service, event_type)
        if not handlers:
            # Failing (and so retrying, then dead-lettering) is safer than acknowledging an
            # event nobody applied: a deploy that adds the handler can then retry it.
            raise NoHandler(f"service {service!r} has no handler for {event_type!r}")
        for event in group:
            for handler in handlers:
                handler(ctx, event)
    return sum(len(g) for g in fresh.values())


def work_once(
    app: Potluck, service: str | None = None, *, limit: int = 100, pollers: bool = True
) -> int:
    """Apply up to ``limit`` due deliveries for ``service`` (or every registered service),
    then run the service's pollers once.

    Returns how many deliveries were handled, successfully or not. A service that is not
    registered in this process is never consumed here, so a worker pool only takes its own
    messages.
    """
    services = [service] if service is not None else app.registry.services()
    if not services:
        return 0
    done = app.bus.transport.consume(
        services,
        partial(apply_event, app),
        limit=limit,
        apply_batch=partial(apply_events, app),
    )
    if pollers:
        done += run_pollers(app, services)
    return done


def run_pollers(app: Potluck, services: Sequence[str]) -> int:
    """Run the pollers of ``services`` once; returns how much they did."""
    done = 0
    for name in services:
        for poller in app.registry.pollers(name):
            try:
                done += poller(app)
            except Exception:
                # One service's failing poller (a bank that is down) must not stop the
                # others; the poller's own bookkeeping decides when its work is due again.
                log.exception("bus.poller_failed", service=name, poller=poller.__qualname__)
    return done
