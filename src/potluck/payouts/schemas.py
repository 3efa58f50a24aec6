"""Payouts API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, CurrencyCode
from potluck.payouts.service import BankAccountView, PayoutView

PayoutStatus = Literal["pending", "processing", "completed", "failed"]
ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoutingIn(Strict):
    type: Literal["ifsc", "iban", "sort_code"] = Field(
        description="ifsc (India), iban (ISO 13616: the IBAN goes in account_number), "
        "sort_code (UK)."
    )
    value: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        default=None,
        description="The IFSC (e.g. HDFC0001234) or sort code (e.g. 12-34-56); for iban, "
        "optionally the BIC.",
    )


class BankAccountCreate(Strict):
    holder_name: Annotated[str, StringConstraints(min_length=1, max_length=140)]
    account_number: Annotated[str, StringConstraints(min_length=1, max_length=42)] = Field(
        description="Digits (ifsc: 9–18, sort_code: 8), or the IBAN (spaces allowed).",
        examples=["DE89 3704 0044 0532 0130 00"],
    )
    routing: RoutingIn


class RoutingRead(BaseModel):
    type: str
    value: str | None


class BankAccountRead(BaseModel):
    id: str
    party: str
    holder_name: str
    account_number: str = Field(description="Masked: only the last four characters, ••••1234.")
    last4: str
    routing: RoutingRead
    country: str
    created_at: datetime

    @classmethod
    def of(cls, b: BankAccountView) -> BankAccountRead:
        return cls(
            id=b.id,
            party=b.party_id,
            holder_name=b.holder_name,
            account_number=b.account_number_masked,
            last4=b.last4,
            routing=RoutingRead(type=b.routing_type, value=b.routing_value),
            country=b.country,
            created_at=b.created_at,
        )


class BankAccountList(BaseModel):
    data: list[BankAccountRead]
    has_more: bool


class PayoutCreate(Strict):
    party: ObjectId
    bank_account: ObjectId
    amount: Amount
    currency: CurrencyCode


class TransitionRead(BaseModel):
    status: str
    at: datetime
    reason: str | None


class PayoutRead(BaseModel):
    id: str
    party: str
    bank_account: str
    amount: int
    currency: str
    status: PayoutStatus
    attempts: int = Field(description="Times the bank has been tried.")
    last_error: str | None
    next_attempt_at: datetime | None
    bank_reference: str | None
    hold_transfer: str = Field(description="The ledger client id of the hold on the wallet.")
    history: list[TransitionRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: PayoutView) -> PayoutRead:
        return cls(
            id=p.id,
            party=p.party_id,
            bank_account=p.bank_account_id,
            amount=p.amount,
            currency=p.currency,
            status=p.status,  # type: ignore[arg-type]
            attempts=p.attempts,
            last_error=p.last_error,
            next_attempt_at=p.next_attempt_at,
            bank_reference=p.bank_reference,
            hold_transfer=p.hold_id,
            history=[TransitionRead(status=t.status, at=t.at, reason=t.reason) for t in p.history],
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class PayoutList(BaseModel):
    data: list[PayoutRead]
    has_more: bool
