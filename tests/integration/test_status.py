"""Heartbeats, `potluck status` and `GET /v1/admin/status`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from potluck import cli
from potluck.api.app import create_app
from potluck.bootstrap import bootstrap
from potluck.bus import publish
from potluck.bus.models import DELIVERIES, Heartbeat
from potluck.bus.status import HeartbeatWriter, collect_status
from potluck.config import Settings, get_settings
from potluck.identity.service import promote_user
from tests.integration.test_identity import assert_problem, signed_in

PROBLEM = "application/problem+json"


@pytest.fixture
def potluck(settings, db, clock):
    """The in-process transport even under POTLUCK_TRANSPORT=rabbitmq: these tests read the
    queue table (the broker's side is covered by the fault tests)."""
    return bootstrap(settings.model_copy(update={"transport": "inprocess"}), db=db, clock=clock)


def heartbeat_rows(potluck):
    with potluck.db.read() as s:
        return {
            row.id: (row.kind, row.services)
            for row in s.execute(select(Heartbeat.id, Heartbeat.kind, Heartbeat.services))
        }


def test_heartbeats_list_processes_alive_then_stale(potluck, clock):
    counts = {"processed": 5, "errors": 1}
    worker = HeartbeatWriter(potluck, "worker", ["splitter", "wallets"], counts=lambda: counts)
    relay = HeartbeatWriter(potluck, "relay", counts=lambda: {"published": 7})
    worker.beat()
    relay.beat()

    report = collect_status(potluck)
    assert report["database"] == {"status": "ok"}
    assert report["broker"]["status"] == "skipped"
    assert (report["workers_seen"], report["relays_seen"], report["stale"]) == (1, 1, 0)
    seen = {p["id"]: p for p in report["processes"]}
    assert seen[worker.id]["services"] == ["splitter", "wallets"]
    assert (seen[worker.id]["processed"], seen[worker.id]["errors"]) == (5, 1)
    assert seen[relay.id]["published"] == 7
    # Distributed mode with only two services consumed: the others are named, and degraded.
    assert "splitter" not in report["unconsumed_services"]
    assert "webhooks" in report["unconsumed_services"]
    assert report["status"] == "degraded"

    # No heartbeat for longer than heartbeat_stale_seconds: stale, no longer counted.
    clock.advance(potluck.settings.heartbeat_stale_seconds + 1)
    counts["processed"] = 9
    worker.beat()  # the worker is still alive; the relay is not
    report = collect_status(potluck)
    seen = {p["id"]: p for p in report["processes"]}
    assert (report["workers_seen"], report["relays_seen"], report["stale"]) == (1, 0, 1)
    assert seen[relay.id]["stale"]
    assert not seen[worker.id]["stale"]
    assert seen[worker.id]["processed"] == 9
    assert seen[worker.id]["started_at"] < seen[worker.id]["last_seen_at"]

    # A clean stop deletes the row; a day-old row is pruned by the next process.
    worker.remove()
    clock.advance(timedelta(days=1).total_seconds())
    assert HeartbeatWriter(potluck, "api").prune() == 1
    assert heartbeat_rows(potluck) == {}


def test_every_service_consumed_is_ok(potluck):
    every = potluck.registry.services()
    HeartbeatWriter(potluck, "worker", every[:2], counts=dict).beat()
    HeartbeatWriter(potluck, "worker", every[2:], counts=dict).beat()
    HeartbeatWriter(potluck, "relay", counts=dict).beat()
    report = collect_status(potluck)
    assert report["unconsumed_services"] == []
    assert report["status"] == "ok"
    assert report["workers_seen"] == 2


def test_status_reports_outbox_lag_queue_depths_and_dead_letters(potluck, clock):
    with potluck.db.transaction() as s:
        publish(s, "status.test", {"n": 1}, now=clock.now())
        publish(s, "status.now", {"n": 2}, now=clock.now(), deliver_after=clock.now())
        timer = clock.now() + timedelta(hours=1)
        publish(s, "status.timer", {"n": 3}, now=clock.now(), deliver_after=timer)
    clock.advance(12)
    now = clock.now()
    row = {"event_id": "ev", "type": "t", "attempts": 0, "created_at": now, "updated_at": now}
    with potluck.db.transaction() as s:
        s.execute(
            insert(DELIVERIES),
            [
                {**row, "service": "splitter", "status": "pending", "next_attempt_at": now},
                {**row, "service": "splitter", "status": "pending", "next_attempt_at": now},
                {**row, "service": "wallets", "status": "pending", "next_attempt_at": now},
                {**row, "service": "wallets", "status": "done", "next_attempt_at": now},
                {**row, "service": "webhooks", "status": "dead", "next_attempt_at": now},
            ],
        )
    report = collect_status(potluck)
    assert report["outbox"] == {"pending": 3, "due": 2, "lag_seconds": 12.0}
    assert report["queues"]["splitter"] == 2
    assert report["queues"]["wallets"] == 1
    assert report["queues"]["webhooks"] == 0
    assert report["dead_letters"] == 1
    # Not in distributed mode (no worker or relay reported): nothing is "unconsumed".
    assert report["unconsumed_services"] == []
    assert report["status"] == "ok"
    with potluck.db.transaction() as s:  # let the relay's rows go: the test leaves no backlog
        s.execute(update(DELIVERIES).values(status="done"))


def test_status_answers_when_the_database_is_away():
    app = bootstrap(
        Settings(
            database_url="postgresql+psycopg://postgres@127.0.0.1:1/nothing",
            secret_key="status-secret-key-that-is-long-enough-0123456789",
            transport="rabbitmq",
            broker_url="amqp://guest:guest@127.0.0.1:1/",
        )
    )
    report = collect_status(app)
    assert report["status"] == "degraded"
    assert report["database"]["status"] == "error"
    assert report["broker"]["status"] == "error"
    assert report["processes"] == []
    assert report["outbox"] is None
    assert report["queues"] is None


def test_admin_status_endpoint_is_for_admins(potluck, clock):
    HeartbeatWriter(potluck, "relay", counts=lambda: {"published": 3}).beat()
    with TestClient(create_app(potluck)) as client:
        assert_problem(client.get("/v1/admin/status"), 401, "unauthorized")
        headers = signed_in(client)
        assert_problem(client.get("/v1/admin/status", headers=headers), 403, "admin_required")
        promote_user(potluck, email="ada@example.com")
        r = client.get("/v1/admin/status", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["database"] == {"status": "ok", "detail": None}
    assert body["relays_seen"] == 1
    assert body["processes"][0]["kind"] == "relay"
    assert body["processes"][0]["published"] == 3
    assert body["outbox"]["pending"] >= 0
    # With the FakeClock the app writes no heartbeat of its own.
    assert [kind for kind, _ in heartbeat_rows(potluck).values()] == ["relay"]


def test_an_api_process_writes_its_heartbeat_while_it_runs(settings, db):
    app = bootstrap(settings, db=db)  # the system clock: a real process
    with TestClient(create_app(app)):
        assert list(heartbeat_rows(app).values()) == [("api", "")]
    assert heartbeat_rows(app) == {}  # a clean stop deletes the row


def test_status_command_prints_json_and_exits_1_when_degraded(database_url, db, monkeypatch):
    monkeypatch.setenv("POTLUCK_DATABASE_URL", database_url)
    monkeypatch.setenv("POTLUCK_TRANSPORT", "inprocess")
    monkeypatch.setenv("POTLUCK_SECRET_KEY", "status-secret-key-that-is-long-enough-0123456789")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["status", "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["database"]["status"] == "ok"
        assert report["processes"] == []
        now = datetime.now(UTC)
        with db.transaction() as s:
            s.execute(
                insert(Heartbeat).values(
                    id="worker:h:1:x",
                    kind="worker",
                    services="splitter",
                    host="h",
                    pid=1,
                    started_at=now,
                    last_seen_at=now,
                    published=0,
                    processed=0,
                    errors=0,
                )
            )
        result = CliRunner().invoke(cli.app, ["status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1  # the other services have no live worker
    assert "no live worker for" in result.output
    assert "splitter" in result.output
