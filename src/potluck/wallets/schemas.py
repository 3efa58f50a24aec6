"""Wallets API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, CurrencyCode
from potluck.wallets.service import (
    Balance,
    RequestView,
    TopUpView,
    Transaction,
    WalletTransferView,
)

Note = Annotated[str, StringConstraints(max_length=280)]
Who = Annotated[str, StringConstraints(min_length=3, max_length=320)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BalanceRead(BaseModel):
    currency: str
    total: int = Field(description="credits_posted − debits_posted")
    available: int = Field(description="total − held: what can be spent now")
    held: int = Field(description="held by payments in review (debits_pending)")

    @classmethod
    def of(cls, b: Balance) -> BalanceRead:
        return cls(currency=b.currency, total=b.total, available=b.available, held=b.held)


class WalletRead(BaseModel):
    object: Literal["wallet"] = "wallet"
    balances: list[BalanceRead]


class TransactionRead(BaseModel):
    id: str
    kind: Literal["transfer", "top_up"]
    direction: Literal["in", "out"]
    amount: int
    currency: str
    counterparty: dict[str, Any] | None
    note: str | None
    status: str
    created_at: datetime

    @classmethod
    def of(cls, t: Transaction) -> TransactionRead:
        return cls(
            id=t.id,
            kind=t.kind,
            direction=t.direction,
            amount=t.amount,
            currency=t.currency,
            counterparty=t.counterparty,
            note=t.note,
            status=t.status,
            created_at=t.created_at,
        )


class TransactionList(BaseModel):
    data: list[TransactionRead]
    has_more: bool


class TopUpCreate(Strict):
    amount: Amount
    currency: CurrencyCode


class TopUpRead(BaseModel):
    id: str
    object: Literal["wallet_top_up"] = "wallet_top_up"
    intent_id: str
    amount: int
    currency: str
    status: str
    payment_url: str | None = Field(description="Where the person pays.")
    created_at: datetime

    @classmethod
    def of(cls, t: TopUpView) -> TopUpRead:
        return cls(
            id=t.id,
            intent_id=t.intent_id,
            amount=t.amount,
            currency=t.currency,
            status=t.status,
            payment_url=t.payment_url,
            created_at=t.created_at,
        )


class TransferCreate(Strict):
    to: Who = Field(
        description="An email, a user id (usr_…) or a merchant party id (pty_…).",
        examples=["bob@example.com"],
    )
    amount: Amount
    currency: CurrencyCode
    note: Note | None = None
    device_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class TransferRead(BaseModel):
    id: str
    object: Literal["wallet_transfer"] = "wallet_transfer"
    status: Literal["completed", "failed", "blocked", "in_review", "rejected"]
    from_user_id: str
    to_user_id: str | None
    to_party_id: str | None
    platform_id: str | None
    amount: int
    currency: str
    note: str | None
    purpose: str
    failure_reason: str | None
    risk_score: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: WalletTransferView) -> TransferRead:
        return cls(
            id=t.id,
            status=t.status,  # type: ignore[arg-type]
            from_user_id=t.payer_user_id,
            to_user_id=t.to_user_id,
            to_party_id=t.to_party_id,
            platform_id=t.platform_id,
            amount=t.amount,
            currency=t.currency,
            note=t.note,
            purpose=t.purpose,
            failure_reason=t.failure_reason,
            risk_score=t.risk_score,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


class RequestCreate(Strict):
    from_: Who = Field(
        alias="from",
        description="Whom to ask: an email or a user id.",
        examples=["bob@example.com"],
    )
    amount: Amount
    currency: CurrencyCode
    note: Note | None = None


class RequestRead(BaseModel):
    id: str
    object: Literal["wallet_request"] = "wallet_request"
    direction: Literal["incoming", "outgoing"]
    requester_user_id: str
    payer_user_id: str
    amount: int
    currency: str
    note: str | None
    status: Literal["pending", "accepted", "declined", "cancelled"]
    transfer_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: RequestView, *, viewer: str) -> RequestRead:
        return cls(
            id=r.id,
            direction="outgoing" if r.requester_user_id == viewer else "incoming",
            requester_user_id=r.requester_user_id,
            payer_user_id=r.payer_user_id,
            amount=r.amount,
            currency=r.currency,
            note=r.note,
            status=r.status,  # type: ignore[arg-type]
            transfer_id=r.transfer_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class RequestList(BaseModel):
    data: list[RequestRead]
    has_more: bool


class RequestAccept(Strict):
    device_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class RequestAccepted(BaseModel):
    request: RequestRead
    transfer: TransferRead
