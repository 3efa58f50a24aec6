"""Recurring expenses through timers (SQLite and PostgreSQL): the FakeClock advances months,
``bus.drain()`` delivers the due ``expense.recurrence.due`` timers. Month ends clamp and keep
the anchor day; PATCH repeat changes or stops a series; a deleted first expense ends it; an
occurrence naming a member who left is skipped with an activity entry."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from potluck.bus import Event, HandlerContext
from potluck.bus.models import OutboxEvent
from potluck.errors import DomainError
from potluck.identity import passwords
from potluck.identity.service import register_user
from potluck.sharing import recurring
from potluck.sharing import service as sharing
from potluck.sharing.models import Activity, Expense, Recurrence
from potluck.splits.expense import ExpenseSplit, Share

DAY = 86_400


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def test_occurrence_dates_clamp_month_ends_and_keep_the_anchor():
    jan31 = date(2024, 1, 31)
    assert [recurring.occurrence_date(jan31, "monthly", n) for n in range(1, 5)] == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]
    assert recurring.occurrence_date(date(2024, 2, 29), "yearly", 1) == date(2025, 2, 28)
    assert recurring.occurrence_date(date(2024, 2, 29), "yearly", 4) == date(2028, 2, 29)
    assert recurring.occurrence_date(jan31, "fortnightly", 2) == date(2024, 2, 28)
    assert recurring.occurrence_date(date(2025, 11, 30), "monthly", 3) == date(2026, 2, 28)
    with pytest.raises(DomainError):
        recurring.check_repeat("daily")


def _setup(potluck, n=3):
    users = [
        register_user(
            potluck, email=f"r{i}@example.com", password="pw-long-enough", name=f"R{i}"
        ).id
        for i in range(n)
    ]
    with potluck.db.transaction() as s:
        g = sharing.create_group(
            s,
            user_id=users[0],
            name="flat",
            currency="EUR",
            emails=[f"r{i}@example.com" for i in range(1, n)],
            now=potluck.clock.now(),
        )
    return users, g.id, [m.id for m in g.members]


def _series(potluck, series_id: str) -> list[Expense]:
    with potluck.db.read() as s:
        rows = s.scalars(
            select(Expense).where(Expense.series_id == series_id).order_by(Expense.date)
        ).all()
        s.expunge_all()
        return list(rows)


def _to(clock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())


def test_monthly_series_clamps_changes_and_stops(potluck, clock):
    _to(clock, datetime(2026, 1, 31, 9, 30, tzinfo=UTC))
    users, gid, members = _setup(potluck)
    with potluck.db.transaction() as s:
        first = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=gid,
            description="rent",
            amount=90_000,
            currency="USD",
            fx_rate="0.9",
            paid_by=[(members[1], 90_000)],
            split=ExpenseSplit("shares", (Share(members[0], 2), Share(members[1], 1))),
            repeat="monthly",
            now=clock.now(),
        )
    assert (first.repeat, first.series_id) == ("monthly", first.id)
    # not due yet on Feb 28 at 09:29; due at 09:30 (the first expense's time of day)
    _to(clock, datetime(2026, 2, 28, 9, 29, tzinfo=UTC))
    potluck.bus.drain()
    assert len(_series(potluck, first.id)) == 1
    _to(clock, datetime(2026, 4, 30, 10, 0, tzinfo=UTC))
    potluck.bus.drain()
    potluck.bus.drain()  # a second drain finds nothing more: one occurrence per date
    rows = _series(potluck, first.id)
    assert [r.date for r in rows] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    for r in rows[1:]:
        assert (r.description, r.amount, r.original_amount, r.original_currency) == (
            "rent",
            81_000,
            90_000,
            "USD",
        )
        assert r.paid_by == [[members[1], 81_000]]
        assert sorted(a for _, a in r.owed) == [27_000, 54_000]
        assert r.repeat is None
    # PATCH weekly: from the latest occurrence (Apr 30) → May 7, 14
    with potluck.db.transaction() as s:
        sharing.update_expense(
            s, user_id=users[2], expense_id=rows[2].id, repeat="weekly", now=clock.now()
        )
    _to(clock, datetime(2026, 5, 14, 9, 30, tzinfo=UTC))
    potluck.bus.drain()
    dates = [r.date for r in _series(potluck, first.id)]
    assert dates[-2:] == [date(2026, 5, 7), date(2026, 5, 14)]
    # stop: nothing more, even months later; the first expense shows no repeat
    with potluck.db.transaction() as s:
        v = sharing.update_expense(
            s, user_id=users[0], expense_id=first.id, repeat=None, now=clock.now()
        )
    assert v.repeat is None
    assert v.version == first.version  # no new version of the expense for the series
    _to(clock, datetime(2026, 8, 1, tzinfo=UTC))
    potluck.bus.drain()
    assert len(_series(potluck, first.id)) == len(dates)
    with potluck.db.read() as s:
        total = sum(b.balance for b in sharing.group_balances(s, gid, user_id=users[0]))
        timers = s.scalar(select(func.count()).where(OutboxEvent.type == recurring.DUE))
    assert total == 0
    # a timer per occurrence made (5), the monthly one the change left stale (May 31) and
    # the weekly one the stop left (May 21), both ignored
    assert timers == (len(dates) - 1) + 2


def test_left_member_skips_and_deleted_series_stops(potluck, clock):
    users, gid, members = _setup(potluck)
    with potluck.db.transaction() as s:
        first = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=gid,
            description="gym",
            amount=1000,
            split=ExpenseSplit("equal", (Share(members[0]), Share(members[2]))),
            date=date(2026, 1, 1),
            repeat="weekly",
            now=clock.now(),
        )
        # the member settles up and leaves
        sharing.record_settlement(
            s,
            user_id=users[0],
            group_id=gid,
            from_member_id=members[2],
            to_member_id=members[0],
            amount=500,
            method="cash",
            now=clock.now(),
        )
        sharing.remove_member(
            s, user_id=users[0], group_id=gid, member_id=members[2], now=clock.now()
        )
        # dated in the past: no back-filling, the first occurrence is the first date to come
        past = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=gid,
            description="insurance",
            amount=100,
            date=date(2025, 11, 30),
            repeat="monthly",
            now=clock.now(),
        )
        assert s.get(Recurrence, past.id).next_date == date(2026, 1, 30)
    clock.advance(8 * DAY)
    potluck.bus.drain()
    assert len(_series(potluck, first.id)) == 1
    with potluck.db.read() as s:
        skipped = s.scalars(
            select(Activity).where(
                Activity.group_id == gid, Activity.type == "expense.recurrence.skipped"
            )
        ).all()
        assert [a.data["date"] for a in skipped] == ["2026-01-08"]
        assert skipped[0].data["code"] == "unknown_member"
    # a new split without the member: the series goes on
    with potluck.db.transaction() as s:
        sharing.update_expense(
            s,
            user_id=users[0],
            expense_id=first.id,
            split=ExpenseSplit("equal", (Share(members[0]), Share(members[1]))),
            now=clock.now(),
        )
    clock.advance(7 * DAY)
    potluck.bus.drain()
    rows = _series(potluck, first.id)
    assert [r.date for r in rows] == [date(2026, 1, 1), date(2026, 1, 15)]
    assert sorted(m for m, _ in rows[1].owed) == sorted([members[0], members[1]])
    # deleting the first expense ends the series at its next date
    with potluck.db.transaction() as s:
        sharing.delete_expense(s, user_id=users[1], expense_id=first.id, now=clock.now())
    clock.advance(30 * DAY)
    potluck.bus.drain()
    assert len(_series(potluck, first.id)) == 2
    with potluck.db.read() as s:
        stopped = s.scalar(
            select(func.count()).where(
                Activity.group_id == gid, Activity.type == "expense.recurrence.stopped"
            )
        )
    assert stopped == 1


@pytest.mark.postgres_only
def test_concurrent_deliveries_of_one_timer_make_one_occurrence(potluck, clock):
    """Four threads deliver the same due timer at once (as a redelivery could): the series
    row lock and its ``seq`` let exactly one create the occurrence and schedule the next."""
    users, gid, _ = _setup(potluck, n=2)
    with potluck.db.transaction() as s:
        first = sharing.create_expense(
            s,
            user_id=users[0],
            group_id=gid,
            description="cleaner",
            amount=4000,
            repeat="fortnightly",
            now=clock.now(),
        )
    with potluck.db.read() as s:
        row = s.execute(
            select(OutboxEvent.id, OutboxEvent.data).where(OutboxEvent.type == recurring.DUE)
        ).one()
    event = Event(row.id, recurring.DUE, clock.now(), 1, dict(row.data))
    clock.advance(14 * DAY)
    barrier = threading.Barrier(4)

    def deliver(_: int) -> None:
        barrier.wait()
        with potluck.db.transaction() as s:
            recurring.on_due(HandlerContext(s, clock.now(), potluck, "sharing"), event)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(deliver, range(4)))
    assert [r.date for r in _series(potluck, first.id)] == [date(2026, 1, 1), date(2026, 1, 15)]
    with potluck.db.read() as s:
        timers = s.scalars(select(OutboxEvent.data).where(OutboxEvent.type == recurring.DUE)).all()
    assert sorted(t["date"] for t in timers) == ["2026-01-15", "2026-01-29"]
