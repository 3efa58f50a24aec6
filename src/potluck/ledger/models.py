"""Ledger tables: accounts with running totals, transfers, append-only entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, JSONType, Money64


class Account(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # A ledger is a book plus a currency; transfers never cross ledgers.
    book: Mapped[str] = mapped_column(String(64), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    # Who may see the account through the API: "platform:<id>", "user:<id>" or "system".
    scope: Mapped[str] = mapped_column(String(64), nullable=False, default="system")
    owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    debits_posted: Mapped[int] = mapped_column(Money64, default=0, nullable=False)
    credits_posted: Mapped[int] = mapped_column(Money64, default=0, nullable=False)
    debits_pending: Mapped[int] = mapped_column(Money64, default=0, nullable=False)
    credits_pending: Mapped[int] = mapped_column(Money64, default=0, nullable=False)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name="one_balance_flag",
        ),
        Index("ix_ledger_accounts_scope_id", "scope", "id"),
        Index("ix_ledger_accounts_owner", "owner"),
    )


class Transfer(Base):
    __tablename__ = "ledger_transfers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Client ids are unique per scope (a platform's ids never collide with another's).
    scope: Mapped[str] = mapped_column(String(64), nullable=False)
    client_id: Mapped[str] = mapped_column(String(128), nullable=False)
    # posted | pending | post_pending | void_pending | expire_pending
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # posted | pending | voided | expired  (only a pending transfer's status ever changes)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    debit_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )
    credit_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    book: Mapped[str] = mapped_column(String(64), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False, default="transfer")
    pending_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("ledger_transfers.id"), nullable=True
    )
    # For a pending transfer: how much was posted in the end (None until resolved).
    posted_amount: Mapped[int | None] = mapped_column(Money64, nullable=True)
    timeout_seconds: Mapped[int | None] = mapped_column(BigInt, nullable=True)
    timeout_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("scope", "client_id", name="uq_ledger_transfers_scope_client_id"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("debit_account_id <> credit_account_id", name="not_self"),
        # Partial indexes: only holds still pending, only post/void rows, are indexed, so
        # the hot path (posted transfers) does not pay for them.
        Index(
            "ix_ledger_transfers_pending_timeout",
            "timeout_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_ledger_transfers_pending_id",
            "pending_id",
            postgresql_where=text("pending_id IS NOT NULL"),
            sqlite_where=text("pending_id IS NOT NULL"),
        ),
        # GET /v1/transfers: a platform's transfers in id order, all of them or one account's.
        Index("ix_ledger_transfers_scope_id", "scope", "id"),
    )


class Entry(Base):
    """One side of a transfer, as the changes it made to one account's running totals.

    Append-only: rows are inserted with their transfer and never updated or deleted.
    Every transfer writes exactly two entries, a debit ('D') and a credit ('C').
    """

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_transfers.id"), nullable=False
    )
    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )
    side: Mapped[str] = mapped_column(String(1), nullable=False)
    posted_delta: Mapped[int] = mapped_column(Money64, nullable=False)
    pending_delta: Mapped[int] = mapped_column(Money64, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint("side IN ('D', 'C')", name="side"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
        Index("ix_ledger_entries_transfer_id", "transfer_id"),
    )
