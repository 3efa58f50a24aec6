"""Ledger API request and reply models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, ClientId, CurrencyCode, Metadata
from potluck.clock import utc
from potluck.ledger.service import AccountView, TransferView


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountFlagsIn(Strict):
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


class AccountCreate(Strict):
    currency: CurrencyCode
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-.]{1,64}$")] = Field(
        description="What kind of account this is, in your words (wallet, revenue, …).",
        examples=["wallet"],
    )
    flags: AccountFlagsIn = Field(default_factory=AccountFlagsIn)
    metadata: Metadata = None


class Balance(BaseModel):
    total: int
    available: int
    held: int


class AccountRead(BaseModel):
    id: str
    currency: str
    code: str
    flags: AccountFlagsIn
    balance: Balance
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    metadata: dict[str, str | int | bool | None] | None
    created_at: datetime

    @classmethod
    def of(cls, a: AccountView) -> AccountRead:
        return cls(
            id=a.id,
            currency=a.currency,
            code=a.code,
            flags=AccountFlagsIn(
                debits_must_not_exceed_credits=a.flags.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits=a.flags.credits_must_not_exceed_debits,
            ),
            balance=Balance(total=a.total, available=a.available, held=a.held),
            debits_posted=a.debits_posted,
            credits_posted=a.credits_posted,
            debits_pending=a.debits_pending,
            credits_pending=a.credits_pending,
            metadata=a.metadata,
            created_at=a.created_at,
        )


class AccountList(BaseModel):
    data: list[AccountRead]
    has_more: bool


class TransferCreate(Strict):
    id: ClientId | None = Field(
        default=None,
        description="Your transfer id; the same id with the same fields returns the original.",
    )
    debit_account: str = Field(max_length=40)
    credit_account: str = Field(max_length=40)
    amount: Amount
    currency: CurrencyCode
    pending: bool = False
    timeout_seconds: Annotated[int, Field(strict=True, gt=0, le=366 * 24 * 3600)] | None = None
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-.]{1,64}$")] = "transfer"
    metadata: Metadata = None


class TransferBatchCreate(Strict):
    transfers: list[TransferCreate] = Field(min_length=1, max_length=8190)


class TransferPost(Strict):
    amount: Amount | None = Field(
        default=None, description="Post part of the hold; the rest is released. Default: all."
    )
    metadata: Metadata = None


class TransferVoid(Strict):
    metadata: Metadata = None


class TransferRead(BaseModel):
    id: str
    kind: Literal["posted", "pending", "post_pending", "void_pending", "expire_pending"]
    status: Literal["posted", "pending", "voided", "expired"]
    debit_account: str
    credit_account: str
    amount: int
    currency: str
    code: str
    pending: bool
    pending_id: str | None
    posted_amount: int | None
    timeout_seconds: int | None
    timeout_at: datetime | None
    batch_id: str | None
    metadata: dict[str, str | int | bool | None] | None
    created_at: datetime

    @classmethod
    def of(cls, t: TransferView) -> TransferRead:
        return cls(
            id=t.client_id,
            kind=t.kind,  # type: ignore[arg-type]
            status=t.status,  # type: ignore[arg-type]
            debit_account=t.debit_account_id,
            credit_account=t.credit_account_id,
            amount=t.amount,
            currency=t.currency,
            code=t.code,
            pending=t.kind == "pending",
            pending_id=t.pending_client_id,
            posted_amount=t.posted_amount,
            timeout_seconds=t.timeout_seconds,
            timeout_at=t.timeout_at,
            batch_id=t.batch_id,
            metadata=t.metadata,
            created_at=t.created_at,
        )


class TransferList(BaseModel):
    data: list[TransferRead]
    has_more: bool


class TransferBatchRead(BaseModel):
    data: list[TransferRead]


class EntryRead(BaseModel):
    id: str
    transfer: str
    kind: str
    side: Literal["debit", "credit"]
    posted_delta: int
    pending_delta: int
    currency: str
    created_at: datetime

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> EntryRead:
        """From a row of ``ledger.list_entries``."""
        return cls(
            id=str(r["id"]),
            transfer=r["transfer"],
            kind=r["kind"],
            side="debit" if r["side"] == "D" else "credit",
            posted_delta=r["posted_delta"],
            pending_delta=r["pending_delta"],
            currency=r["currency"],
            created_at=utc(r["created_at"]),
        )


class EntryList(BaseModel):
    data: list[EntryRead]
    has_more: bool
