"""Checkout API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, CurrencyCode
from potluck.checkout.catalog import CatalogItemView
from potluck.checkout.service import GroupOrderView, MemberView


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Sku = Annotated[str, StringConstraints(pattern=r"^[!-~]{1,64}$")]
Quantity = Annotated[int, Field(strict=True, ge=1, le=10_000)]
PartyId = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class CatalogItemCreate(Strict):
    merchant: PartyId
    sku: Sku
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    unit_price: Amount
    stock: Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class CatalogItemRead(BaseModel):
    id: str
    merchant: str
    sku: str
    name: str
    unit_price: int
    currency: str
    stock: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: CatalogItemView) -> CatalogItemRead:
        return cls(
            id=i.id,
            merchant=i.merchant_id,
            sku=i.sku,
            name=i.name,
            unit_price=i.unit_price,
            currency=i.currency,
            stock=i.stock,
            created_at=i.created_at,
            updated_at=i.updated_at,
        )


class CatalogItemList(BaseModel):
    data: list[CatalogItemRead]
    has_more: bool


class LineIn(Strict):
    sku: Sku
    quantity: Quantity


class GroupOrderCreate(Strict):
    merchant: PartyId
    items: Annotated[list[LineIn], Field(min_length=1, max_length=100)]
    currency: CurrencyCode
    split: Literal["equal", "custom", "by_items"]
    expires_in_seconds: Annotated[int, Field(strict=True, ge=60, le=7 * 24 * 3600)]
    fallback: Literal["host_pays", "cancel"]
    host_share: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        default=None, description="split 'custom' only: the host's own share (default 0)."
    )


class MemberCreate(Strict):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    share: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        default=None, description="split 'custom' only: this member's share in minor units."
    )
    items: Annotated[list[LineIn], Field(max_length=100)] | None = Field(
        default=None, description="split 'by_items' only: the lines this member pays for."
    )


class MemberRead(BaseModel):
    id: str
    user_id: str | None
    email: str
    is_host: bool
    share: int | None
    requested_share: int | None
    items: list[dict[str, Any]] | None
    status: str
    payment_intent: str | None
    payment_url: str | None
    paid_at: datetime | None

    @classmethod
    def of(cls, m: MemberView) -> MemberRead:
        return cls(
            id=m.id,
            user_id=m.user_id,
            email=m.email,
            is_host=m.is_host,
            share=m.share,
            requested_share=m.requested_share,
            items=m.items,
            status=m.status,
            payment_intent=m.payment_intent,
            payment_url=m.payment_url,
            paid_at=m.paid_at,
        )


class GroupOrderPaymentRead(BaseModel):
    intent: str
    member: str
    kind: str
    amount: int
    status: str
    refund: str | None


class TransitionRead(BaseModel):
    status: str
    at: datetime
    reason: str | None


class GroupOrderRead(BaseModel):
    id: str
    host_user_id: str
    merchant: str
    currency: str
    total: int
    paid: int
    items: list[dict[str, Any]]
    split: str
    fallback: str
    status: str
    reason: str | None
    escrow_account: str
    expires_at: datetime
    host_deadline_at: datetime | None
    order: str | None
    members: list[MemberRead]
    payments: list[GroupOrderPaymentRead]
    history: list[TransitionRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, g: GroupOrderView) -> GroupOrderRead:
        return cls(
            id=g.id,
            host_user_id=g.host_user_id,
            merchant=g.merchant_id,
            currency=g.currency,
            total=g.total,
            paid=g.paid,
            items=g.items,
            split=g.split,
            fallback=g.fallback,
            status=g.status,
            reason=g.reason,
            escrow_account=g.escrow_account_id,
            expires_at=g.expires_at,
            host_deadline_at=g.host_deadline_at,
            order=g.order_id,
            members=[MemberRead.of(m) for m in g.members],
            payments=[
                GroupOrderPaymentRead(
                    intent=p.intent_id,
                    member=p.member_id,
                    kind=p.kind,
                    amount=p.amount,
                    status=p.status,
                    refund=p.refund_id,
                )
                for p in g.payments
            ],
            history=[TransitionRead(status=t.status, at=t.at, reason=t.reason) for t in g.history],
            created_at=g.created_at,
            updated_at=g.updated_at,
        )


class GroupOrderList(BaseModel):
    data: list[GroupOrderRead]
    has_more: bool
