"""Shared by the bus tests and the relay-crash child process.

Handlers record their effect as a row in ``bus_test_effects``, a table made here with plain
SQL (it is not part of the schema). The table has no unique constraint on purpose: if a
second delivery of an event ran its handler again, we would see two rows.
"""

from __future__ import annotations

from sqlalchemy import text

from potluck.bus import Event, HandlerContext
from potluck.db import Database

EFFECTS_TABLE = "bus_test_effects"


def reset_effects(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {EFFECTS_TABLE} ("
                "service VARCHAR(64) NOT NULL, event_id VARCHAR(40) NOT NULL)"
            )
        )
        conn.execute(text(f"DELETE FROM {EFFECTS_TABLE}"))


def record_effect(ctx: HandlerContext, event: Event) -> None:
    """A handler whose effect is one row, written in the delivery's transaction."""
    ctx.session.execute(
        text(f"INSERT INTO {EFFECTS_TABLE} (service, event_id) VALUES (:service, :event_id)"),
        {"service": ctx.service, "event_id": event.id},
    )


def count_effects(db: Database, *, event_id: str | None = None, service: str | None = None) -> int:
    query = f"SELECT count(*) FROM {EFFECTS_TABLE} WHERE 1 = 1"
    params: dict[str, str] = {}
    if event_id is not None:
        query += " AND event_id = :event_id"
        params["event_id"] = event_id
    if service is not None:
        query += " AND service = :service"
        params["service"] = service
    with db.read() as s:
        return int(s.execute(text(query), params).scalar_one())
