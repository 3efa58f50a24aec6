"""The hourly maintenance timer: prunes, purges, expires, and renews itself once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select, text

from potluck import maintenance
from potluck.api.models import IdempotencyKey
from potluck.bus.models import OutboxEvent
from potluck.identity.models import AuthAttempt
from potluck.ledger import service as ledger


def ticks(db):
    with db.read() as s:
        return s.execute(
            select(OutboxEvent.deliver_after, OutboxEvent.status)
            .where(OutboxEvent.type == maintenance.TICK)
            .order_by(OutboxEvent.deliver_after)
        ).all()


def test_scheduling_twice_makes_one_tick(potluck, db, clock):
    maintenance.ensure_scheduled(potluck)
    maintenance.ensure_scheduled(potluck)
    assert len(ticks(db)) == 1


def test_tick_cleans_up_and_schedules_the_next(potluck, db, clock):
    now = clock.now()
    with db.transaction() as s:
        s.execute(
            insert(AuthAttempt),
            [
                {"email": "old@x.test", "client": "1.2.3.4", "succeeded": 0, "at": now},
                {"email": "new@x.test", "client": "1.2.3.4", "succeeded": 0, "at": now},
            ],
        )
        s.execute(
            insert(IdempotencyKey),
            [
                {
                    "scope": "user:u1",
                    "key": "k",
                    "request_hash": "h",
                    "status": "completed",
                    "response_status": 201,
                    "response_body": b"{}",
                    "response_content_type": "application/json",
                    "locked_until": now,
                    "created_at": now,
                    "expires_at": now + timedelta(hours=1),
                }
            ],
        )
        a = ledger.create_account(s, currency="EUR", code="a", now=now)
        b = ledger.create_account(s, currency="EUR", code="b", now=now)
        ledger.create_transfer(
            s,
            ledger.NewTransfer(a.id, b.id, 70, client_id="h1", pending=True, timeout_seconds=60),
            now=now,
        )
        # the hold's own timer is lost: only the maintenance sweep can release it now
        s.execute(
            OutboxEvent.__table__.delete().where(OutboxEvent.type == "ledger.pending.timeout")
        )
    maintenance.ensure_scheduled(potluck)
    first_due = ticks(db)[0][0]

    clock.advance(2 * 3600)
    with db.transaction() as s:
        s.execute(
            insert(AuthAttempt),
            [{"email": "new@x.test", "client": "1.2.3.4", "succeeded": 0, "at": clock.now()}],
        )
    potluck.bus.drain()

    with db.read() as s:
        emails = s.execute(select(AuthAttempt.email)).scalars().all()
        keys = s.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one()
        assert ledger.get_transfer(s, "h1", scope="system").status == "expired"
        assert ledger.get_account(s, a.id).debits_pending == 0
    assert emails == ["new@x.test"]
    assert keys == 0
    rows = ticks(db)
    assert [status for _, status in rows] == ["sent", "pending"]
    assert rows[1][0] > first_due


def test_a_failing_step_does_not_stop_the_others_or_the_chain(potluck, db, clock, monkeypatch):
    from potluck.api import idempotency

    def broken(session, *, now):
        # A partial write, then a database error (on PostgreSQL the transaction would be
        # aborted without a savepoint): the step's own effects must be undone, no more.
        session.execute(
            insert(AuthAttempt),
            [{"email": "ghost@x.test", "client": "9.9.9.9", "succeeded": 0, "at": now}],
        )
        session.execute(select(func.count()).select_from(text("no_such_table")))
        raise AssertionError("unreachable")

    monkeypatch.setattr(idempotency, "purge_expired_keys_in", broken)
    now = clock.now()
    with db.transaction() as s:
        s.execute(
            insert(AuthAttempt),
            [{"email": "old@x.test", "client": "1.2.3.4", "succeeded": 0, "at": now}],
        )
        a = ledger.create_account(s, currency="EUR", code="a", now=now)
        b = ledger.create_account(s, currency="EUR", code="b", now=now)
        ledger.create_transfer(
            s,
            ledger.NewTransfer(a.id, b.id, 70, client_id="h1", pending=True, timeout_seconds=60),
            now=now,
        )
        s.execute(
            OutboxEvent.__table__.delete().where(OutboxEvent.type == "ledger.pending.timeout")
        )
    maintenance.ensure_scheduled(potluck)
    first_due = ticks(db)[0][0]

    clock.advance(2 * 3600)
    potluck.bus.drain()

    with db.read() as s:
        emails = s.execute(select(AuthAttempt.email)).scalars().all()
        # the step after the broken one ran too
        assert ledger.get_transfer(s, "h1", scope="system").status == "expired"
    assert emails == []  # pruned by the step before the broken one; the ghost rolled back
    rows = ticks(db)
    assert [status for _, status in rows] == ["sent", "pending"]
    assert rows[1][0] > first_due
