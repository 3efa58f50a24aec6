"""Marketplace API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, CurrencyCode
from potluck.ledger.service import AccountView
from potluck.marketplace.service import (
    AllocationView,
    OrderView,
    PartyView,
    RefundView,
    RuleSetView,
    SplitCreditView,
)
from potluck.splits import MAX_RULES, SplitRule, SplitRules


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


PartyId = Annotated[str, StringConstraints(min_length=1, max_length=40)]
# The platform's own order id: 1–64 printable ASCII characters, no spaces.
PlatformOrderId = Annotated[
    str,
    StringConstraints(pattern=r"^[!-~]{1,64}$"),
    Field(description="Your own order id: 1–64 printable characters.", examples=["A-1001"]),
]


class Balance(BaseModel):
    total: int
    available: int
    held: int


class BalanceRead(Balance):
    currency: str


class PartyCreate(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    kind: Literal["merchant", "partner", "platform"]
    currency: CurrencyCode


class PartyRead(BaseModel):
    id: str
    name: str
    kind: str
    currency: str
    wallet_account: str
    balance: Balance
    created_at: datetime

    @classmethod
    def of(cls, p: PartyView, wallet: AccountView) -> PartyRead:
        return cls(
            id=p.id,
            name=p.name,
            kind=p.kind,
            currency=p.currency,
            wallet_account=p.wallet_account_id,
            balance=Balance(total=wallet.total, available=wallet.available, held=wallet.held),
            created_at=p.created_at,
        )


class PartyList(BaseModel):
    data: list[PartyRead]
    has_more: bool


class RuleIn(Strict):
    party: PartyId
    type: Literal["percent", "fixed"]
    value: Annotated[
        int,
        Field(
            strict=True,
            gt=0,
            le=10**15,
            description="Basis points for percent (1250 = 12.5 %), minor units for fixed.",
        ),
    ]


class SplitIn(Strict):
    rules: list[RuleIn] = Field(min_length=1, max_length=MAX_RULES)
    remainder_to: PartyId = Field(description="The party that gets whatever is left.")

    def to_rules(self) -> SplitRules:
        return SplitRules(
            rules=tuple(SplitRule(r.party, r.type, r.value) for r in self.rules),
            remainder_to=self.remainder_to,
        )


class SplitRulesPut(SplitIn):
    currency: CurrencyCode


class RuleRead(BaseModel):
    party: str
    type: Literal["percent", "fixed"]
    value: int


class SplitRead(BaseModel):
    rules: list[RuleRead]
    remainder_to: str

    @classmethod
    def of(cls, s: SplitRules) -> SplitRead:
        return cls(
            rules=[RuleRead(party=r.party, type=r.type, value=r.value) for r in s.rules],
            remainder_to=s.remainder_to,
        )


class SplitRulesRead(BaseModel):
    # Not a SplitRead subclass: its fields would come first, and every resource starts with id.
    id: str
    currency: str
    version: int
    rules: list[RuleRead]
    remainder_to: str
    created_at: datetime

    @classmethod
    def of_version(cls, v: RuleSetView) -> SplitRulesRead:
        split = SplitRead.of(v.split)
        return cls(
            id=v.id,
            currency=v.currency,
            version=v.version,
            rules=split.rules,
            remainder_to=split.remainder_to,
            created_at=v.created_at,
        )


class OrderCreate(Strict):
    order_id: PlatformOrderId
    amount: Amount
    currency: CurrencyCode
    split: SplitIn | None = Field(
        default=None, description="This order's own split; default: your current split rules."
    )


class AllocationRead(BaseModel):
    id: str
    party: str
    amount: int
    currency: str
    status: Literal["requested", "applied"]
    refunded_amount: int
    applied_at: datetime | None

    @classmethod
    def of(cls, a: AllocationView) -> AllocationRead:
        return cls(
            id=a.id,
            party=a.party_id,
            amount=a.amount,
            currency=a.currency,
            status=a.status,  # type: ignore[arg-type]
            refunded_amount=a.refunded_amount,
            applied_at=a.applied_at,
        )


class RefundPart(BaseModel):
    party: str
    amount: int


class RefundCreate(Strict):
    amount: Amount


class RefundRead(BaseModel):
    id: str
    order: str
    amount: int
    currency: str
    parts: list[RefundPart]
    created_at: datetime

    @classmethod
    def of(cls, r: RefundView) -> RefundRead:
        return cls(
            id=r.id,
            order=r.order,
            amount=r.amount,
            currency=r.currency,
            parts=[RefundPart(party=p["party"], amount=p["amount"]) for p in r.parts],
            created_at=r.created_at,
        )


class OrderRead(BaseModel):
    id: str
    order_id: str
    amount: int
    currency: str
    split_status: Literal["pending", "completed"]
    rules_version: int | Literal["custom"] = Field(
        description="The split-rules version used, or 'custom' for the order's own split."
    )
    split: SplitRead
    allocations: list[AllocationRead]
    refunded_amount: int
    refunds: list[RefundRead]
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, o: OrderView) -> OrderRead:
        return cls(
            id=o.id,
            order_id=o.order_id,
            amount=o.amount,
            currency=o.currency,
            split_status=o.split_status,  # type: ignore[arg-type]
            rules_version=o.rules_version if o.rules_version is not None else "custom",
            split=SplitRead.of(o.split),
            allocations=[AllocationRead.of(a) for a in o.allocations],
            refunded_amount=o.refunded_amount,
            refunds=[RefundRead.of(r) for r in o.refunds],
            created_at=o.created_at,
            completed_at=o.completed_at,
        )


class OrderList(BaseModel):
    data: list[OrderRead]
    has_more: bool


class SplitCreditRead(BaseModel):
    id: str
    order: str
    order_id: str
    allocation: str
    party: str
    amount: int
    currency: str
    transfer: str
    created_at: datetime

    @classmethod
    def of(cls, c: SplitCreditView) -> SplitCreditRead:
        return cls(
            id=c.id,
            order=c.order,
            order_id=c.order_id,
            allocation=c.allocation_id,
            party=c.party_id,
            amount=c.amount,
            currency=c.currency,
            transfer=c.transfer_id,
            created_at=c.created_at,
        )


class SplitCreditList(BaseModel):
    data: list[SplitCreditRead]
    has_more: bool
