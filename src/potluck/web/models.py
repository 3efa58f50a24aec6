"""Tables of the web app: browser sessions and the results of submitted forms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base


class WebSession(Base):
    """A signed-in browser. ``id`` is the sha256 of the cookie's random token (the token
    itself is never stored, so a leaked table signs nobody in)."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id"), nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_web_sessions_user_id", "user_id"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )


class WebFormResult(Base):
    """What a submitted creating form led to (the page it redirected to), keyed by the
    form's hidden ``idempotency_key``: a form sent twice does its thing once."""

    __tablename__ = "web_form_results"

    user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    result_url: Mapped[str] = mapped_column(String(2000), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "key"),
        Index("ix_web_form_results_created_at", "created_at"),
    )
