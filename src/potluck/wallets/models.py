"""Tables of wallets: which ledger account is whose wallet, the bridges between the money
book and a platform's book, wallet transfers, top-ups and payment requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, JSONType, Money64


class WalletAccount(Base):
    """A person's wallet in one currency: a ledger account in book ``money``."""

    __tablename__ = "wallet_accounts"

    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class WalletBridge(Base):
    """The per-(platform, currency) bridge accounts: ``platform_bridge`` in book money and
    ``wallets_bridge`` in the platform's book (equal and opposite amounts, always)."""

    __tablename__ = "wallet_bridges"

    platform_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("platforms.id"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)


class WalletTransfer(Base):
    """One payment from a person's wallet: to a person or to a merchant party."""

    __tablename__ = "wallet_transfers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    payer_user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id"), nullable=False)
    to_user_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("users.id"))
    to_party_id: Mapped[str | None] = mapped_column(String(40))
    platform_id: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    note: Mapped[str | None] = mapped_column(String(280))
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    device_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    risk_decision_id: Mapped[str | None] = mapped_column(String(40))
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_reasons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    from_account_id: Mapped[str] = mapped_column(String(40), nullable=False)
    to_account_id: Mapped[str] = mapped_column(String(40), nullable=False)
    reviewer_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        UniqueConstraint("payer_user_id", "client_id", name="uq_wallet_transfers_client"),
        Index("ix_wallet_transfers_payer_id", "payer_user_id", "id"),
        Index("ix_wallet_transfers_to_user_id", "to_user_id", "id"),
    )


class WalletTopUp(Base):
    """Money paid in through a payment intent (purpose ``wallet_top_up``)."""

    __tablename__ = "wallet_top_ups"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id"), nullable=False)
    intent_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_wallet_top_ups_user_id", "user_id", "id"),)


class WalletRequest(Base):
    """A payment request: ``requester`` asks ``payer`` for money."""

    __tablename__ = "wallet_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    requester_user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("users.id"), nullable=False
    )
    payer_user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id"), nullable=False)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    note: Mapped[str | None] = mapped_column(String(280))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    transfer_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_wallet_requests_requester", "requester_user_id", "id"),
        Index("ix_wallet_requests_payer", "payer_user_id", "id"),
    )
