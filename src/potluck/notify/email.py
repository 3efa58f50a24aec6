"""Notification emails: an outbox table written with the inbox message, sent over SMTP by a
poller of the "notify" service, outside any transaction.

Each round (only when ``smtp_host`` is set):

1. claim up to ``email_batch_size`` due rows in one short transaction with a lease
   (``locked_until`` + a random ``lease`` token; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), as
   ``notify.sender`` does for webhooks, so two pollers never hold the same row;
2. send them with ``smtplib`` through one connection, no transaction open;
3. record each result in a short transaction fenced by the lease token: accepted is ``sent``;
   a refusal or a connection error schedules a retry with exponential backoff until
   ``created_at + email_retry_window_seconds``, then ``failed``.

A failure only marks the email row: the product change that caused the message committed long
before. Rows already past their window when first claimed (e.g. queued while SMTP was off)
end as failed without being sent, rather than reaching someone days late.
"""

from __future__ import annotations

import secrets
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.ids import new_id
from potluck.notify.models import EmailMessage

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck
    from potluck.config import Settings

log = structlog.get_logger("potluck.email")

MAX_ERROR_LENGTH = 500
LEASE_SECONDS = 300.0
FOOTER = "\n\n--\nPotluck. You get this email because of your Potluck account's notifications."


def enqueue(
    session: Session, *, notification_id: str, to: str, subject: str, body: str, now: datetime
) -> str:
    """Queue the email of an inbox message, in the message's transaction."""
    eid = new_id("eml")
    session.add(
        EmailMessage(
            id=eid,
            notification_id=notification_id,
            to_address=to[:320],
            subject=subject[:200],
            body=body + FOOTER,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return eid


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    lease: str
    to: str
    subject: str
    body: str
    expired: bool


def backoff_seconds(settings: Settings, attempts: int) -> float:
    exponent = min(max(attempts - 1, 0), 32)
    return float(
        min(
            settings.email_backoff_base_seconds * 2**exponent,
            settings.email_backoff_max_seconds,
        )
    )


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        EmailMessage.status == "pending",
        EmailMessage.next_attempt_at <= now,
        or_(EmailMessage.locked_until.is_(None), EmailMessage.locked_until <= now),
    )


def claim_due(app: Potluck, *, limit: int | None = None) -> list[Claimed]:
    limit = limit or app.settings.email_batch_size
    now = app.clock.now()
    with app.db.read() as s:
        if s.scalar(select(EmailMessage.id).where(*_due(now)).limit(1)) is None:
            return []
    window = timedelta(seconds=app.settings.email_retry_window_seconds)
    with app.db.transaction() as s:
        query = (
            select(EmailMessage.id)
            .where(*_due(now))
            .order_by(EmailMessage.next_attempt_at, EmailMessage.id)
            .limit(limit)
        )
        if app.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(s.scalars(query).all())
        if not ids:
            return []
        lease = secrets.token_hex(16)
        s.execute(
            update(EmailMessage)
            .where(EmailMessage.id.in_(ids))
            .values(locked_until=now + timedelta(seconds=LEASE_SECONDS), lease=lease)
        )
        rows = s.execute(
            select(EmailMessage).where(EmailMessage.id.in_(ids)).order_by(EmailMessage.id)
        ).scalars()
        return [
            Claimed(
                id=r.id,
                lease=lease,
                to=r.to_address,
                subject=r.subject,
                body=r.body,
                expired=now >= utc(r.created_at) + window and r.attempts == 0,
            )
            for r in rows
        ]


def build_message(settings: Settings, claimed: Claimed) -> MimeMessage:
    msg = MimeMessage()
    msg["From"] = settings.email_from
    msg["To"] = claimed.to
    msg["Subject"] = claimed.subject
    msg["Message-ID"] = make_msgid(idstring=claimed.id, domain="potluck")
    msg.set_content(claimed.body)
    return msg


def _connect(settings: Settings) -> smtplib.SMTP:
    assert settings.smtp_host is not None
    smtp = smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.email_timeout_seconds
    )
    try:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


def record(app: Potluck, claimed: Claimed, error: str | None, *, expired: bool = False) -> str:
    """Move the row on after one attempt (or after finding it expired); fenced by the lease."""
    now = app.clock.now()
    window = timedelta(seconds=app.settings.email_retry_window_seconds)
    with app.db.transaction() as s:
        row = s.execute(
            select(EmailMessage).where(EmailMessage.id == claimed.id).with_for_update()
        ).scalar_one()
        if row.status != "pending" or row.lease != claimed.lease:
            return row.status
        row.lease = None
        row.locked_until = None
        if expired:
            row.status = "failed"
            row.last_error = "expired before it could be sent"
            return row.status
        row.attempts += 1
        row.last_error = error
        deadline = utc(row.created_at) + window
        if error is None:
            row.status = "sent"
            row.sent_at = now
        elif now >= deadline:
            row.status = "failed"
        else:
            delay = timedelta(seconds=backoff_seconds(app.settings, row.attempts))
            row.next_attempt_at = min(now + delay, deadline)
        status = row.status
    log.info("email.attempt", email_id=claimed.id, status=status, error=error)
    return status


def send_due(app: Potluck, *, limit: int | None = None) -> int:
    """The poller: claim due emails, send them over one SMTP connection, record each result;
    returns how many rows it handled. Does nothing while ``smtp_host`` is unset."""
    if not app.settings.smtp_host:
        return 0
    claimed = claim_due(app, limit=limit)
    if not claimed:
        return 0
    to_send = []
    for c in claimed:
        if c.expired:
            record(app, c, None, expired=True)
        else:
            to_send.append(c)
    if not to_send:
        return len(claimed)
    try:
        smtp = _connect(app.settings)
    except Exception as exc:  # the server is down: every claimed row is retried later
        down = _error(exc)
        for c in to_send:
            record(app, c, down)
        return len(claimed)
    try:
        for i, c in enumerate(to_send):
            error: str | None = None
            try:
                smtp.send_message(build_message(app.settings, c))
            except smtplib.SMTPServerDisconnected as exc:
                # The connection is gone: this one and the rest are retried on a later round.
                for rest in to_send[i:]:
                    record(app, rest, _error(exc))
                break
            except Exception as exc:
                error = _error(exc)
            record(app, c, error)
    finally:
        try:
            smtp.quit()
        except Exception:  # closing a connection that already failed
            smtp.close()
    return len(claimed)
