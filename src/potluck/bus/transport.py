"""Transports: how a relayed event reaches the services that consume it.

The relay hands every due outbox event to ``Transport.publish``; workers call
``Transport.consume`` with a function that applies one event for one service inside a
database transaction (inbox + handlers, see ``worker.apply_event``). Everything a product
sees (``publish()`` into the outbox, handlers on the registry) is independent of the
transport, so a RabbitMQ transport only has to implement this interface.

``InProcessTransport`` (embedded mode) keeps its queue in the same database: one
``bus_deliveries`` row per (event, subscribed service). Taking a delivery, applying the
event and marking the delivery done all happen in one transaction, so a crash at any point
leaves the delivery pending and it is simply taken again.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.orm import Session

from potluck.bus.models import DELIVERIES, Delivery, OutboxEvent
from potluck.bus.outbox import Event
from potluck.clock import utc
from potluck.config import Settings

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()

# Applies ``event`` for ``service`` in ``session``; raises if a handler fails. Its return
# value is ignored.
Apply = Callable[[Session, str, Event], object]
# Applies several events for ``service`` in ``session``, all or none (raises on failure).
ApplyBatch = Callable[[Session, str, Sequence[Event]], object]

_MAX_ERROR_CHARS = 4000
# PostgreSQL's "this transaction lost a race, run it again" errors: deadlock_detected,
# serialization_failure, lock_not_available. Another transaction held what the handler
# needed; once this batch commits and lets go of its own locks, the handler will likely
# succeed, so such a failure is retried at once (up to this many times) instead of after the
# backoff, which would add a second or more of latency to an event that did nothing wrong.
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
_IMMEDIATE_CONFLICT_RETRIES = 3


def is_lock_conflict(exc: BaseException) -> bool:
    """Did the database refuse this transaction only because of a concurrent one?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None) in _CONFLICT_SQLSTATES:
            return True
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and getattr(orig, "sqlstate", None) in (
            _CONFLICT_SQLSTATES
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff, capped, and a dead-letter after ``max_attempts`` failures."""

    base_seconds: float
    max_seconds: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_seconds=settings.bus_backoff_base_seconds,
            max_seconds=settings.bus_backoff_max_seconds,
            max_attempts=settings.bus_max_attempts,
        )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure: base, 2×base, 4×base… capped."""
        # min() on the exponent first keeps 2**n from growing without bound.
        return min(self.base_seconds * 2 ** min(max(attempts - 1, 0), 62), self.max_seconds)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that failed ``bus_max_attempts`` times and waits for a person."""

    id: int
    event_id: str
    service: str
    type: str
    attempts: int
    last_error: str | None
    failed_at: datetime


class Transport(ABC):
    """Moves published events to consuming services, at least once."""

    @abstractmethod
    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscribed service; durable once this returns."""

    def publish_many(self, events: Sequence[Event]) -> list[str | None]:
        """Publish several events; returns, per event, None or the error text of a refusal.

        Transports override it to make one round trip (one transaction, one confirm wait)
        for a whole relay batch.
        """
        errors: list[str | None] = []
        for event in events:
            try:
                self.publish(event)
            except Exception as exc:
                log.warning(
                    "bus.publish_failed", event_id=event.id, event_type=event.type, exc_info=exc
                )
                errors.append(error_text(exc))
            else:
                errors.append(None)
        return errors

    @abstractmethod
    def consume(
        self,
        services: Sequence[str],
        apply: Apply,
        *,
        limit: int,
        apply_batch: ApplyBatch | None = None,
    ) -> int:
        """Take up to ``limit`` due messages for ``services`` and ``apply`` each one.

        With ``apply_batch``, a transport may apply several messages of one service in one
        call (and one transaction), falling back to ``apply`` one by one when the batch fails.

        ``apply`` runs inside a database transaction; a message is acknowledged only after
        that transaction commits. On failure the message is retried with backoff and
        dead-lettered after repeated failures. Returns how many messages were handled
        (successfully or not).
        """

    @abstractmethod
    def dead_letters(self, *, limit: int = 50) -> list[DeadLetter]:
        """Messages that exhausted their retries, most recent first."""

    @abstractmethod
    def retry_dead(self, delivery_id: int) -> bool:
        """Queue a dead message again with a fresh retry budget; False if it is not dead."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Queue depth figures for /readyz and the admin status."""


def error_text(exc: BaseException) -> str:
    """What we store as ``last_error``: the exception and the last frames, bounded."""
    text = "".join(traceback.format_exception(exc, limit=-3))
    return text[-_MAX_ERROR_CHARS:]


class InProcessTransport(Transport):
    """The embedded transport: a queue table (``bus_deliveries``) in the application database."""

    def __init__(self, app: Potluck) -> None:
        self.app = app
        self.retry = RetryPolicy.from_settings(app.settings)
        self.batch_size = app.settings.bus_batch_size

    def publish(self, event: Event) -> None:
        error = self.publish_many([event])[0]
        if error is not None:
            raise RuntimeError(error)

    def publish_many(self, events: Sequence[Event]) -> list[str | None]:
        now = self.app.clock.now()
        # No unique constraint on (event, service): a republished event gets new rows and
        # the consumer's inbox turns the second delivery into a no-op.
        rows = [
            {
                "event_id": event.id,
                "service": service,
                "type": event.type,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for event in events
            for service in self.app.registry.services_for(event.type)
        ]
        if rows:  # an event nobody subscribes to has nothing to deliver
            try:
                with self.app.db.transaction() as session:
                    session.connection().execute(insert(DELIVERIES), rows)
            except Exception as exc:
                log.warning("bus.publish_failed", events=len(events), exc_info=exc)
                return [error_text(exc)] * len(events)
        return [None] * len(events)

    def consume(
        self,
        services: Sequence[str],
        apply: Apply,
        *,
        limit: int,
        apply_batch: ApplyBatch | None = None,
    ) -> int:
        handled = 0
        while handled < limit:
            size = min(self.batch_size, limit - handled)
            taken = self._consume_batch(services, apply, apply_batch, size)
            if taken == 0:
                break
            handled += taken
        return handled

    def _consume_batch(
        self,
        services: Sequence[str],
        apply: Apply,
        apply_batch: ApplyBatch | None,
        size: int,
    ) -> int:
        """Apply up to ``size`` due deliveries in one transaction, each in its own savepoint.

        One commit for the batch instead of one per delivery (the commit is what costs); a
        failing handler rolls back its own savepoint only and its delivery is scheduled for a
        retry. If the transaction as a whole fails (the database went away), nothing of the
        batch is kept and every delivery is simply taken again.
        """
        now = self.app.clock.now()
        due = (
            Delivery.status == "pending",
            Delivery.next_attempt_at <= now,
            Delivery.service.in_(services),
        )
        # An idle poll only reads: on SQLite a write transaction would take the one write
        # lock several times a second for nothing, in the way of the requests.
        postgres = self.app.db.dialect == "postgresql"
        with self.app.db.lookup() as session:
            if postgres:  # see relay._relay_locked: index scans skip the rows already done
                session.execute(text("SET LOCAL enable_bitmapscan = off"))
            if session.execute(select(Delivery.id).where(*due).limit(1)).first() is None:
                return 0
        with self.app.db.transaction() as session:
            if postgres:
                session.execute(text("SET LOCAL enable_bitmapscan = off"))
            # Plain rows, not ORM objects: at a few thousand deliveries a second, building
            # and tracking entities costs more than the SQL.
            deliveries: list[Row[Any]] = list(
                session.execute(
                    select(
                        Delivery.id,
                        Delivery.event_id,
                        Delivery.service,
                        Delivery.type,
                        Delivery.attempts,
                    )
                    .where(*due)
                    .order_by(Delivery.next_attempt_at, Delivery.id)
                    .limit(size)
                    # PostgreSQL: lets several workers share the queue. SQLite ignores it and
                    # BEGIN IMMEDIATE already makes this transaction the only writer.
                    .with_for_update(skip_locked=True)
                )
            )
            if not deliveries:
                return 0
            events = _load_events(session, {d.event_id for d in deliveries})
            done: list[int] = []
            one_by_one = deliveries
            if apply_batch is not None:
                # Each service's deliveries in one savepoint; a group that fails is applied
                # again one delivery at a time below, so only the failing one is retried.
                one_by_one = []
                groups: dict[str, list[Row[Any]]] = {}
                for delivery in deliveries:
                    if delivery.event_id in events:
                        groups.setdefault(delivery.service, []).append(delivery)
                    else:
                        one_by_one.append(delivery)
                for service, group in groups.items():
                    try:
                        with session.begin_nested():
                            apply_batch(session, service, [events[d.event_id] for d in group])
                    except Exception as exc:
                        if len(group) == 1:
                            self._record_failure(session, group[0], exc, now)
                        else:
                            one_by_one.extend(group)
                    else:
                        done.extend(d.id for d in group)
            for delivery in one_by_one:
                event = events.get(delivery.event_id)
                try:
                    if event is None:
                        raise LookupError(f"event {delivery.event_id} is not in bus_outbox")
                    # A savepoint: the handler's writes roll back on failure, but we keep the
                    # row lock while recording the failure, so no other worker can take the
                    # delivery again before its backoff is written.
                    with session.begin_nested():
                        apply(session, delivery.service, event)
                except Exception as exc:
                    self._record_failure(session, delivery, exc, now)
                else:
                    done.append(delivery.id)
            if done:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(done))
                    .values(status="done", updated_at=now)
                    .execution_options(synchronize_session=False)
                )
        return len(deliveries)

    def _record_failure(
        self, session: Session, delivery: Row[Any], exc: Exception, now: datetime
    ) -> None:
        attempts = delivery.attempts + 1
        fields = {
            "delivery_id": delivery.id,
            "event_id": delivery.event_id,
            "service": delivery.service,
            "event_type": delivery.type,
            "attempts": attempts,
        }
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": error_text(exc),
            "updated_at": now,
        }
        if self.retry.exhausted(attempts):
            values["status"] = "dead"
            log.error("bus.delivery_dead", **fields, exc_info=exc)
        elif attempts <= _IMMEDIATE_CONFLICT_RETRIES and is_lock_conflict(exc):
            values["next_attempt_at"] = now
            log.info("bus.delivery_conflict", **fields, error=str(exc).splitlines()[0])
        else:
            delay = self.retry.delay(attempts)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
            log.warning("bus.delivery_failed", **fields, retry_in_seconds=delay, exc_info=exc)
        session.execute(update(Delivery).where(Delivery.id == delivery.id).values(**values))

    def dead_letters(self, *, limit: int = 50) -> list[DeadLetter]:
        with self.app.db.read() as session:
            rows = session.execute(
                select(Delivery)
                .where(Delivery.status == "dead")
                .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
                .limit(limit)
            ).scalars()
            return [
                DeadLetter(
                    id=d.id,
                    event_id=d.event_id,
                    service=d.service,
                    type=d.type,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    failed_at=utc(d.updated_at),
                )
                for d in rows
            ]

    def retry_dead(self, delivery_id: int) -> bool:
        now = self.app.clock.now()
        with self.app.db.transaction() as session:
            # last_error is kept so the next failure (or success) can be compared with it.
            requeued = session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now)
                .returning(Delivery.id)
            ).scalar_one_or_none()
        retried = requeued is not None
        if retried:
            log.info("bus.delivery_requeued", delivery_id=delivery_id)
        return retried

    def stats(self) -> dict[str, Any]:
        with self.app.db.read() as session:
            counts = dict(
                session.execute(
                    select(Delivery.status, func.count())
                    .where(Delivery.status.in_(("pending", "dead")))
                    .group_by(Delivery.status)
                ).all()
            )
        return {
            "deliveries_pending": int(counts.get("pending", 0)),
            "deliveries_dead": int(counts.get("dead", 0)),
        }


def _load_events(session: Session, event_ids: set[str]) -> dict[str, Event]:
    rows = session.execute(
        select(
            OutboxEvent.id,
            OutboxEvent.type,
            OutboxEvent.occurred_at,
            OutboxEvent.version,
            OutboxEvent.data,
        ).where(OutboxEvent.id.in_(event_ids))
    )
    return {
        row.id: Event(
            id=row.id,
            type=row.type,
            occurred_at=utc(row.occurred_at),
            version=row.version,
            data=row.data,
        )
        for row in rows
    }


def make_transport(app: Potluck) -> Transport:
    """The transport ``settings.transport`` names."""
    if app.settings.transport == "inprocess":
        return InProcessTransport(app)
    if app.settings.transport == "rabbitmq":
        from potluck.bus.rabbitmq import RabbitMQTransport  # pika is only loaded when used

        return RabbitMQTransport(app)
    raise ValueError(f"unknown transport {app.settings.transport!r}")
