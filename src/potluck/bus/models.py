"""Event bus tables: outbox (written with the state change), in-process deliveries, inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, Index, Integer, String, Table, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, JSONType


class OutboxEvent(Base):
    """An event waiting to be published (status 'pending') or already handed to a transport."""

    __tablename__ = "bus_outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # A timer is an event whose deliver_after is in the future.
    deliver_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    # Optional de-duplication key: publishing twice with one key stores one event.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_bus_outbox_status_deliver_after", "status", "deliver_after"),
        # The relay's queue: only pending rows, in the relay's order. A queue table's rows
        # turn 'sent' at once, and until vacuum comes by the full index above still lists
        # every dead 'pending' version (a bitmap scan of 17,500 entries for 100 rows); an
        # ordered scan of this partial index marks dead entries as it passes and stays short.
        Index(
            "ix_bus_outbox_pending",
            "deliver_after",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class Delivery(Base):
    """The in-process transport's queue: one row per (published event, consuming service).

    A republished event gets new rows; the inbox makes the second delivery a no-op.
    """

    __tablename__ = "bus_deliveries"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), nullable=False)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    # pending | done | dead
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_bus_deliveries_status_next", "status", "next_attempt_at"),
        Index(
            "ix_bus_deliveries_pending",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_bus_deliveries_event", "event_id"),
    )


class InboxEntry(Base):
    """That a service has applied an event; written in the same transaction as the effect."""

    __tablename__ = "bus_inbox"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    event_id: Mapped[str] = mapped_column(String(40), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (UniqueConstraint("service", "event_id", name="uq_bus_inbox_service_event"),)


# The tables themselves, for Core statements on hot paths (no ORM bulk machinery).
OUTBOX = cast(Table, OutboxEvent.__table__)
DELIVERIES = cast(Table, Delivery.__table__)
INBOX = cast(Table, InboxEntry.__table__)


class Heartbeat(Base):
    """A running relay, worker or API process, as it last reported itself.

    Each process writes its own row every ``heartbeat_interval_seconds`` (an upsert by id);
    ``potluck status`` and ``GET /v1/admin/status`` list the rows seen recently and call the
    others stale. A process that stops cleanly deletes its row.
    """

    __tablename__ = "bus_heartbeats"

    # "<kind>:<host>:<pid>:<random>": unique per process start, so a restarted process with a
    # recycled pid does not overwrite the row of the one that died.
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # relay | worker | api | embedded
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # The services a worker consumes, comma-separated ("" for relays and API processes).
    services: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Counters since the process started: events published (relays), deliveries handled
    # (workers), loop errors (any).
    published: Mapped[int] = mapped_column(BigInt, nullable=False, default=0)
    processed: Mapped[int] = mapped_column(BigInt, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(BigInt, nullable=False, default=0)

    __table_args__ = (Index("ix_bus_heartbeats_last_seen_at", "last_seen_at"),)


HEARTBEATS = cast(Table, Heartbeat.__table__)
