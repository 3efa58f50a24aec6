"""Tables of risk: every scoring decision (with its reasons and the payment's outcome), the
review queue, and the blocklist."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, JSONType, Money64


class RiskDecision(Base):
    """One scored payment: its inputs, score, action and reasons, then what happened to it
    (``outcome``, set by ``record_outcome``). The payer's own decisions are the history the
    rules read, so the indexes serve those reads: by payer and time, by payer and recipient
    (paid this recipient before?), and by recipient and time (money received lately)."""

    __tablename__ = "risk_decisions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), nullable=False)  # the wallet transfer
    payer_user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    recipient: Mapped[str] = mapped_column(String(80), nullable=False)  # user:<id>|party:<id>
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    device_id: Mapped[str | None] = mapped_column(String(128))
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[str] = mapped_column(String(8), nullable=False)  # allow|review|block
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    # completed|failed|blocked|in_review|rejected; None until the caller records it
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_risk_decisions_payer_created", "payer_user_id", "created_at"),
        Index("ix_risk_decisions_payer_recipient", "payer_user_id", "recipient"),
        Index("ix_risk_decisions_recipient_created", "recipient", "created_at"),
        Index("ix_risk_decisions_subject_id", "subject_id"),
        Index("ix_risk_decisions_created_at", "created_at"),  # analytics: counts per range
    )


class RiskReview(Base):
    """A decision an administrator must approve or reject; resolved once, never again."""

    __tablename__ = "risk_reviews"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    decision_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("risk_decisions.id"), nullable=False, unique=True
    )
    subject_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # pending, approved, rejected, or closed (the payment failed before review)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reviewer_id: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_risk_reviews_status_id", "status", "id"),)


class BlocklistEntry(Base):
    """A user id, device id or email address whose payments are blocked outright."""

    __tablename__ = "risk_blocklist"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # user|device|email
    value: Mapped[str] = mapped_column(String(320), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (UniqueConstraint("kind", "value", name="uq_risk_blocklist_kind_value"),)
