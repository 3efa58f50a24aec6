"""Tables of the payments product (migration 0007).

Ours: payment intents, refunds, the provider events we received (each stored once), the
ledger accounts payments opened (provider clearing, platforms' ``payments_received``) and
reconciliation reports. The sandbox provider's own memory (``sandbox_*``) is kept apart, as a
real provider's would be: nothing of ours reads it except the sandbox adapter.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, JSONType, Money64


class PaymentIntent(Base):
    """One payment we expect from a payer, and what became of it."""

    __tablename__ = "payment_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("platforms.id"))
    client_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    payer_user_id: Mapped[str | None] = mapped_column(String(40))
    payer_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    payment_url: Mapped[str | None] = mapped_column(String(500))
    destination_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )
    clearing_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )
    ledger_scope: Mapped[str] = mapped_column(String(64), nullable=False)  # the destination's
    captured_amount: Mapped[int] = mapped_column(Money64, nullable=False, default=0)
    refunded_amount: Mapped[int] = mapped_column(Money64, nullable=False, default=0)
    meta: Mapped[Any] = mapped_column("metadata", JSONType, nullable=False)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        Index("ix_payment_intents_platform_id_id", "platform_id", "id"),
        Index("ix_payment_intents_status_updated_at", "status", "updated_at"),
        Index("ix_payment_intents_created_at", "created_at"),
    )


class PaymentRefund(Base):
    """Money given back to the payer from a succeeded intent (never above what is left)."""

    __tablename__ = "payment_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("payment_intents.id"), nullable=False
    )
    client_id: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending|succeeded|failed
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        UniqueConstraint("intent_id", "client_id"),
        Index("ix_payment_refunds_intent_id_id", "intent_id", "id"),
        Index("ix_payment_refunds_created_at", "created_at"),
    )


class ProviderEventRecord(Base):
    """A verified provider webhook, stored once per (provider, provider's event id)."""

    __tablename__ = "payment_provider_events"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    event_id: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    intent_id: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)  # applied|ignored|unknown…
    payload: Mapped[Any] = mapped_column(JSONType, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class PaymentAccount(Base):
    """A ledger account payments opened once: ``provider_clearing`` per (book, currency,
    provider), ``payments_received`` per (platform book, currency) with provider ``""``."""

    __tablename__ = "payment_accounts"

    book: Mapped[str] = mapped_column(String(64), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )


class ReconciliationReport(Base):
    """One run of ``potluck reconcile --date D``: what was compared and every mismatch."""

    __tablename__ = "reconciliation_reports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    intents_checked: Mapped[int] = mapped_column(Integer, nullable=False)
    refunds_checked: Mapped[int] = mapped_column(Integer, nullable=False)
    mismatch_count: Mapped[int] = mapped_column(Integer, nullable=False)
    mismatches: Mapped[Any] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_reconciliation_reports_day", "day"),)


# ------------------------------------------------------------ the sandbox provider's memory


class SandboxIntent(Base):
    """The simulated provider's record of a payment (its id is ``sbx_…``)."""

    __tablename__ = "sandbox_intents"

    ref: Mapped[str] = mapped_column(String(100), primary_key=True)
    intent_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    captured_amount: Mapped[int] = mapped_column(Money64, nullable=False, default=0)
    refunded_amount: Mapped[int] = mapped_column(Money64, nullable=False, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SandboxRefund(Base):
    __tablename__ = "sandbox_refunds"

    ref: Mapped[str] = mapped_column(String(100), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    intent_ref: Mapped[str] = mapped_column(
        String(100), ForeignKey("sandbox_intents.ref"), nullable=False
    )
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SandboxWebhook(Base):
    """A webhook the sandbox still has to deliver (signed when it is sent)."""

    __tablename__ = "sandbox_webhooks"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    deliver_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_sandbox_webhooks_delivered_at_deliver_after", "delivered_at", "deliver_after"),
    )
