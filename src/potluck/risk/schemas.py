"""Risk API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.risk.service import BlocklistView, DecisionView, ReviewView

ReviewStatus = Literal["pending", "approved", "rejected", "closed"]
BlocklistKind = Literal["user", "device", "email"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonRead(BaseModel):
    rule: str
    points: int
    detail: str


class DecisionRead(BaseModel):
    id: str
    subject_id: str = Field(description="The scored wallet transfer.")
    payer_user_id: str
    recipient: str = Field(description='"user:<id>" or "party:<id>".')
    amount: int
    currency: str
    device_id: str | None
    score: int = Field(description="0..100: the sum of the reasons' points, capped.")
    action: Literal["allow", "review", "block"]
    reasons: list[ReasonRead]
    outcome: str | None = Field(
        description="What happened to the payment: completed, failed, blocked, in_review, "
        "rejected (null until recorded)."
    )
    created_at: datetime

    @classmethod
    def of(cls, d: DecisionView) -> DecisionRead:
        return cls(
            id=d.id,
            subject_id=d.subject_id,
            payer_user_id=d.payer_user_id,
            recipient=d.recipient,
            amount=d.amount,
            currency=d.currency,
            device_id=d.device_id,
            score=d.score,
            action=d.action,  # type: ignore[arg-type]
            reasons=[ReasonRead(**_reason(r)) for r in d.reasons],
            outcome=d.outcome,
            created_at=d.created_at,
        )


def _reason(r: dict[str, Any]) -> dict[str, Any]:
    return {"rule": r["rule"], "points": r["points"], "detail": r["detail"]}


class DecisionList(BaseModel):
    data: list[DecisionRead]
    has_more: bool


class ReviewRead(BaseModel):
    id: str
    decision_id: str
    subject_id: str = Field(description="The held wallet transfer.")
    status: ReviewStatus
    reviewer_id: str | None
    note: str | None
    created_at: datetime
    resolved_at: datetime | None
    score: int
    reasons: list[ReasonRead]
    decision: DecisionRead

    @classmethod
    def of(cls, r: ReviewView) -> ReviewRead:
        decision = DecisionRead.of(r.decision)
        return cls(
            id=r.id,
            decision_id=r.decision_id,
            subject_id=r.subject_id,
            status=r.status,  # type: ignore[arg-type]
            reviewer_id=r.reviewer_id,
            note=r.note,
            created_at=r.created_at,
            resolved_at=r.resolved_at,
            score=decision.score,
            reasons=decision.reasons,
            decision=decision,
        )


class ReviewList(BaseModel):
    data: list[ReviewRead]
    has_more: bool


class ReviewResolve(Strict):
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class BlocklistCreate(Strict):
    kind: BlocklistKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)] = Field(
        description="A user id (usr_…), a device id, or an email address."
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class BlocklistRead(BaseModel):
    id: str
    kind: BlocklistKind
    value: str
    reason: str
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, b: BlocklistView) -> BlocklistRead:
        return cls(
            id=b.id,
            kind=b.kind,  # type: ignore[arg-type]
            value=b.value,
            reason=b.reason,
            created_by=b.created_by,
            created_at=b.created_at,
        )


class BlocklistList(BaseModel):
    data: list[BlocklistRead]
    has_more: bool
