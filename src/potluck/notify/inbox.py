"""A person's notification inbox: messages Potluck leaves for people (a group order
invitation with its payment link, an order confirmed, a refund), read with
``GET /v1/notifications``, newest first.

A message goes to a registered person (``user_id``) or, when nobody had registered with the
address yet, to an ``email``: whoever signs in with that email sees it too. Messages are
written in the transaction of the change they tell about, so they exist if and only if it
committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from potluck.api.deps import AppDep, CurrentUser
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.checkout.models import Notification
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.identity.models import User
from potluck.ids import new_id

__all__ = ["NotificationView", "list_notifications", "notify", "router"]


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime


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
) -> str:
    """Leave a message for a person (by user id, else by email); returns its id."""
    if user_id is None and email is None:
        raise ValueError("a notification needs a user_id or an email")
    nid = new_id("ntf")
    session.add(
        Notification(
            id=nid,
            user_id=user_id,
            email=None if user_id is not None else email,
            kind=kind,
            title=title[:200],
            body=body[:2000],
            data=data,
            created_at=now,
        )
    )
    return nid


def _mine(session: Session, user_id: str) -> ColumnElement[bool]:
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email is None:
        return Notification.user_id == user_id
    return or_(Notification.user_id == user_id, Notification.email == email)


def list_notifications(
    session: Session, *, user_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[NotificationView], bool]:
    """The person's messages, newest first (ids are time-ordered); ``starting_after`` is the
    id of one of them (anything else is 422 ``invalid_cursor``)."""
    mine = _mine(session, user_id)
    query = select(Notification).where(mine)
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
    views = [
        NotificationView(
            id=n.id,
            kind=n.kind,
            title=n.title,
            body=n.body,
            data=dict(n.data),
            created_at=utc(n.created_at),
        )
        for n in rows[:limit]
    ]
    return views, len(rows) > limit


# ---------------------------------------------------------------- HTTP


class NotificationRead(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime


class NotificationList(BaseModel):
    data: list[NotificationRead]
    has_more: bool


# No prefix: mounted under /v1 by the checkout router (checkout/api.py).
router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=NotificationList, responses=problem_responses())
def get_notifications(app: AppDep, user: CurrentUser, page: PageDep) -> NotificationList:
    """Your notifications, newest first (paginated; the cursor is a notification id)."""
    with app.db.read() as s:
        rows, more = list_notifications(
            s, user_id=user.id, limit=page.limit, starting_after=page.starting_after
        )
    return NotificationList(
        data=[
            NotificationRead(
                id=n.id,
                kind=n.kind,
                title=n.title,
                body=n.body,
                data=n.data,
                created_at=n.created_at,
            )
            for n in rows
        ],
        has_more=more,
    )
