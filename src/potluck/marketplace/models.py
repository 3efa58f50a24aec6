"""Marketplace tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, JSONType, Money64


class Party(Base):
    """Someone a platform pays: a merchant, a partner (courier, affiliate) or the platform."""

    __tablename__ = "parties"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # merchant|partner|platform
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # The party's wallet in the platform's money book (no overdraft).
    wallet_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_parties_platform_id_id", "platform_id", "id"),)


class PlatformAccount(Base):
    """A platform's own ledger accounts per currency, opened on first use.

    ``psp_receivable`` (what the PSP owes the platform: may go negative) and ``clearing``
    (money received, not yet credited to parties).
    """

    __tablename__ = "marketplace_accounts"

    platform_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("platforms.id"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )


class SplitRuleSet(Base):
    """One version of a platform's split rules for one currency; the newest is current."""

    __tablename__ = "split_rule_sets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    version: Mapped[int] = mapped_column(BigInt, nullable=False)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    remainder_to: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        UniqueConstraint("platform_id", "currency", "version", name="uq_split_rule_sets_version"),
    )


class Order(Base):
    """A paid order a platform reported, and how far its split has got."""

    __tablename__ = "marketplace_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    order_id: Mapped[str] = mapped_column(String(64), nullable=False)  # the platform's own id
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    split_status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending|completed
    # The rules version used; None when the order carried its own split ("custom").
    rules_version: Mapped[int | None] = mapped_column(BigInt, nullable=True)
    # The rules themselves, as resolved when the order was recorded.
    split: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    # None until the splitter has run; then the number of allocations to apply.
    allocations_total: Mapped[int | None] = mapped_column(BigInt, nullable=True)
    allocations_applied: Mapped[int] = mapped_column(BigInt, nullable=False, default=0)
    refunded_amount: Mapped[int] = mapped_column(Money64, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("platform_id", "order_id", name="uq_marketplace_orders_order_id"),
        Index("ix_marketplace_orders_platform_id_id", "platform_id", "id"),
    )


class Allocation(Base):
    """One party's part of an order: requested by the splitter, applied by the wallets."""

    __tablename__ = "order_allocations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_pk: Mapped[str] = mapped_column(
        String(40), ForeignKey("marketplace_orders.id"), nullable=False
    )
    platform_id: Mapped[str] = mapped_column(String(40), nullable=False)
    party_id: Mapped[str] = mapped_column(String(40), ForeignKey("parties.id"), nullable=False)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # requested|applied
    refunded_amount: Mapped[int] = mapped_column(Money64, nullable=False, default=0)
    position: Mapped[int] = mapped_column(BigInt, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (UniqueConstraint("order_pk", "party_id", name="uq_order_allocations_party"),)


class SplitCredit(Base):
    """Split history: one row per credit applied to a wallet (exactly one per allocation)."""

    __tablename__ = "split_history"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), nullable=False)
    order_pk: Mapped[str] = mapped_column(
        String(40), ForeignKey("marketplace_orders.id"), nullable=False
    )
    allocation_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("order_allocations.id"), nullable=False, unique=True
    )
    party_id: Mapped[str] = mapped_column(String(40), nullable=False)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    transfer_id: Mapped[str] = mapped_column(String(64), nullable=False)  # ledger client id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_split_history_order_pk_id", "order_pk", "id"),)


class Refund(Base):
    """A refund of an order, reversed from the parties' wallets in proportion."""

    __tablename__ = "order_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), nullable=False)
    order_pk: Mapped[str] = mapped_column(
        String(40), ForeignKey("marketplace_orders.id"), nullable=False
    )
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # [{"party": id, "amount": n}] in allocation order
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_order_refunds_order_pk_id", "order_pk", "id"),)
