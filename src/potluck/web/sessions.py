"""Browser sessions: a random token in an HttpOnly cookie, its sha256 in ``web_sessions``.

Signing in creates a row (with the session's CSRF token), signing out deletes it. A row past
``expires_at`` signs nobody in. ``last_seen_at`` is refreshed at most once every
``TOUCH_SECONDS``, so reading pages does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.identity.models import User
from potluck.web.models import WebSession

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

COOKIE = "potluck_session"
TOUCH_SECONDS = 300


@dataclass(frozen=True, slots=True)
class WebUser:
    """The signed-in person of a request."""

    id: str
    email: str
    name: str
    role: str
    csrf_token: str
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(app: Potluck, *, user_id: str) -> str:
    """A new session for ``user_id``; returns the cookie's token (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    now = app.clock.now()
    with app.db.transaction() as s:
        s.add(
            WebSession(
                id=session_id(token),
                user_id=user_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(seconds=app.settings.web_session_ttl_seconds),
                last_seen_at=now,
            )
        )
    return token


def load_session(app: Potluck, token: str | None) -> WebUser | None:
    """The person signed in with ``token``, or None (no such session, or it expired)."""
    if not token or len(token) > 200:
        return None
    sid = session_id(token)
    now = app.clock.now()
    with app.db.read() as s:
        row = s.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.id == sid)
        ).first()
        if row is None:
            return None
        session, user = row
        found = WebUser(user.id, user.email, user.name, user.role, session.csrf_token, sid)
        expires_at, last_seen_at = utc(session.expires_at), utc(session.last_seen_at)
    if expires_at <= now:
        return None
    if (now - last_seen_at).total_seconds() > TOUCH_SECONDS:
        with app.db.transaction() as s:
            s.execute(update(WebSession).where(WebSession.id == sid).values(last_seen_at=now))
    return found


def end_session(app: Potluck, token: str | None) -> None:
    """Sign out: the session's row is deleted (idempotent)."""
    if not token:
        return
    with app.db.transaction() as s:
        s.execute(delete(WebSession).where(WebSession.id == session_id(token)))


def prune_sessions(app: Potluck) -> int:
    """Delete expired sessions; returns how many."""
    with app.db.transaction() as s:
        result = s.execute(delete(WebSession).where(WebSession.expires_at <= app.clock.now()))
        return int(getattr(result, "rowcount", 0) or 0)


def prune_in(session: Session, *, now: datetime) -> int:
    """Expired sessions and form results older than a day, inside the caller's transaction
    (the maintenance tick); returns how many rows went."""
    from potluck.web.forms import KEEP_SECONDS
    from potluck.web.models import WebFormResult

    gone = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    old = session.execute(
        delete(WebFormResult).where(
            WebFormResult.created_at < now - timedelta(seconds=KEEP_SECONDS)
        )
    )
    return int(getattr(gone, "rowcount", 0) or 0) + int(getattr(old, "rowcount", 0) or 0)
