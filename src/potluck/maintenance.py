"""Housekeeping as a self-renewing timer on the event bus.

One ``maintenance.tick`` event per interval (de-duplicated by its due time, so any number of
processes scheduling it still make one) schedules the next tick, then prunes old sign-in
attempts, purges expired idempotency keys and expires holds whose timer was missed. Being an
ordinary timer, it runs wherever the workers run: in ``potluck serve`` (embedded) or in the
worker pool (distributed).

The chain must not break: if the tick failed as a whole ``bus_max_attempts`` times it would be
dead-lettered, and no later tick would exist until a process restarted. So the next tick is
scheduled first, and each cleanup step runs in its own savepoint: a failing step is rolled
back and logged, and the other steps and the next tick still commit with the tick.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import Event, publish
from potluck.bus.registry import HandlerContext, HandlerRegistry

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

TICK = "maintenance.tick"
SERVICE = "maintenance"
INTERVAL_SECONDS = 3600

log = structlog.get_logger()


def next_due(now: datetime, interval: int = INTERVAL_SECONDS) -> datetime:
    """The next interval boundary strictly after ``now`` (e.g. the next full hour)."""
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % interval + interval, tz=UTC)


def schedule(session: Session, *, now: datetime, interval: int = INTERVAL_SECONDS) -> str:
    """Make sure the next tick exists (idempotent: one event per due time)."""
    due = next_due(now, interval)
    return publish(
        session,
        TICK,
        {"interval_seconds": interval},
        now=now,
        deliver_after=due,
        dedupe_key=f"{TICK}:{int(due.timestamp())}",
    )


def ensure_scheduled(app: Potluck) -> None:
    """Called when workers start: the first tick, unless another process made it already."""
    try:
        with app.db.transaction() as s:
            schedule(s, now=app.clock.now())
    except IntegrityError:
        pass  # a concurrent process scheduled the same tick: that one is ours too


def on_tick(ctx: HandlerContext, event: Event) -> None:
    from potluck.api.idempotency import purge_expired_keys_in
    from potluck.identity.service import prune_auth_attempts_in
    from potluck.ledger.service import expire_due_holds
    from potluck.web.sessions import prune_in as prune_web_sessions_in

    s, now = ctx.session, ctx.now
    # First, so that nothing below can cost the chain its next link.
    schedule(s, now=now, interval=int(event.data.get("interval_seconds", INTERVAL_SECONDS)))
    steps: dict[str, Callable[[], int]] = {
        "auth_attempts": lambda: prune_auth_attempts_in(s, settings=ctx.app.settings, now=now),
        "idempotency_keys": lambda: purge_expired_keys_in(s, now=now),
        "holds": lambda: expire_due_holds(s, now=now),
        "web_sessions": lambda: prune_web_sessions_in(s, now=now),
    }
    done: dict[str, int | None] = {}
    for name, step in steps.items():
        try:
            with s.begin_nested():  # a savepoint: a failure undoes this step only
                done[name] = step()
        except Exception:
            done[name] = None
            log.exception("maintenance.step_failed", step=name)
    log.info("maintenance.tick", **done)


def register(registry: HandlerRegistry) -> None:
    registry.register(SERVICE, TICK, on_tick)
