"""Tables of merchant settlement: one report per merchant, day and currency."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, Money64


class MerchantSettlement(Base):
    """What the daily sweep did for one merchant party on one day.

    The unique key (party, day, currency) is what makes a rerun, or a second timer, a no-op:
    the row is inserted before the payout is created, in the same transaction, so a second
    run for the same day waits for the first and then finds its report.
    """

    __tablename__ = "merchant_settlements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    party_id: Mapped[str] = mapped_column(String(40), ForeignKey("parties.id"), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    opening_available: Mapped[int] = mapped_column(Money64, nullable=False)
    credits_received: Mapped[int] = mapped_column(Money64, nullable=False)
    amount_swept: Mapped[int] = mapped_column(Money64, nullable=False)
    payout_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("payouts.id"))
    bank_account_id: Mapped[str | None] = mapped_column(String(40))
    # paid_out | nothing_to_settle | no_bank_account | failed
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    # Also the index of a party's reports by day (GET /v1/parties/{id}/settlements).
    __table_args__ = (UniqueConstraint("party_id", "day", "currency"),)
