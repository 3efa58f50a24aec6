"""Tables of the checkout product (migration 0008): the merchants' catalogue, group orders,
their members, payments and history, and a person's notification inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, JSONType, Money64


class CatalogItem(Base):
    """One thing a merchant (a platform's party) sells: price in minor units, stock."""

    __tablename__ = "catalog_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    merchant_id: Mapped[str] = mapped_column(String(40), ForeignKey("parties.id"), nullable=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    unit_price: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    stock: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (UniqueConstraint("merchant_id", "sku"),)


class GroupOrder(Base):
    """An order for one merchant that a host's group pays in shares.

    ``items`` is a snapshot of the order lines with the prices of the moment
    (``[{sku, name, quantity, unit_price, amount}]``); ``total`` is their sum.
    """

    __tablename__ = "group_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host_user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id"), nullable=False)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    merchant_id: Mapped[str] = mapped_column(String(40), ForeignKey("parties.id"), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    total: Mapped[int] = mapped_column(Money64, nullable=False)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    split: Mapped[str] = mapped_column(String(16), nullable=False)  # equal|custom|by_items
    fallback: Mapped[str] = mapped_column(String(16), nullable=False)  # host_pays|cancel
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    escrow_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    host_deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    order_pk: Mapped[str | None] = mapped_column(String(40))  # the marketplace order
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_group_orders_host_user_id_id", "host_user_id", "id"),)


class GroupMember(Base):
    """Someone who pays a share: a registered person (``user_id``) or only an email."""

    __tablename__ = "group_order_members"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(40), ForeignKey("group_orders.id"), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    is_host: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    requested_share: Mapped[int | None] = mapped_column(Money64)  # custom split
    claims: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)  # by_items
    share: Mapped[int | None] = mapped_column(Money64)  # set at open
    # invited (draft) | due (open, unpaid) | paid | failed | covered (by the host)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    intent_id: Mapped[str | None] = mapped_column(String(40))
    payment_url: Mapped[str | None] = mapped_column(String(2048))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        UniqueConstraint("group_id", "email"),
        Index("ix_group_order_members_user_id_group_id", "user_id", "group_id"),
    )


class GroupPayment(Base):
    """One payment intent made for a group order: a member's share or the host's remainder.

    ``status``: requires_payment | succeeded | failed | canceled | refunded. A payment is
    counted at most once: the handler moves it out of requires_payment under the group's lock.
    """

    __tablename__ = "group_order_payments"

    intent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(40), ForeignKey("group_orders.id"), nullable=False)
    member_id: Mapped[str] = mapped_column(String(40), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # share|remainder
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    refund_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_group_order_payments_group_id", "group_id"),)


class GroupTransition(Base):
    """One entry of a group order's history: the status it entered, when and why."""

    __tablename__ = "group_order_transitions"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(40), ForeignKey("group_orders.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_group_order_transitions_group_id", "group_id"),)


# The inbox table moved to notify/models.py (it gained read state); re-exported here.
from potluck.notify.models import Notification as Notification  # noqa: E402
