"""The event bus in embedded mode: outbox, relay, in-process transport, inbox, workers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from potluck.bootstrap import Potluck, bootstrap
from potluck.bus import Event, HandlerContext, publish, publish_many
from potluck.bus.models import Delivery, InboxEntry, OutboxEvent
from potluck.bus.transport import InProcessTransport, Transport
from potluck.clock import FakeClock, utc
from potluck.db import Database
from potluck.ledger import service as ledger
from tests.integration.bus_helpers import count_effects, record_effect, reset_effects

# These tests look at the in-process transport's queue rows (bus_deliveries) themselves; the
# RabbitMQ transport has its own in test_rabbitmq_transport.py.
pytestmark = pytest.mark.inprocess_transport


@pytest.fixture
def app(potluck: Potluck, db: Database) -> Potluck:
    reset_effects(db)
    return potluck


def _app_with(app: Potluck, **bus_settings: object) -> Potluck:
    """The same database and clock with other bus settings (the Bus reads them at start)."""
    reset = app.settings.model_copy(update=bus_settings)
    return bootstrap(reset, db=app.db, clock=app.clock)


def _publish(app: Potluck, event_type: str, **kwargs: object) -> str:
    with app.db.transaction() as s:
        return publish(s, event_type, {"n": 1}, now=app.clock.now(), **kwargs)


def _deliveries(app: Potluck, event_id: str) -> list[Delivery]:
    with app.db.read() as s:
        rows = s.execute(
            select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.id)
        ).scalars()
        return [_detached(s, d) for d in rows]


def _detached(s, obj):
    s.expunge(obj)  # keep loaded attributes readable after the read transaction ends
    return obj


def _outbox(app: Potluck, event_id: str) -> OutboxEvent:
    with app.db.read() as s:
        return _detached(s, s.get(OutboxEvent, event_id))


def _count(app: Potluck, model: type, *where: object) -> int:
    with app.db.read() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _fails_first(times: int, calls: list[str]):
    """A handler that writes its effect, then raises on its first ``times`` calls."""

    def handler(ctx: HandlerContext, event: Event) -> None:
        calls.append(event.id)
        record_effect(ctx, event)  # written, then rolled back with the failure
        if len(calls) <= times:
            raise RuntimeError(f"boom #{len(calls)}")

    return handler


# ---------------------------------------------------------------- outbox and relay


def test_rolled_back_publish_delivers_nothing_and_committed_publish_runs_once(app, db):
    app.registry.register("svc", "test.thing", record_effect)

    def failing_use_case() -> None:
        with app.db.transaction() as s:
            publish(s, "test.thing", {"n": 1}, now=app.clock.now())
            raise RuntimeError("the state change failed after publishing")

    with pytest.raises(RuntimeError):
        failing_use_case()
    assert app.bus.drain() == 0
    assert _count(app, OutboxEvent) == 0
    assert count_effects(db) == 0

    event_id = _publish(app, "test.thing")
    assert count_effects(db) == 0  # nothing happens until the bus runs
    assert app.bus.drain() == 2  # one event relayed, one delivery handled
    assert count_effects(db, event_id=event_id, service="svc") == 1
    assert app.bus.drain() == 0
    assert count_effects(db) == 1

    row = _outbox(app, event_id)
    assert row.status == "sent"
    assert utc(row.sent_at) == app.clock.now()
    assert [d.status for d in _deliveries(app, event_id)] == ["done"]


def test_event_without_subscribers_is_marked_sent_and_delivers_nothing(app):
    event_id = _publish(app, "test.nobody_listens")
    assert app.bus.relay_once() == 1
    assert _outbox(app, event_id).status == "sent"
    assert _deliveries(app, event_id) == []


def test_republished_event_has_one_effect(app, db):
    app.registry.register("svc", "test.thing", record_effect)
    event_id = _publish(app, "test.thing")
    app.bus.drain()

    # What a relay that crashed before marking the row sent leaves behind.
    with app.db.transaction() as s:
        s.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(status="pending", sent_at=None)
        )
    assert app.bus.relay_once() == 1
    assert app.bus.work_once() == 1
    assert app.bus.drain() == 0

    assert [d.status for d in _deliveries(app, event_id)] == ["done", "done"]
    assert _count(app, InboxEntry, InboxEntry.event_id == event_id) == 1
    assert count_effects(db, event_id=event_id) == 1


def test_transport_failure_leaves_the_event_pending_for_the_next_round(app, db):
    app.registry.register("svc", "test.thing", record_effect)
    event_id = _publish(app, "test.thing")
    real = app.bus.transport

    class Refusing(InProcessTransport):
        # The base class's publish_many: one publish per event, each refusal reported.
        publish_many = Transport.publish_many

        def publish(self, event: Event) -> None:
            raise ConnectionError("broker unreachable")

    app.bus.transport = Refusing(app)
    assert app.bus.relay_once() == 0
    row = _outbox(app, event_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "broker unreachable" in (row.last_error or "")
    assert _deliveries(app, event_id) == []

    app.bus.transport = real
    assert app.bus.drain() == 2
    assert _outbox(app, event_id).status == "sent"
    assert count_effects(db, event_id=event_id) == 1


def test_timer_is_not_delivered_before_its_time(app, db, clock: FakeClock):
    app.registry.register("svc", "test.timer", record_effect)
    event_id = _publish(app, "test.timer", deliver_after=clock.now() + timedelta(seconds=60))

    assert app.bus.drain() == 0
    clock.advance(59.9)
    assert app.bus.drain() == 0
    assert count_effects(db) == 0
    stats = app.bus.stats()
    assert stats["outbox_pending"] == 1
    assert stats["outbox_lag_seconds"] == 0.0  # a timer that is not due yet is not lag

    clock.advance(0.1)
    assert app.bus.stats()["outbox_lag_seconds"] == 0.0
    clock.advance(5)
    assert app.bus.stats()["outbox_lag_seconds"] == pytest.approx(5.0)
    assert app.bus.drain() == 2
    assert count_effects(db, event_id=event_id) == 1
    assert app.bus.stats()["outbox_pending"] == 0


# ---------------------------------------------------------------- retries and dead letters


def test_failing_handler_is_retried_with_backoff_and_applied_once(app, db, clock: FakeClock):
    calls: list[str] = []
    app.registry.register("svc", "test.thing", _fails_first(2, calls))
    base = app.settings.bus_backoff_base_seconds
    event_id = _publish(app, "test.thing")

    app.bus.drain()
    assert len(calls) == 1
    [d] = _deliveries(app, event_id)
    assert (d.status, d.attempts) == ("pending", 1)
    assert "boom #1" in (d.last_error or "")
    assert utc(d.next_attempt_at) == clock.now() + timedelta(seconds=base)
    assert count_effects(db) == 0  # the failed attempt's write was rolled back

    clock.advance(base * 0.9)
    assert app.bus.drain() == 0  # backoff not over: not retried
    assert len(calls) == 1

    clock.advance(base * 0.1)
    assert app.bus.drain() == 1
    assert len(calls) == 2
    [d] = _deliveries(app, event_id)
    assert d.attempts == 2
    assert utc(d.next_attempt_at) == clock.now() + timedelta(seconds=2 * base)  # exponential

    clock.advance(2 * base - 0.001)
    assert app.bus.drain() == 0
    clock.advance(0.001)
    assert app.bus.drain() == 1
    assert len(calls) == 3

    [d] = _deliveries(app, event_id)
    assert (d.status, d.attempts) == ("done", 2)
    assert count_effects(db, event_id=event_id) == 1
    clock.advance(3600)
    assert app.bus.drain() == 0
    assert len(calls) == 3


def test_backoff_is_capped(app):
    retry = _app_with(app, bus_backoff_base_seconds=1.0, bus_backoff_max_seconds=10.0)
    policy = retry.bus.transport.retry
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.delay(10_000) == 10


def test_always_failing_handler_is_dead_lettered_and_can_be_retried(app, db, clock: FakeClock):
    app = _app_with(app, bus_max_attempts=3, bus_backoff_max_seconds=5.0)
    calls: list[str] = []
    handler = _fails_first(10**6, calls)
    app.registry.register("svc", "test.thing", lambda ctx, event: handler(ctx, event))
    event_id = _publish(app, "test.thing")

    for _ in range(3):
        app.bus.drain()
        clock.advance(60)
    assert len(calls) == 3
    [d] = _deliveries(app, event_id)
    assert (d.status, d.attempts) == ("dead", 3)
    app.bus.drain()
    assert len(calls) == 3  # dead letters are not retried by themselves

    [dead] = app.bus.dead_letters(10)
    assert (dead.id, dead.event_id, dead.service, dead.type) == (
        d.id,
        event_id,
        "svc",
        "test.thing",
    )
    assert dead.attempts == 3
    assert "boom #3" in (dead.last_error or "")
    assert app.bus.stats()["deliveries_dead"] == 1
    assert app.bus.stats()["deliveries_pending"] == 0

    # Somebody fixes the handler, then re-queues the dead letter.
    handler = _fails_first(0, [])
    assert app.bus.retry_dead(d.id) is True
    assert app.bus.retry_dead(d.id) is False  # no longer dead
    [d] = _deliveries(app, event_id)
    assert (d.status, d.attempts) == ("pending", 0)
    assert app.bus.drain() == 1
    assert [x.status for x in _deliveries(app, event_id)] == ["done"]
    assert app.bus.dead_letters() == []
    assert count_effects(db, event_id=event_id) == 1


# ---------------------------------------------------------------- services


def test_each_subscribed_service_gets_the_event_with_its_own_inbox(app, db, clock: FakeClock):
    calls: list[str] = []
    app.registry.register("alpha", "test.shared", record_effect)
    app.registry.register("beta", "test.shared", _fails_first(1, calls))
    app.registry.register("beta", "test.other", record_effect)
    event_id = _publish(app, "test.shared")

    app.bus.drain()
    by_service = {d.service: d.status for d in _deliveries(app, event_id)}
    assert by_service == {"alpha": "done", "beta": "pending"}  # beta's failure is its own
    assert count_effects(db, event_id=event_id, service="alpha") == 1
    assert count_effects(db, event_id=event_id, service="beta") == 0

    clock.advance(app.settings.bus_backoff_max_seconds)
    app.bus.drain()
    assert count_effects(db, event_id=event_id, service="beta") == 1
    with app.db.read() as s:
        inbox = s.execute(
            select(InboxEntry.service).where(InboxEntry.event_id == event_id)
        ).scalars()
        assert sorted(inbox) == ["alpha", "beta"]

    # A worker for one service only takes that service's deliveries.
    with app.db.transaction() as s:
        s.execute(update(OutboxEvent).values(status="pending"))
    assert app.bus.relay_once() == 1
    assert app.bus.work_once(service="alpha") == 1
    pending = [d.service for d in _deliveries(app, event_id) if d.status == "pending"]
    assert pending == ["beta"]
    assert app.bus.work_once(service="beta") == 1
    assert count_effects(db, event_id=event_id) == 2  # still one per service


def test_worker_fails_a_delivery_without_handler_and_skips_unknown_services(app):
    app.registry.register("svc", "test.thing", record_effect)
    event_id = _publish(app, "test.unhandled")
    now = app.clock.now()
    with app.db.transaction() as s:
        for service in ("svc", "not_in_this_process"):
            s.add(
                Delivery(
                    event_id=event_id,
                    service=service,
                    type="test.unhandled",
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    assert app.bus.work_once() == 1
    by_service = {d.service: d for d in _deliveries(app, event_id)}
    assert by_service["svc"].attempts == 1
    assert "NoHandler" in (by_service["svc"].last_error or "")
    assert by_service["not_in_this_process"].attempts == 0
    assert _count(app, InboxEntry) == 0


def test_events_published_by_handlers_are_delivered_in_the_same_drain(app, db):
    def forward(ctx: HandlerContext, event: Event) -> None:
        ctx.publish("test.second", {"from": event.id})

    app.registry.register("first", "test.first", forward)
    app.registry.register("second", "test.second", record_effect)
    _publish(app, "test.first")
    assert app.bus.drain() == 4  # two relays, two deliveries
    assert count_effects(db, service="second") == 1


# ---------------------------------------------------------------- ledger timers


def test_ledger_hold_expires_when_its_timeout_event_fires(app, clock: FakeClock):
    with app.db.transaction() as s:
        now = clock.now()
        funding = ledger.create_account(s, currency="EUR", code="clearing", now=now)
        merchant = ledger.create_account(s, currency="EUR", code="wallet", now=now)
        wallet = ledger.create_account(
            s,
            currency="EUR",
            code="wallet",
            now=now,
            flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
        )
        ledger.create_transfer(
            s, ledger.NewTransfer(funding.id, wallet.id, 1000, client_id="fund"), now=now
        )
        ledger.create_transfer(
            s,
            ledger.NewTransfer(
                wallet.id,
                merchant.id,
                300,
                client_id="hold-1",
                pending=True,
                timeout_seconds=30,
            ),
            now=now,
        )
    with app.db.read() as s:
        assert ledger.get_account(s, wallet.id).debits_pending == 300

    clock.advance(29)
    app.bus.drain()
    with app.db.read() as s:
        assert ledger.get_transfer(s, "hold-1", scope=ledger.SYSTEM_SCOPE).status == "pending"

    clock.advance(2)
    assert app.bus.drain() == 2
    with app.db.read() as s:
        assert ledger.get_transfer(s, "hold-1", scope=ledger.SYSTEM_SCOPE).status == "expired"
        account = ledger.get_account(s, wallet.id)
        assert account.debits_pending == 0
        assert account.total == 1000
        assert ledger.get_account(s, merchant.id).credits_pending == 0
    assert _count(app, Delivery, Delivery.service == "ledger", Delivery.status == "done") == 1


# ---------------------------------------------------------------- embedded mode


def test_background_loop_delivers_and_stops(app, db):
    handled = threading.Event()

    def handler(ctx: HandlerContext, event: Event) -> None:
        record_effect(ctx, event)
        handled.set()

    app.registry.register("svc", "test.thing", handler)
    app.bus.start()
    try:
        event_id = _publish(app, "test.thing")
        assert handled.wait(timeout=30), "the background loop never delivered the event"
    finally:
        app.bus.stop()
    assert app.bus._threads == []
    assert count_effects(db, event_id=event_id) == 1


def test_a_blocked_poller_does_not_hold_up_deliveries_in_the_background(app, db):
    """A bank that does not answer (a poller stuck in I/O) must not stop the events."""
    poller_entered, release = threading.Event(), threading.Event()
    handled = threading.Event()

    def stuck_bank(potluck: Potluck) -> int:
        poller_entered.set()
        release.wait(timeout=60)
        return 0

    def handler(ctx: HandlerContext, event: Event) -> None:
        record_effect(ctx, event)
        handled.set()

    app.registry.register_poller("bank-test", stuck_bank)
    app.registry.register("svc", "test.thing", handler)
    app.bus.start()
    try:
        assert poller_entered.wait(timeout=30)
        event_id = _publish(app, "test.thing")
        assert handled.wait(timeout=30), "deliveries waited for the stuck poller"
        assert not release.is_set()  # the poller was still stuck while the event was applied
    finally:
        release.set()
        app.bus.stop()
    assert count_effects(db, event_id=event_id) == 1


# ---------------------------------------------------------------- concurrency (PostgreSQL)


@pytest.mark.postgres_only
def test_concurrent_relays_and_workers_never_double_process(app, db):
    calls: list[str] = []
    lock = threading.Lock()

    def handler(ctx: HandlerContext, event: Event) -> None:
        with lock:
            calls.append(event.id)
        record_effect(ctx, event)

    app.registry.register("svc", "test.thing", handler)
    event_ids = {_publish(app, "test.thing") for _ in range(60)}

    def run(step) -> None:
        barrier.wait()
        while step(limit=5):
            pass

    for step in (app.bus.relay_once, app.bus.work_once):
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=run, args=(step,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # SKIP LOCKED: no row was published twice and no delivery was handled twice.
    assert _count(app, Delivery) == 60
    assert _count(app, Delivery, Delivery.status == "done") == 60
    assert sorted(calls) == sorted(event_ids)
    assert count_effects(db) == 60


def test_pollers_run_outside_transactions_per_service_and_a_failing_one_is_isolated(app):
    calls: list[str] = []

    def sends(potluck: Potluck) -> int:
        # A poller owns its transactions: it can open one (nothing is open around it).
        with potluck.db.transaction() as s:
            publish(s, "poller.did", {"n": len(calls)}, now=potluck.clock.now())
        calls.append("sends")
        return 1 if len(calls) < 3 else 0  # work for two rounds, then idle

    def broken(potluck: Potluck) -> int:
        calls.append("broken")
        raise RuntimeError("bank is down")

    bus_app = bootstrap(app.settings, db=app.db, clock=app.clock)
    bus_app.registry.register_poller("payouts-test", broken)
    bus_app.registry.register_poller("payouts-test", sends)
    assert "payouts-test" in bus_app.registry.services()

    assert bus_app.bus.work_once("payouts-test") == 1  # broken is logged, sends still ran
    assert calls == ["broken", "sends"]
    bus_app.bus.drain()
    assert calls.count("sends") >= 3  # drain kept going while the poller reported work
    assert _count(bus_app, OutboxEvent, OutboxEvent.type == "poller.did") == calls.count("sends")
    # Another service's round does not run this service's pollers.
    before = len(calls)
    bus_app.bus.work_once("maintenance")
    assert len(calls) == before


def test_a_failing_handler_in_a_batch_undoes_only_its_own_delivery(app, db, clock: FakeClock):
    ids = [_publish(app, "test.batch") for _ in range(5)]
    poisoned = ids[2]

    def handler(ctx: HandlerContext, event: Event) -> None:
        record_effect(ctx, event)  # written first, so a failure must roll it back
        if event.id == poisoned:
            raise RuntimeError("poison")

    app.registry.register("svc", "test.batch", handler)
    app.bus.relay_once()
    assert app.bus.work_once("svc") == 5  # one batch: all five taken in one transaction
    for event_id in ids:
        assert count_effects(db, event_id=event_id) == (0 if event_id == poisoned else 1)
    (failed,) = _deliveries(app, poisoned)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert all(_deliveries(app, i)[0].status == "done" for i in ids if i != poisoned)


def test_batch_handler_gets_fresh_events_together_and_once(app, db):
    calls: list[list[str]] = []

    def credit_all(ctx: HandlerContext, events: list[Event]) -> None:
        calls.append([e.id for e in events])
        for event in events:
            record_effect(ctx, event)

    app.registry.register_batch("wallets-test", "test.credit", credit_all)
    with pytest.raises(ValueError):
        app.registry.register("wallets-test", "test.credit", record_effect)
    ids = [_publish(app, "test.credit") for _ in range(4)]
    app.bus.relay_once()
    app.bus.relay_once()  # nothing new
    # The same events published again (a relay that crashed before marking them sent).
    with app.db.read() as s:
        rows = s.execute(select(OutboxEvent).where(OutboxEvent.id.in_(ids))).scalars()
        again = [Event(r.id, r.type, utc(r.occurred_at), r.version, r.data) for r in rows]
    app.bus.transport.publish_many(again)
    app.bus.drain()
    # One call for the four fresh events; the duplicates found them in the inbox: no call.
    assert len(calls) == 1
    assert sorted(calls[0]) == sorted(ids)
    assert all(count_effects(db, event_id=i) == 1 for i in ids)


def test_failing_batch_falls_back_to_one_by_one(app, db):
    ids = [_publish(app, "test.credit") for _ in range(3)]
    bad = ids[1]
    seen: list[int] = []

    def credit_all(ctx: HandlerContext, events: list[Event]) -> None:
        seen.append(len(events))
        for event in events:
            record_effect(ctx, event)
            if event.id == bad:
                raise RuntimeError("no such wallet")

    app.registry.register_batch("wallets-test", "test.credit", credit_all)
    app.bus.relay_once()
    assert app.bus.work_once("wallets-test") == 3
    assert seen == [3, 1, 1, 1]  # the batch, then each delivery on its own
    assert [count_effects(db, event_id=i) for i in ids] == [1, 0, 1]
    (failed,) = _deliveries(app, bad)
    assert (failed.status, failed.attempts) == ("pending", 1)


def test_publish_many_writes_each_event_once(app, db):
    app.registry.register("svc", "test.many", record_effect)
    with app.db.transaction() as s:
        ids = publish_many(s, [("test.many", {"n": i}) for i in range(3)], now=app.clock.now())
    assert len(set(ids)) == 3
    app.bus.drain()
    assert [count_effects(db, event_id=i) for i in ids] == [1, 1, 1]
    assert [_outbox(app, i).data for i in ids] == [{"n": 0}, {"n": 1}, {"n": 2}]


def _deadlock() -> Exception:
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE …", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def test_a_lost_lock_race_is_retried_at_once_then_with_backoff(app, db, clock: FakeClock):
    """A deadlock or serialization failure says nothing about the event: it is taken again
    in the next round (three times at most), not after the backoff."""
    calls: list[int] = []

    def handler(ctx: HandlerContext, event: Event) -> None:
        calls.append(1)
        if len(calls) <= 4:
            raise _deadlock()
        record_effect(ctx, event)

    app.registry.register("svc", "test.thing", handler)
    event_id = _publish(app, "test.thing")
    app.bus.drain()  # three immediate retries within one drain, then the backoff
    assert len(calls) == 4
    [d] = _deliveries(app, event_id)
    assert (d.status, d.attempts) == ("pending", 4)
    assert "deadlock detected" in (d.last_error or "")
    base = app.settings.bus_backoff_base_seconds
    assert utc(d.next_attempt_at) == clock.now() + timedelta(seconds=base * 8)
    clock.advance(base * 8)
    app.bus.drain()
    [d] = _deliveries(app, event_id)
    assert (d.status, len(calls)) == ("done", 5)
    assert count_effects(db, event_id=event_id) == 1


def test_only_lock_conflicts_count_as_lost_races():
    import psycopg.errors

    from potluck.bus.transport import is_lock_conflict

    assert is_lock_conflict(_deadlock())
    assert is_lock_conflict(psycopg.errors.SerializationFailure("could not serialize"))
    assert not is_lock_conflict(RuntimeError("boom"))
    assert not is_lock_conflict(psycopg.errors.UniqueViolation("duplicate key"))
