"""Payout tables: bank accounts, payouts, their history, and the simulated bank's own book."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, Money64


class BankAccount(Base):
    """Where a party's payouts go. The number is kept (it is needed to pay) but only ever
    shown masked."""

    __tablename__ = "bank_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    party_id: Mapped[str] = mapped_column(String(40), ForeignKey("parties.id"), nullable=False)
    holder_name: Mapped[str] = mapped_column(String(140), nullable=False)
    routing_type: Mapped[str] = mapped_column(String(16), nullable=False)  # ifsc|iban|sort_code
    routing_value: Mapped[str | None] = mapped_column(String(16))  # IFSC, sort code or BIC
    account_number: Mapped[str] = mapped_column(String(34), nullable=False)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_bank_accounts_party_id_id", "party_id", "id"),)


class Payout(Base):
    """A wallet-to-bank payout: a hold on the wallet until the bank answers.

    The worker's bookkeeping: ``next_attempt_at`` (when it is due: to be sent, re-sent, or
    asked about), ``locked_until``/``claim_id`` (the lease of the worker talking to the bank;
    a worker only records an outcome under its own claim), ``check_status`` (ask the bank what
    happened before sending again: set by recovery).
    """

    __tablename__ = "payouts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), ForeignKey("platforms.id"), nullable=False)
    party_id: Mapped[str] = mapped_column(String(40), ForeignKey("parties.id"), nullable=False)
    bank_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("bank_accounts.id"), nullable=False
    )
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    hold_id: Mapped[str] = mapped_column(String(64), nullable=False)  # ledger client id
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim_id: Mapped[str | None] = mapped_column(String(40))
    check_status: Mapped[bool] = mapped_column(nullable=False, default=False)
    bank_reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_payouts_platform_id_id", "platform_id", "id"),
        Index("ix_payouts_party_id_id", "party_id", "id"),
        Index("ix_payouts_status_next_attempt_at", "status", "next_attempt_at"),
    )


class PayoutTransition(Base):
    """One entry of a payout's history: the status it entered, when and why."""

    __tablename__ = "payout_transitions"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    payout_id: Mapped[str] = mapped_column(String(40), ForeignKey("payouts.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_payout_transitions_payout_id_id", "payout_id", "id"),)


class SimulatedBankPayment(Base):
    """The simulated bank's memory: one row per payout id it accepted (paid or declined).

    Kept in the database so that it survives restarts and is shared by every worker process,
    like a real bank's; the primary key is what makes a second ``send`` not a second payment.
    """

    __tablename__ = "bank_sim_payments"

    payout_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # completed|failed
    code: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(64), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)  # the attempt it arrived with
    sends: Mapped[int] = mapped_column(Integer, nullable=False)  # sends received for this id
    paid: Mapped[int] = mapped_column(Integer, nullable=False)  # times money left: 0 or 1
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
