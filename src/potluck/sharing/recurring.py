"""Recurring expenses: ``repeat`` weekly, fortnightly, monthly or yearly.

An expense created (or PATCHed) with ``repeat`` starts a series; the series is keyed by that
first expense (``series_id`` = its id, on it and on every occurrence). Occurrence ``seq``
falls on ``anchor + seq periods``, always counted from the anchor, so month ends clamp
without drifting: Jan 31 monthly → Feb 28 (29) → Mar 31 → Apr 30; Feb 29 yearly → Feb 28.

Each occurrence is a timer: ``expense.recurrence.due`` with ``deliver_after`` = its date at
the first expense's time of day (UTC) and a dedupe key per occurrence. The handler locks the
series row, creates the occurrence (a new expense copying the FIRST expense as it is now:
description, amount, currency, payers, split, category, notes; dated the occurrence date;
another currency converts at the table's rate on that date, else at the first expense's
rate) and schedules the next one. A timer whose series was stopped, changed or already past
that occurrence does nothing.

- ``repeat: null`` on PATCH stops the series; a new ``repeat`` restarts it from the latest
  occurrence date (the first date still to come: missed dates are not created);
- a deleted first expense ends the series at its next due date (activity
  ``expense.recurrence.stopped``);
- an occurrence that cannot be created as is (a payer or a person in the split has left the
  group, no rate for its currency…) is skipped: activity ``expense.recurrence.skipped`` with
  the date and the reason, and the series goes on with the next date.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.bus import Event, HandlerContext, publish
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.sharing.groups import record_activity
from potluck.sharing.models import Expense, Recurrence, SharingGroup, SharingMember

REPEATS = ("weekly", "fortnightly", "monthly", "yearly")
DUE = "expense.recurrence.due"
MAX_CATCH_UP = 100_000


def check_repeat(repeat: object) -> str:
    if not isinstance(repeat, str) or repeat not in REPEATS:
        raise DomainError(
            "invalid_repeat",
            f"repeat must be one of {', '.join(REPEATS)} (or null to stop)",
            field="repeat",
        )
    return repeat


def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def occurrence_date(anchor: date, repeat: str, seq: int) -> date:
    """The date of occurrence ``seq`` (0 = the anchor itself), counted from the anchor."""
    if repeat == "weekly":
        return anchor + timedelta(days=7 * seq)
    if repeat == "fortnightly":
        return anchor + timedelta(days=14 * seq)
    if repeat == "monthly":
        return _add_months(anchor, seq)
    if repeat == "yearly":
        return _add_months(anchor, 12 * seq)
    raise ValueError(repeat)


def _due_at(day: date, origin: Expense) -> datetime:
    at = utc(origin.created_at).timetz().replace(tzinfo=None)
    return datetime.combine(day, time(at.hour, at.minute, at.second, at.microsecond), tzinfo=UTC)


def _schedule(session: Session, rec: Recurrence, origin: Expense, *, now: datetime) -> None:
    publish(
        session,
        DUE,
        {
            "platform_id": None,
            "series_id": rec.expense_id,
            "group_id": rec.group_id,
            "generation": rec.generation,
            "seq": rec.seq,
            "date": rec.next_date.isoformat(),
        },
        now=now,
        deliver_after=_due_at(rec.next_date, origin),
        dedupe_key=f"{DUE}:{rec.expense_id}:{rec.generation}:{rec.seq}",
    )


def _first_to_come(rec: Recurrence, today: date) -> None:
    """Move ``seq``/``next_date`` to the first occurrence on or after ``today``."""
    rec.next_date = occurrence_date(rec.anchor_date, rec.repeat, rec.seq)
    for _ in range(MAX_CATCH_UP):
        if rec.next_date >= today:
            return
        rec.seq += 1
        rec.next_date = occurrence_date(rec.anchor_date, rec.repeat, rec.seq)


def start(session: Session, e: Expense, repeat: str, *, now: datetime) -> None:
    """Make ``e`` the first expense of a series (it must not be in one)."""
    rec = Recurrence(
        expense_id=e.id,
        group_id=e.group_id,
        repeat=check_repeat(repeat),
        anchor_date=e.date,
        generation=1,
        seq=1,
        next_date=e.date,
        stopped_at=None,
        updated_at=now,
    )
    _first_to_come(rec, now.date())
    session.add(rec)
    e.series_id = e.id
    e.repeat = repeat
    session.flush()
    _schedule(session, rec, e, now=now)


def _last_date(rec: Recurrence) -> date:
    return occurrence_date(rec.anchor_date, rec.repeat, rec.seq - 1)


def change(session: Session, e: Expense, repeat: str | None, *, now: datetime) -> None:
    """PATCH ``repeat`` on any expense of a series (or on a lone expense: starts one)."""
    if repeat is not None:
        check_repeat(repeat)
    if e.series_id is None:
        if repeat is not None:
            start(session, e, repeat, now=now)
        return
    rec = session.execute(
        select(Recurrence).where(Recurrence.expense_id == e.series_id).with_for_update()
    ).scalar_one()
    origin = e if e.id == e.series_id else session.get(Expense, e.series_id)
    assert origin is not None
    if repeat is None:
        if rec.stopped_at is None:
            rec.stopped_at = now
            rec.updated_at = now
            origin.repeat = None
        return
    if rec.stopped_at is None and rec.repeat == repeat:
        return
    last = _last_date(rec)
    rec.anchor_date = last
    rec.repeat = repeat
    rec.generation += 1
    rec.seq = 1
    rec.stopped_at = None
    rec.updated_at = now
    _first_to_come(rec, now.date())
    origin.repeat = repeat
    session.flush()
    _schedule(session, rec, origin, now=now)


def _skip(
    s: Session, rec: Recurrence, day: date, *, type: str, reason: str, code: str, now: datetime
) -> None:
    record_activity(
        s,
        group_id=rec.group_id,
        type=type,
        actor=None,
        subject=rec.expense_id,
        data={"series_id": rec.expense_id, "date": day.isoformat(), "code": code, "reason": reason},
        now=now,
    )


def on_due(ctx: HandlerContext, event: Event) -> None:
    """Create the occurrence the timer is for, then schedule the next one."""
    from potluck.sharing import expenses

    s, now, data = ctx.session, ctx.now, event.data
    rec = s.execute(
        select(Recurrence).where(Recurrence.expense_id == str(data["series_id"])).with_for_update()
    ).scalar_one_or_none()
    if (
        rec is None
        or rec.stopped_at is not None
        or rec.generation != int(data["generation"])
        or rec.seq != int(data["seq"])
    ):
        return  # stopped, changed, or this occurrence is done already
    origin = s.get(Expense, rec.expense_id)
    group = s.get(SharingGroup, rec.group_id)
    assert origin is not None
    assert group is not None
    day = rec.next_date
    if origin.deleted_at is not None:
        rec.stopped_at = now
        rec.updated_at = now
        origin.repeat = None
        _skip(
            s,
            rec,
            day,
            type="expense.recurrence.stopped",
            reason="the first expense of the series was deleted",
            code="expense_deleted",
            now=now,
        )
        return
    actor = s.scalar(
        select(SharingMember).where(
            SharingMember.group_id == group.id,
            SharingMember.user_id == origin.created_by,
            SharingMember.removed_at.is_(None),
        )
    )
    currency = origin.original_currency or origin.currency
    fx_rate: Decimal | str | None = None
    if origin.original_currency is not None:
        try:
            fx_rate = expenses.fx.lookup_rate(s, currency, group.currency, day)
        except DomainError:
            fx_rate = origin.fx_rate
    try:
        prepared = expenses.prepare_expense(
            s,
            group=group,
            actor=actor,
            description=origin.description,
            amount=origin.original_amount or origin.amount,
            currency=currency,
            fx_rate=fx_rate,
            date=day,
            category=origin.category,
            notes=origin.notes,
            paid_by=expenses._pairs(origin.original_paid_by or origin.paid_by),
            split=expenses.split_from_doc(origin.split),
            now=now,
        )
    except DomainError as exc:
        _skip(
            s,
            rec,
            day,
            type="expense.recurrence.skipped",
            reason=exc.message,
            code=exc.code,
            now=now,
        )
    else:
        expenses.insert_expense(
            s, prepared, actor=actor, user_id=origin.created_by, series_id=origin.id, now=now
        )
    rec.seq += 1
    rec.next_date = occurrence_date(rec.anchor_date, rec.repeat, rec.seq)
    rec.updated_at = now
    s.flush()
    _schedule(s, rec, origin, now=now)
