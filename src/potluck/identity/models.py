"""Identity tables: people, platforms (API keys), sign-in attempts, system secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt

SIGN_IN = "sign_in"
REGISTER = "register"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="user")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Platform(Base):
    __tablename__ = "platforms"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    owner_user_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("users.id"), nullable=True
    )
    # sha256 of the secret key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    # GET /v1/platforms: a person's platforms in id order.
    __table_args__ = (Index("ix_platforms_owner_user_id_id", "owner_user_id", "id"),)


class AuthAttempt(Base):
    """A sign-in or registration attempt, kept for rate limiting.

    ``kind`` is ``sign_in`` (limited per email and per client address) or ``register``
    (limited per client address; ``email`` is the address being registered).
    """

    __tablename__ = "auth_attempts"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    client: Mapped[str] = mapped_column(String(64), nullable=False)
    succeeded: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    kind: Mapped[str] = mapped_column(
        String(16), nullable=False, default=SIGN_IN, server_default=SIGN_IN
    )

    # Every limit reads one kind's attempts of one email or one client, newest first.
    __table_args__ = (
        Index("ix_auth_attempts_kind_email_at", "kind", "email", "at"),
        Index("ix_auth_attempts_kind_client_at", "kind", "client", "at"),
    )


class SystemSecret(Base):
    """Secrets generated once per installation (e.g. the JWT signing key when none is set)."""

    __tablename__ = "system_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
