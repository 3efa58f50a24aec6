"""The RabbitMQ transport against the local broker, on SQLite and PostgreSQL.

Each test uses its own namespace (``broker_namespace``: exchanges and queues
``test<pid>_<random>.…``) and deletes its queues and exchanges at the end, so test processes
running side by side do not see each other's messages. Retries are real broker delays (queue
TTLs), so the tests use a 50 ms base delay and wait on conditions with a deadline.

When RabbitMQ is not answering the tests are skipped with a hint; with ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pika
import pytest
from sqlalchemy import func, select, update

from potluck.bootstrap import Potluck, bootstrap
from potluck.bus import Event, HandlerContext, publish
from potluck.bus.models import InboxEntry, OutboxEvent
from potluck.bus.rabbitmq import RabbitMQTransport
from potluck.clock import FakeClock
from potluck.config import Settings
from potluck.db import Database
from tests.conftest import IN_CI
from tests.integration.bus_helpers import count_effects, record_effect, reset_effects
from tests.integration.test_marketplace_events import (
    assert_split_exactly_once,
    even_split,
    outbox,
    record,
    setup_platform,
    totals,
)

BROKER_URL = os.environ.get("POTLUCK_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
START_HINT = (
    "RabbitMQ is not answering at 127.0.0.1:5672; start it with `rabbitmq-server -detached` "
    "or set POTLUCK_TEST_BROKER_URL"
)
DEADLINE_SECONDS = 15.0


def require_rabbitmq() -> None:
    try:
        parameters = pika.URLParameters(BROKER_URL)
        parameters.connection_attempts = 1
        parameters.socket_timeout = 2
        pika.BlockingConnection(parameters).close()
    except Exception as exc:
        problem = f"{START_HINT} ({type(exc).__name__})"
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


MakeApp = Callable[..., Potluck]


@pytest.fixture
def make_app(settings: Settings, db: Database, clock: FakeClock) -> Iterator[MakeApp]:
    """Builds apps on the RabbitMQ transport, in one namespace per test; cleans the broker."""
    require_rabbitmq()
    reset_effects(db)
    namespace = f"test{os.getpid()}_{secrets.token_hex(4)}"
    apps: list[Potluck] = []

    def make(register: Callable[[Potluck], None] | None = None, **overrides: object) -> Potluck:
        update_ = {
            "transport": "rabbitmq",
            "broker_url": BROKER_URL,
            "broker_namespace": namespace,
            "bus_backoff_base_seconds": 0.05,
            "bus_backoff_max_seconds": 0.2,
            "bus_max_attempts": 3,
            "broker_consume_wait_seconds": 2.0,
            **overrides,
        }
        app = bootstrap(settings.model_copy(update=update_), db=db, clock=clock)
        if register is not None:  # before the first connection declares the topology
            register(app)
        apps.append(app)
        return app

    yield make
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    channel = connection.channel()
    for app in apps:
        transport = rabbit(app)
        transport.close()
        for name in transport.queue_names():
            channel.queue_delete(name)
    for name in (f"{namespace}.events", f"{namespace}.retry"):
        channel.exchange_delete(name)
    connection.close()


def rabbit(app: Potluck) -> RabbitMQTransport:
    transport = app.bus.transport
    assert isinstance(transport, RabbitMQTransport)
    return transport


def send(app: Potluck, event_type: str, data: dict[str, object] | None = None) -> str:
    with app.db.transaction() as s:
        return publish(s, event_type, data or {"n": 1}, now=app.clock.now())


def run_until(
    app: Potluck,
    done: Callable[[], bool],
    *,
    services: list[str] | None = None,
    timeout: float = DEADLINE_SECONDS,
) -> None:
    """Relay and work until ``done()``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        busy = app.bus.relay_once()
        for service in services or [None]:  # type: ignore[list-item]
            busy += app.bus.work_once(service)
        if done():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout} s")
        if not busy:
            time.sleep(0.01)  # a retry is waiting out its broker delay: poll again


def settle(app: Potluck, services: list[str]) -> None:
    """Work until the broker holds nothing ready or waiting in a delay queue for ``services``."""
    transport = rabbit(app)
    names = [transport.queue(s) for s in services] + [
        transport.retry_queue(ms) for ms in transport.retry_delays_ms()
    ]

    def empty() -> bool:
        depths = transport.stats()["broker_queues"]
        return all(depths[n] == 0 for n in names) and all(
            app.bus.work_once(s) == 0 for s in services
        )

    run_until(app, empty, services=services)


def inbox_rows(app: Potluck, event_id: str) -> int:
    with app.db.read() as s:
        return int(
            s.execute(
                select(func.count()).select_from(InboxEntry).where(InboxEntry.event_id == event_id)
            ).scalar_one()
        )


def outbox_row(app: Potluck, event_id: str) -> OutboxEvent:
    with app.db.read() as s:
        row = s.get(OutboxEvent, event_id)
        assert row is not None
        s.expunge(row)
        return row


def counting(calls: list[str], fail: Callable[[], bool] | None = None):
    """``record_effect`` that also counts its calls (and raises while ``fail()``)."""

    def handler(ctx: HandlerContext, event: Event) -> None:
        calls.append(event.id)
        record_effect(ctx, event)
        if fail is not None and fail():
            raise RuntimeError("boom: the handler is broken")

    return handler


# ---------------------------------------------------------------------------------------------


def test_event_reaches_each_subscribed_service_once_even_if_published_twice(make_app):
    calls: dict[str, list[str]] = {"alpha": [], "beta": [], "gamma": []}

    def register(app: Potluck) -> None:
        app.registry.register("alpha", "test.ping", counting(calls["alpha"]))
        app.registry.register("beta", "test.ping", counting(calls["beta"]))
        app.registry.register("gamma", "test.other", counting(calls["gamma"]))

    app = make_app(register)
    transport = rabbit(app)
    event_id = send(app, "test.ping")
    assert app.bus.relay_once() == 1
    assert outbox_row(app, event_id).status == "sent"

    # The message as it sits in alpha's queue: the envelope, persistent, id = event id.
    channel = transport.connection().channel()
    method, properties, body = channel.basic_get(transport.queue("alpha"), auto_ack=False)
    assert method is not None
    assert properties.message_id == event_id
    assert properties.delivery_mode == 2
    assert properties.type == "test.ping"
    assert Event.from_dict(__import__("json").loads(body)).id == event_id
    channel.close()  # gives it back

    # Relayed a second time (a relay that died between publish and mark-sent).
    with app.db.transaction() as s:
        s.execute(update(OutboxEvent).values(status="pending", sent_at=None))
    assert app.bus.relay_once() == 1
    assert transport.stats()["broker_queues"][transport.queue("gamma")] == 0  # not bound

    handled = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while handled < 4 and time.monotonic() < deadline:  # 2 services x 2 copies
        handled += app.bus.work_once("alpha") + app.bus.work_once("beta")
    assert handled == 4
    settle(app, ["alpha", "beta", "gamma"])
    assert count_effects(app.db, event_id=event_id, service="alpha") == 1
    assert count_effects(app.db, event_id=event_id, service="beta") == 1
    assert calls == {"alpha": [event_id], "beta": [event_id], "gamma": []}  # inbox: once
    assert inbox_rows(app, event_id) == 2
    assert app.bus.stats()["deliveries_pending"] == 0

    # An event nobody subscribes to is confirmed (and dropped) by the broker: sent.
    nobody = send(app, "test.nobody")
    assert app.bus.relay_once() == 1
    assert outbox_row(app, nobody).status == "sent"


def test_failing_handler_is_retried_after_its_delay_then_dead_lettered_and_retried(make_app):
    broken = threading.Event()
    broken.set()
    times: list[float] = []
    beta_calls: list[str] = []

    def flaky(ctx: HandlerContext, event: Event) -> None:
        times.append(time.monotonic())
        record_effect(ctx, event)  # rolled back with the savepoint when we raise
        if broken.is_set():
            raise RuntimeError("boom: the handler is broken")

    def register(app: Potluck) -> None:
        app.registry.register("alpha", "test.ping", flaky)
        app.registry.register("beta", "test.ping", counting(beta_calls))

    app = make_app(register)  # 3 attempts, delays 50 ms then 100 ms
    transport = rabbit(app)
    event_id = send(app, "test.ping")

    run_until(app, lambda: len(times) == 3 and app.bus.stats()["deliveries_dead"] == 1)
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1
    assert count_effects(app.db, event_id=event_id, service="alpha") == 0
    assert count_effects(app.db, event_id=event_id, service="beta") == 1  # not held back
    assert beta_calls == [event_id]
    # Dead: not retried any more.
    settle(app, ["alpha", "beta"])
    assert len(times) == 3

    [dead] = app.bus.dead_letters()
    assert (dead.event_id, dead.service, dead.type, dead.attempts) == (
        event_id,
        "alpha",
        "test.ping",
        3,
    )
    assert "boom: the handler is broken" in (dead.last_error or "")
    assert app.bus.dead_letters() == [dead]  # browsing leaves it where it is

    broken.clear()
    assert app.bus.retry_dead(dead.id + 1) is False
    assert app.bus.retry_dead(dead.id) is True
    assert app.bus.retry_dead(dead.id) is False  # not dead any more
    run_until(app, lambda: count_effects(app.db, event_id=event_id, service="alpha") == 1)
    settle(app, ["alpha", "beta"])
    assert len(times) == 4
    assert app.bus.stats()["deliveries_dead"] == 0
    assert transport.stats()["broker_queues"][transport.dead_queue("alpha")] == 0


def test_a_message_is_acknowledged_only_after_its_transaction_commits(make_app, monkeypatch):
    calls: list[str] = []
    app = make_app(lambda a: a.registry.register("alpha", "test.ping", counting(calls)))
    event_id = send(app, "test.ping")
    assert app.bus.relay_once() == 1

    real = app.db.transaction
    killed = []

    @contextmanager
    def killed_before_commit() -> Iterator[object]:
        with real() as session:
            yield session
            killed.append(True)
            raise RuntimeError("the transaction dies after the handler ran")

    monkeypatch.setattr(app.db, "transaction", killed_before_commit)
    with pytest.raises(RuntimeError, match="dies after the handler"):
        app.bus.work_once("alpha")
    monkeypatch.undo()
    assert killed == [True]
    assert calls == [event_id]  # the handler ran …
    assert count_effects(app.db, event_id=event_id) == 0  # … and nothing of it committed

    # Not acknowledged: the broker hands it over again and this time it commits.
    run_until(app, lambda: count_effects(app.db, event_id=event_id) == 1, services=["alpha"])
    settle(app, ["alpha"])
    assert calls == [event_id, event_id]
    assert count_effects(app.db, event_id=event_id) == 1
    assert app.bus.stats()["deliveries_dead"] == 0


def test_a_worker_that_dies_between_commit_and_ack_applies_the_event_once(make_app, monkeypatch):
    calls: list[str] = []
    app = make_app(lambda a: a.registry.register("alpha", "test.ping", counting(calls)))
    transport = rabbit(app)
    event_id = send(app, "test.ping")
    assert app.bus.relay_once() == 1

    real_ack = transport._ack
    died: list[str] = []
    acked: list[str] = []

    def die_once_instead_of_ack(message) -> None:
        if not died:
            died.append(message.body.decode())
            transport.connection().close()  # the broker takes back what was not acknowledged
            return
        acked.append(message.body.decode())
        real_ack(message)

    monkeypatch.setattr(transport, "_ack", die_once_instead_of_ack)
    # Redelivered to the next connection; the inbox turns it into a no-op.
    run_until(app, lambda: len(acked) == 1, services=["alpha"])
    settle(app, ["alpha"])
    assert len(died) == 1
    assert acked == died  # the same message, delivered twice
    assert calls == [event_id]  # the handler ran once
    assert count_effects(app.db, event_id=event_id) == 1
    assert inbox_rows(app, event_id) == 1


def test_marketplace_orders_are_split_through_the_broker(make_app):
    app = make_app()
    platform_id, parties = setup_platform(app)
    orders = [record(app, platform_id, f"o{i}", 1000 + i, even_split(parties)) for i in range(5)]
    total = sum(1000 + i for i in range(5))

    app.bus.drain()  # a confirmed publish is consumed by the next work_once: one drain does it
    assert len(outbox(app, "split.completed")) == 5
    settle(app, app.registry.services())
    assert_split_exactly_once(app, parties, total, orders)

    # Everything relayed again: the services see every event twice and change nothing.
    before = totals(app, parties)
    with app.db.transaction() as s:
        s.execute(update(OutboxEvent).values(status="pending", sent_at=None))
    assert app.bus.relay_once(limit=1000) > 0
    settle(app, app.registry.services())
    assert totals(app, parties) == before
    assert_split_exactly_once(app, parties, total, orders)
    assert app.bus.stats()["deliveries_dead"] == 0


def test_publish_after_the_connection_was_closed_reconnects(make_app):
    calls: list[str] = []
    app = make_app(lambda a: a.registry.register("alpha", "test.ping", counting(calls)))
    transport = rabbit(app)

    first = transport.connection()
    first.close()  # closed under the transport
    a = send(app, "test.ping")
    assert app.bus.relay_once() == 1
    assert transport.connection() is not first

    # The connection dies without a word (the broker went away): found out on publish.
    second = transport.connection()
    second._impl._transport._sock.shutdown(socket.SHUT_RDWR)
    b = send(app, "test.ping")
    assert app.bus.relay_once() == 1
    assert outbox_row(app, b).status == "sent"
    assert transport.connection() is not second

    run_until(app, lambda: sorted(calls) == sorted([a, b]), services=["alpha"])


def test_an_unreachable_broker_leaves_the_rows_pending_and_backs_off(make_app):
    app = make_app(
        lambda a: a.registry.register("alpha", "test.ping", record_effect),
        broker_url="amqp://guest:guest@127.0.0.1:1/",
    )
    event_id = send(app, "test.ping")
    assert app.bus.relay_once() == 0
    row = outbox_row(app, event_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "cannot connect to the broker" in (row.last_error or "")
    # Within the backoff the next round does not even try to connect.
    assert app.bus.relay_once() == 0
    row = outbox_row(app, event_id)
    assert (row.status, row.attempts) == ("pending", 2)
    assert "reconnecting in" in (row.last_error or "")
    with pytest.raises(ConnectionError):
        app.bus.work_once("alpha")

    # The broker is back (here: the right address): the row goes out.
    transport = rabbit(app)
    transport.parameters = pika.URLParameters(BROKER_URL)
    transport._local.retry_at = 0.0
    assert app.bus.relay_once() == 1
    run_until(app, lambda: count_effects(app.db, event_id=event_id) == 1, services=["alpha"])


def test_relay_and_two_worker_processes_split_orders_through_the_broker(make_app, tmp_path):
    """`potluck relay` and two replicas of `potluck worker` as real processes on the broker."""
    app = make_app()
    platform_id, parties = setup_platform(app, n_parties=2)
    rabbit(app).stats()  # declares the topology before the processes start
    env = os.environ | {
        "POTLUCK_DATABASE_URL": app.settings.database_url,
        "POTLUCK_SECRET_KEY": app.settings.secret_key or "",
        "POTLUCK_TRANSPORT": "rabbitmq",
        "POTLUCK_BROKER_URL": BROKER_URL,
        "POTLUCK_BROKER_NAMESPACE": app.settings.broker_namespace,
        # the same retry steps, hence the same delay queues (which the fixture deletes)
        "POTLUCK_BUS_BACKOFF_BASE_SECONDS": str(app.settings.bus_backoff_base_seconds),
        "POTLUCK_BUS_BACKOFF_MAX_SECONDS": str(app.settings.bus_backoff_max_seconds),
        "POTLUCK_BUS_MAX_ATTEMPTS": str(app.settings.bus_max_attempts),
        "POTLUCK_LOG_JSON": "true",
    }
    worker = ["worker", "--service", "splitter", "--service", "wallets", "--service", "webhooks"]
    commands = {"relay": ["relay"], "worker-1": worker, "worker-2": worker}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "potluck.cli", *args],
            env=env,
            stdout=(tmp_path / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for name, args in commands.items()
    }
    try:
        # Both replicas consume the splitter queue (and are past their signal set-up).
        channel = rabbit(app).connection().channel()
        queue = rabbit(app).queue("splitter")
        deadline = time.monotonic() + 60
        while channel.queue_declare(queue, passive=True).method.consumer_count < 2:
            assert time.monotonic() < deadline, "the workers did not start consuming"
            assert all(p.poll() is None for p in processes.values()), "a process died"
            time.sleep(0.05)
        channel.close()
        orders = [
            record(app, platform_id, f"p{i}", 2000 + i, even_split(parties)) for i in range(10)
        ]
        while len(outbox(app, "split.completed")) < 10:  # the other processes' work
            assert time.monotonic() < deadline, "the worker processes did not split the orders"
            assert all(p.poll() is None for p in processes.values()), "a process died"
            time.sleep(0.05)
    finally:
        for p in processes.values():
            p.send_signal(signal.SIGTERM)
        codes = {name: p.wait(timeout=30) for name, p in processes.items()}
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in processes}
    assert codes == dict.fromkeys(processes, 0), logs
    assert_split_exactly_once(app, parties, sum(2000 + i for i in range(10)), orders)
