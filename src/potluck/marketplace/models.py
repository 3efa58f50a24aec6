"""Marketplace tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base


class Party(Base):
    """Someone a platform pays: a merchant, a partner (courier, affiliate) or the platform."""

    __tablename__ = "parties"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # merchant|partner|platform
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # The party's wallet in the platform's money book (no overdraft).
    wallet_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_parties_platform_id_id", "platform_id", "id"),)
