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
from sqlalchemy import Row, Select, func, select, text, update
from sqlalchemy.orm import Session

from potluck.bus.models import OutboxEvent
from potluck.bus.outbox import Event
from potluck.clock import utc

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()


def relay_once(app: Potluck, *, limit: int = 100) -> int:
    """Publish up to ``limit`` due outbox events; returns how many were published."""
    if app.db.dialect == "postgresql":
        return _relay_locked(app, limit)
    return _relay_sqlite(app, limit)


def _due(now: datetime, limit: int) -> Select[Any]:
    return (
        # Columns, not entities: the relay reads thousands of rows a second.
        select(
            OutboxEvent.id,
            OutboxEvent.type,
            OutboxEvent.occurred_at,
            OutboxEvent.version,
            OutboxEvent.data,
        )
        .where(OutboxEvent.status == "pending", OutboxEvent.deliver_after <= now)
        .order_by(OutboxEvent.deliver_after, OutboxEvent.id)
        .limit(limit)
    )


def _relay_locked(app: Potluck, limit: int) -> int:
    """PostgreSQL: the rows stay locked (SKIP LOCKED) until they are marked, so several
    relays can run side by side without publishing the same row at the same time."""
    now = app.clock.now()
    with app.db.transaction() as session:
        # An ordered index scan of the pending rows, not a bitmap scan: only an index scan
        # marks the entries of rows already sent (dead until vacuum) so that the next relay
        # skips them; a bitmap scan visits every one of them, round after round.
        session.execute(text("SET LOCAL enable_bitmapscan = off"))
        rows = session.execute(_due(now, limit).with_for_update(skip_locked=True))
        events = [_event(row) for row in rows]
        if not events:
            return 0
        errors = app.bus.transport.publish_many(events)
        return _mark_all(session, events, errors, now)


def _relay_sqlite(app: Potluck, limit: int) -> int:
    """SQLite: one writer at a time, and the in-process transport needs the write lock to
    store deliveries, so no transaction is held while publishing. Two relays could publish
    one row twice; that is the at-least-once case the inbox already handles."""
    now = app.clock.now()
    with app.db.lookup() as session:
        events = [_event(row) for row in session.execute(_due(now, limit))]
    if not events:
        return 0
    errors = app.bus.transport.publish_many(events)
    with app.db.transaction() as session:
        return _mark_all(session, events, errors, now)


def _mark_all(
    session: Session, events: list[Event], errors: list[str | None], now: datetime
) -> int:
    """Mark the published events sent in one statement; count the refused ones' attempts."""
    sent = [event.id for event, error in zip(events, errors, strict=True) if error is None]
    if sent:
        # "status = 'pending'" keeps this idempotent when two SQLite relays raced on a row.
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(sent), OutboxEvent.status == "pending")
            .values(status="sent", sent_at=now)
            .execution_options(synchronize_session=False)
        )
    for event, error in zip(events, errors, strict=True):
        if error is not None:
            _mark(session, event.id, now, error)
    return len(sent)


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


def _event(row: Row[Any]) -> Event:
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
