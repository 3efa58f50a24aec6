"""Sending webhooks: a poller of the "webhooks" service, run outside any transaction.

Each round:

1. claim up to ``webhook_batch_size`` due deliveries in one short transaction: set a lease
   (``locked_until`` and a random ``lease`` token); on PostgreSQL ``FOR UPDATE SKIP LOCKED``
   lets concurrent senders take disjoint rows without waiting, on SQLite the single writer
   does the same. A claimed row is invisible to other senders until its lease runs out, and
   the lease is long enough for the whole round (``lease_seconds``);
2. POST them with httpx, ``webhook_concurrency`` at a time, no transaction open (a slow
   endpoint holds no lock, and one slow endpoint does not hold up the round for long);
3. record the attempt in a second short transaction: 2xx is ``succeeded``; anything else
   (another status, a timeout, a refused connection, a redirect: redirects are not followed)
   schedules the next attempt with exponential backoff, capped, until ``expires_at`` (the
   event's time plus ``webhook_retry_window_seconds``), after which the delivery is
   ``failed``. The lease token fences the write: a sender whose lease ran out records its
   attempt in the log but no longer changes the delivery.

Delivery is at least once: a sender that dies after the POST and before step 3 leaves the
row to be sent again after its lease. Receivers de-duplicate on ``Potluck-Event-Id``.
"""

from __future__ import annotations

import math
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import ColumnElement, or_, select, update

from potluck import __version__
from potluck.clock import utc
from potluck.notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from potluck.notify.service import WebhookError, check_host_is_public
from potluck.notify.signing import HEADER, sign

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck
    from potluck.config import Settings

log = structlog.get_logger("potluck.webhooks")

USER_AGENT = f"Potluck-Webhooks/{__version__}"
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this sender holds the lease of, with what it needs to send it."""

    id: str
    lease: str
    event_id: str
    event_type: str
    url: str
    secret: str
    body: str


@dataclass(frozen=True, slots=True)
class Outcome:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Delay after the ``attempts``-th failed attempt: base, 2×base, 4×base, … up to the cap."""
    exponent = min(max(attempts - 1, 0), 32)
    return float(
        min(
            settings.webhook_backoff_base_seconds * 2**exponent,
            settings.webhook_backoff_max_seconds,
        )
    )


def lease_seconds(settings: Settings) -> float:
    """How long a claim lasts: the setting, or more if a whole round of timeouts needs it
    (a lease that ran out mid-round would let another sender POST the same delivery)."""
    rounds = math.ceil(settings.webhook_batch_size / settings.webhook_concurrency)
    worst = settings.webhook_timeout_seconds * rounds + 30
    return max(settings.webhook_lease_seconds, worst)


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until <= now),
    )


def claim_due(app: Potluck, *, limit: int | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to this caller."""
    limit = limit or app.settings.webhook_batch_size
    now = app.clock.now()
    # An idle round only reads: no write transaction (on SQLite, no write lock) when
    # nothing is due.
    with app.db.read() as s:
        if s.scalar(select(WebhookDelivery.id).where(*_due(now)).limit(1)) is None:
            return []
    with app.db.transaction() as s:
        query = (
            select(WebhookDelivery.id)
            .where(*_due(now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        if app.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(s.scalars(query).all())
        if not ids:
            return []
        lease = secrets.token_hex(16)
        locked_until = now + timedelta(seconds=lease_seconds(app.settings))
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(locked_until=locked_until, lease=lease)
        )
        rows = s.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.event_id,
                WebhookDelivery.event_type,
                WebhookDelivery.body,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        ).all()
    return [
        Claimed(
            id=r.id,
            lease=lease,
            event_id=r.event_id,
            event_type=r.event_type,
            url=r.url,
            secret=r.secret,
            body=r.body,
        )
        for r in rows
    ]


def make_client(app: Potluck) -> httpx.Client:
    """The HTTP client of one round. Tests inject a transport through
    ``app.webhook_transport``. Redirects are not followed (a 3xx is a failed attempt: a
    redirect could lead to an address the URL check refused), and proxy variables of the
    environment are ignored."""
    return httpx.Client(
        transport=app.webhook_transport,
        timeout=app.settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
    )


def send_one(app: Potluck, client: httpx.Client, delivery: Claimed) -> Outcome:
    """POST one delivery, signed now; never raises."""
    attempted_at = app.clock.now()
    timestamp = int(attempted_at.timestamp())
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: sign(delivery.secret, body, timestamp=timestamp),
        "Potluck-Event-Id": delivery.event_id,
        "Potluck-Event-Type": delivery.event_type,
        "Potluck-Delivery-Id": delivery.id,
    }
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        if not app.settings.webhook_allow_private_urls:
            # Again at send time: the name may point somewhere else than when it was added.
            check_host_is_public(urlsplit(delivery.url).hostname or "")
        with client.stream("POST", delivery.url, content=body, headers=headers) as response:
            status_code = response.status_code  # the body is not read: only the status counts
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except WebhookError as exc:
        error = exc.message
    except httpx.TimeoutException:
        error = f"timeout after {app.settings.webhook_timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # an unexpected failure is one failed attempt, not a dead poller
        log.exception("webhooks.send_error", delivery_id=delivery.id)
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(
        attempted_at=attempted_at,
        status_code=status_code,
        error=error[:MAX_ERROR_LENGTH] if error else None,
        duration_ms=duration_ms,
    )


def record(app: Potluck, delivery: Claimed, outcome: Outcome) -> str:
    """Log the attempt and move the delivery on; returns its status afterwards."""
    now = app.clock.now()
    with app.db.transaction() as s:
        s.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=outcome.attempted_at,
                succeeded=outcome.succeeded,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        row = s.execute(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery.id).with_for_update()
        ).scalar_one()
        if row.status != "pending" or row.lease != delivery.lease:
            # Disabled meanwhile, or our lease ran out and another sender owns the row now.
            return row.status
        row.attempts += 1
        row.lease = None
        row.locked_until = None
        row.last_status_code = outcome.status_code
        row.last_error = outcome.error
        expires_at = utc(row.expires_at)
        if outcome.succeeded:
            row.status = "succeeded"
            row.completed_at = now
        elif now >= expires_at:
            row.status = "failed"
            row.completed_at = now
        else:
            delay = timedelta(seconds=backoff_seconds(app.settings, row.attempts))
            # The last try lands on the end of the window rather than past it.
            row.next_attempt_at = min(now + delay, expires_at)
        status = row.status
    log.info(
        "webhooks.attempt",
        delivery_id=delivery.id,
        event_id=delivery.event_id,
        status=status,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    return status


def send_due(app: Potluck, *, limit: int | None = None) -> int:
    """The poller: claim due deliveries, send them, record them; returns attempts made."""
    claimed = claim_due(app, limit=limit)
    if not claimed:
        return 0
    workers = min(len(claimed), app.settings.webhook_concurrency)
    with make_client(app) as client:
        if workers == 1:
            for delivery in claimed:
                record(app, delivery, send_one(app, client, delivery))
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="webhooks") as pool:
                futures = [
                    pool.submit(lambda d: record(app, d, send_one(app, client, d)), delivery)
                    for delivery in claimed
                ]
                for future in futures:
                    future.result()  # a failed record() is re-raised here, after the others
    return len(claimed)
