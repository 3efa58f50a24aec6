"""Payments API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, CurrencyCode
from potluck.payments.service import IntentView, RefundView

IntentStatusName = Literal["requires_payment", "processing", "succeeded", "failed", "canceled"]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaymentIntentCreate(Strict):
    amount: Amount
    currency: CurrencyCode
    payer: Annotated[str, StringConstraints(min_length=3, max_length=320)] = Field(
        description="Who pays: a Potluck user id (usr_…) or an email address.",
        examples=["payer@example.com"],
    )
    purpose: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = Field(
        description="What the payment is for, a lower-case word (e.g. order, topup).",
        examples=["order"],
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=20, description="Up to 20 string pairs, echoed back."
    )


class PaymentIntentRead(BaseModel):
    id: str
    object: Literal["payment_intent"] = "payment_intent"
    amount: int
    currency: str
    status: IntentStatusName
    purpose: str
    payer_user_id: str | None
    payer_email: str | None
    provider: str
    provider_ref: str | None
    payment_url: str | None = Field(description="Where the payer pays (the provider's page).")
    captured_amount: int
    refunded_amount: int
    metadata: dict[str, str]
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: IntentView) -> PaymentIntentRead:
        return cls(
            id=p.id,
            amount=p.amount,
            currency=p.currency,
            status=p.status,  # type: ignore[arg-type]
            purpose=p.purpose,
            payer_user_id=p.payer_user_id,
            payer_email=p.payer_email,
            provider=p.provider,
            provider_ref=p.provider_ref,
            payment_url=p.payment_url,
            captured_amount=p.captured_amount,
            refunded_amount=p.refunded_amount,
            metadata=p.metadata,
            failure_reason=p.failure_reason,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class PaymentIntentList(BaseModel):
    data: list[PaymentIntentRead]
    has_more: bool


class RefundCreate(Strict):
    amount: Amount | None = Field(default=None, description="Omitted: all that is left.")
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class RefundRead(BaseModel):
    id: str
    object: Literal["refund"] = "refund"
    payment_intent: str
    amount: int
    currency: str
    status: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, r: RefundView) -> RefundRead:
        return cls(
            id=r.id,
            payment_intent=r.intent_id,
            amount=r.amount,
            currency=r.currency,
            status=r.status,
            reason=r.reason,
            created_at=r.created_at,
        )


class WebhookAck(BaseModel):
    received: bool = True
    outcome: str = Field(description="applied, ignored, duplicate or unknown_intent.")
