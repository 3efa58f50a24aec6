"""A relay killed between publishing and marking sent: the event is delivered again, and the
consumer's inbox keeps its effect single (DESIGN.md, "Events"; issue 2, "Prove it")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from potluck.bus import publish
from potluck.bus.models import Delivery, InboxEntry, OutboxEvent
from tests.integration.bus_helpers import count_effects, reset_effects
from tests.integration.relay_crash_child import EVENT_TYPE, SERVICE, register

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.inprocess_transport  # the child process relays through the in-process queue table
def test_relay_killed_after_publish_delivers_again_with_one_effect(potluck, db, database_url):
    reset_effects(db)
    register(potluck.registry)
    with db.transaction() as s:
        event_id = publish(s, EVENT_TYPE, {"n": 1}, now=potluck.clock.now())

    child = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "tests.integration.relay_crash_child",
            database_url,
            potluck.clock.now().isoformat(),
        ],
        cwd=REPO_ROOT,
        env=os.environ | {"POTLUCK_TRANSPORT": "inprocess"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr

    # FOR UPDATE without SKIP LOCKED: on PostgreSQL this waits until the server has rolled
    # back the dead relay's transaction (and released its row lock), rather than guessing.
    with db.transaction() as s:
        row = s.execute(
            select(OutboxEvent).where(OutboxEvent.id == event_id).with_for_update()
        ).scalar_one()
        assert (row.status, row.sent_at) == ("pending", None)
    with db.read() as s:
        statuses = s.execute(select(Delivery.status).where(Delivery.event_id == event_id))
        assert list(statuses.scalars()) == ["pending"]  # the child's publish was durable

    assert potluck.bus.drain() > 0

    with db.read() as s:
        assert s.get(OutboxEvent, event_id).status == "sent"
        deliveries = s.execute(
            select(Delivery.service, Delivery.status).where(Delivery.event_id == event_id)
        ).all()
        assert sorted(deliveries) == [(SERVICE, "done"), (SERVICE, "done")]
        inbox = s.execute(
            select(func.count()).select_from(InboxEntry).where(InboxEntry.event_id == event_id)
        ).scalar_one()
        assert inbox == 1
    assert count_effects(db, event_id=event_id) == 1
