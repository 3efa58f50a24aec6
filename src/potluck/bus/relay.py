"""The relay: moves due outbox rows to the transport, then marks them sent.

Publishing and marking sent cannot be one atomic step (the transport may be a broker), so the
order is what gives at-least-once delivery: publish first, mark sent after. A relay that dies
in between leaves the row pending and the next relay publishes it again; the consumers' inbox
keeps the effect single. A delayed event (``deliver_after`` in the future) is a timer: it is
simply not due yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from potluck.bus.models import OutboxEvent
from potluck.bus.outbox import Event
from potluck.bus.transport import Transport, error_text
from potluck.clock import utc

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()


def relay_once(app: Potluck, *, limit: int = 100) -> int:
    """Publish up to ``limit`` due outbox events; returns how many were published."""
    if app.db.dialect == "postgresql":
        return _relay_locked(app, limit)
    return _relay_sqlite(app, limit)


def _due(now: datetime, limit: int) -> Select[OutboxEvent]:
    return (
        select(OutboxEvent)
        .where(OutboxEvent.status == "pending", OutboxEvent.deliver_after <= now)
        .order_by(OutboxEvent.deliver_after, OutboxEvent.id)
        .limit(limit)
    )


def _relay_locked(app: Potluck, limit: int) -> int:
    """PostgreSQL: the rows stay locked (SKIP LOCKED) until they are marked, so several
    relays can run side by side without publishing the same row at the same time."""
    transport = app.bus.transport
    now = app.clock.now()
    published = 0
    with app.db.transaction() as session:
        rows = session.execute(_due(now, limit).with_for_update(skip_locked=True)).scalars()
        for event in [_event(row) for row in rows]:
            error = _publish(transport, event)
            _mark(session, event.id, now, error)
            if error is None:
                published += 1
    return published


def _relay_sqlite(app: Potluck, limit: int) -> int:
    """SQLite: one writer at a time, and the in-process transport needs the write lock to
    store deliveries, so no transaction is held while publishing. Two relays could publish
    one row twice; that is the at-least-once case the inbox already handles."""
    transport = app.bus.transport
    now = app.clock.now()
    with app.db.read() as session:
        events = [_event(row) for row in session.execute(_due(now, limit)).scalars()]
    published = 0
    for event in events:
        error = _publish(transport, event)
        with app.db.transaction() as session:
            _mark(session, event.id, now, error)
        if error is None:
            published += 1
    return published


def _publish(transport: Transport, event: Event) -> str | None:
    """Publish ``event``; returns None, or the error text when the transport refused it."""
    try:
        transport.publish(event)
    except Exception as exc:
        log.warning("bus.publish_failed", event_id=event.id, event_type=event.type, exc_info=exc)
        return error_text(exc)
    return None


def _mark(session: Session, event_id: str, now: datetime, error: str | None) -> None:
    """Mark a published row sent, or count a failed attempt and leave it pending (the next
    round retries it)."""
    if error is None:
        # "status = 'pending'" keeps this idempotent when two SQLite relays raced on a row.
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id, OutboxEvent.status == "pending")
            .values(status="sent", sent_at=now)
        )
    else:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(attempts=OutboxEvent.attempts + 1, last_error=error)
        )


def _event(row: OutboxEvent) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        occurred_at=utc(row.occurred_at),
        version=row.version,
        data=row.data,
    )


def outbox_stats(app: Potluck) -> dict[str, Any]:
    """Pending outbox rows and the relay's lag (age of the oldest due, unsent event)."""
    now = app.clock.now()
    with app.db.read() as session:
        pending = session.execute(
            select(func.count()).where(OutboxEvent.status == "pending")
        ).scalar_one()
        oldest_due = session.execute(
            select(func.min(OutboxEvent.deliver_after)).where(
                OutboxEvent.status == "pending", OutboxEvent.deliver_after <= now
            )
        ).scalar_one()
    lag = (now - utc(oldest_due)).total_seconds() if oldest_due is not None else 0.0
    return {"outbox_pending": int(pending), "outbox_lag_seconds": max(lag, 0.0)}
