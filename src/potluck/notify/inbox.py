"""A person's notification inbox: messages Potluck leaves for people (a group order
invitation with its payment link, an order confirmed, a refund), read with
``GET /v1/notifications``, newest first.

A message goes to a registered person (``user_id``) or, when nobody had registered with the
address yet, to an ``email``: whoever signs in with that email sees it too. Messages are
written in the transaction of the change they tell about, so they exist if and only if it
committed. A message to a person with an email address also gets a row in the email outbox
(``notify.email``), sent by the notify service's poller when SMTP is configured.

Read state: ``read_at`` is set by its owner (``POST /v1/notifications/{id}/read`` or
``/read-all``); ``?unread=true`` lists only the others, ``/unread-count`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table, func, insert, or_, select, update
from sqlalchemy.orm import Session

from potluck.api.deps import AppDep, CurrentUser
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.identity.models import User
from potluck.ids import new_id
from potluck.notify import email as email_outbox
from potluck.notify.models import Notification

__all__ = [
    "Message",
    "NotificationView",
    "list_notifications",
    "mark_all_read",
    "mark_read",
    "notify",
    "notify_many",
    "router",
    "unread_count",
]


_NOTIFICATIONS = cast(Table, Notification.__table__)
_INSERT_NOTIFICATION = insert(_NOTIFICATIONS)


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One inbox message to leave (see ``notify``)."""

    user_id: str | None
    email: str | None
    kind: str
    title: str
    body: str
    data: dict[str, Any]


def notify(
    session: Session,
    *,
    user_id: str | None,
    email: str | None,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any],
    now: datetime,
    send_email: bool = True,
) -> str:
    """Leave a message for a person (by user id, else by email); returns its id. With an
    address (``email``, else the user's own) and ``send_email``, the message is queued as an
    email too (notify's handlers pass whether SMTP is configured: no address is looked up and
    no email row is written while it is not)."""
    message = Message(user_id, email, kind, title, body, data)
    return notify_many(session, [message], now=now, send_email=send_email)[0]


def notify_many(
    session: Session, messages: list[Message], *, now: datetime, send_email: bool = True
) -> list[str]:
    """``notify`` for several messages at once: one insert for all of them; their ids."""
    rows: list[dict[str, Any]] = []
    emails: list[tuple[str, str, Message]] = []
    for m in messages:
        if m.user_id is None and m.email is None:
            raise ValueError("a notification needs a user_id or an email")
        address = m.email
        if send_email and address is None and m.user_id is not None:
            address = session.scalar(select(User.email).where(User.id == m.user_id))
        nid = new_id("ntf")
        rows.append(
            {
                "id": nid,
                "user_id": m.user_id,
                "email": None if m.user_id is not None else m.email,
                "kind": m.kind,
                "title": m.title[:200],
                "body": m.body[:2000],
                "data": m.data,
                "created_at": now,
                "read_at": None,
            }
        )
        if address and send_email:
            emails.append((nid, address, m))
    if rows:
        session.execute(_INSERT_NOTIFICATION, rows)
    for nid, address, m in emails:
        email_outbox.enqueue(
            session, notification_id=nid, to=address, subject=m.title, body=m.body, now=now
        )
    return [r["id"] for r in rows]


def _mine(session: Session, user_id: str) -> ColumnElement[bool]:
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email is None:
        return Notification.user_id == user_id
    return or_(Notification.user_id == user_id, Notification.email == email)


def _view(n: Notification) -> NotificationView:
    return NotificationView(
        id=n.id,
        kind=n.kind,
        title=n.title,
        body=n.body,
        data=dict(n.data),
        created_at=utc(n.created_at),
        read_at=utc(n.read_at) if n.read_at is not None else None,
    )


def list_notifications(
    session: Session,
    *,
    user_id: str,
    limit: int,
    starting_after: str | None = None,
    unread: bool = False,
) -> tuple[list[NotificationView], bool]:
    """The person's messages, newest first (ids are time-ordered); ``starting_after`` is the
    id of one of them (anything else is 422 ``invalid_cursor``); ``unread``: only those not
    marked read."""
    mine = _mine(session, user_id)
    query = select(Notification).where(mine)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    if starting_after is not None:
        known = session.scalar(
            select(Notification.id).where(mine, Notification.id == starting_after)
        )
        if known is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no notification {starting_after}",
                field="starting_after",
            )
        query = query.where(Notification.id < starting_after)
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit + 1)).scalars().all()
    return [_view(n) for n in rows[:limit]], len(rows) > limit


def mark_read(
    session: Session, *, user_id: str, notification_id: str, now: datetime
) -> NotificationView:
    """Mark one of the person's messages read (again: no change; someone else's: 404)."""
    row = session.execute(
        select(Notification).where(_mine(session, user_id), Notification.id == notification_id)
    ).scalar_one_or_none()
    if row is None:
        raise DomainError(
            "notification_not_found", f"no notification {notification_id}", status=404
        )
    if row.read_at is None:
        row.read_at = now
        session.flush()
    return _view(row)


def mark_all_read(session: Session, *, user_id: str, now: datetime) -> int:
    """Mark every unread message of the person read; returns how many were."""
    result = session.execute(
        update(Notification)
        .where(_mine(session, user_id), Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def unread_count(session: Session, *, user_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(_mine(session, user_id), Notification.read_at.is_(None))
        )
        or 0
    )


# ---------------------------------------------------------------- HTTP


class NotificationRead(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read: bool
    read_at: datetime | None

    @classmethod
    def of(cls, n: NotificationView) -> NotificationRead:
        return cls(
            id=n.id,
            kind=n.kind,
            title=n.title,
            body=n.body,
            data=n.data,
            created_at=n.created_at,
            read=n.read_at is not None,
            read_at=n.read_at,
        )


class NotificationList(BaseModel):
    data: list[NotificationRead]
    has_more: bool


class UnreadCount(BaseModel):
    unread: int


class ReadAll(BaseModel):
    marked: int


NotificationId = Annotated[str, Path(max_length=40)]

# No prefix: mounted under /v1 by the checkout router (checkout/api.py).
router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=NotificationList, responses=problem_responses())
def get_notifications(
    app: AppDep,
    user: CurrentUser,
    page: PageDep,
    unread: Annotated[bool, Query(description="Only notifications not marked read.")] = False,
) -> NotificationList:
    """Your notifications, newest first (paginated; the cursor is a notification id)."""
    with app.db.read() as s:
        rows, more = list_notifications(
            s,
            user_id=user.id,
            limit=page.limit,
            starting_after=page.starting_after,
            unread=unread,
        )
    return NotificationList(data=[NotificationRead.of(n) for n in rows], has_more=more)


@router.get(
    "/notifications/unread-count", response_model=UnreadCount, responses=problem_responses()
)
def get_unread_count(app: AppDep, user: CurrentUser) -> UnreadCount:
    """How many of your notifications are not marked read."""
    with app.db.read() as s:
        return UnreadCount(unread=unread_count(s, user_id=user.id))


@router.post("/notifications/read-all", response_model=ReadAll, responses=problem_responses())
def post_read_all(app: AppDep, user: CurrentUser) -> ReadAll:
    """Mark all your notifications read; returns how many were unread."""
    with app.db.transaction() as s:
        return ReadAll(marked=mark_all_read(s, user_id=user.id, now=app.clock.now()))


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationRead,
    responses=problem_responses(404),
)
def post_read(notification_id: NotificationId, app: AppDep, user: CurrentUser) -> NotificationRead:
    """Mark one of your notifications read (idempotent). Someone else's is 404."""
    with app.db.transaction() as s:
        view = mark_read(s, user_id=user.id, notification_id=notification_id, now=app.clock.now())
    return NotificationRead.of(view)
