"""Sharing tables: groups, members, expenses (with their history), comments, settlements and
the activity feed. Balances are not stored here: they live in the ledger's ``iou`` book."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from potluck.db import Base, BigInt, JSONType, Money64


class SharingGroup(Base):
    """A group of people sharing expenses in one currency; ``kind`` is ``group`` or
    ``direct`` (the implicit two-person group behind an expense outside any group)."""

    __tablename__ = "sharing_groups"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # direct groups only: "<email>|<email>|<currency>" (emails sorted), one group per pair.
    direct_key: Mapped[str | None] = mapped_column(String(600), nullable=True, unique=True)
    # The group's clearing side in the iou book: expenses are posted against it.
    expenses_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SharingMember(Base):
    """A place in a group, by email; ``user_id`` is set once that person has registered."""

    __tablename__ = "sharing_members"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_groups.id"), nullable=False
    )
    user_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("users.id"), nullable=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("group_id", "email", name="uq_sharing_members_group_email"),
        Index("ix_sharing_members_user_id", "user_id"),
        Index("ix_sharing_members_email", "email"),
    )


class Expense(Base):
    """The current version of an expense; every version is in ``expense_history``."""

    __tablename__ = "sharing_expenses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_groups.id"), nullable=False
    )
    version: Mapped[int] = mapped_column(BigInt, nullable=False)
    # The version whose transfers are in the ledger now (None while deleted).
    posted_version: Mapped[int | None] = mapped_column(BigInt, nullable=True)
    description: Mapped[str] = mapped_column(String(500), nullable=False)
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    date: Mapped[date] = mapped_column(Date, nullable=False)
    category: Mapped[str] = mapped_column(String(64), nullable=False)
    notes: Mapped[str] = mapped_column(Text, nullable=False)
    paid_by: Mapped[Any] = mapped_column(JSONType, nullable=False)  # [[member_id, amount]]
    split: Mapped[Any] = mapped_column(JSONType, nullable=False)  # the request's split
    owed: Mapped[Any] = mapped_column(JSONType, nullable=False)  # [[member_id, amount]]
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Another currency than the group's: what was entered, and the exact rate (a decimal
    # string, 1 original unit = rate group units); ``amount``/``paid_by``/``owed`` are converted.
    original_amount: Mapped[int | None] = mapped_column(Money64, nullable=True)
    original_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    fx_rate: Mapped[str | None] = mapped_column(String(40), nullable=True)
    original_paid_by: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    # Recurring: the series' first expense id (on every occurrence and on the first itself);
    # ``repeat`` is set on the first expense while the series runs.
    series_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    repeat: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (
        Index("ix_sharing_expenses_group_id_id", "group_id", "id"),
        Index("ix_sharing_expenses_series_id", "series_id"),
    )


class FxRate(Base):
    """An exchange rate for a day: 1 ``base`` = ``rate`` ``quote`` (an exact decimal string)."""

    __tablename__ = "sharing_fx_rates"

    date: Mapped[date] = mapped_column(Date, primary_key=True)
    base: Mapped[str] = mapped_column(String(3), primary_key=True)
    quote: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate: Mapped[str] = mapped_column(String(40), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_sharing_fx_rates_pair_date", "base", "quote", "date"),)


class Recurrence(Base):
    """The schedule of a recurring expense; the key is the series' first expense.

    Occurrence ``seq`` (1, 2, …) falls on ``anchor_date`` + ``seq`` periods (month ends
    clamped); ``generation`` changes when ``repeat`` changes, so older timers are ignored.
    """

    __tablename__ = "sharing_recurrences"

    expense_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_expenses.id"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_groups.id"), nullable=False
    )
    repeat: Mapped[str] = mapped_column(String(16), nullable=False)
    anchor_date: Mapped[date] = mapped_column(Date, nullable=False)
    generation: Mapped[int] = mapped_column(BigInt, nullable=False)
    seq: Mapped[int] = mapped_column(BigInt, nullable=False)  # the next occurrence
    next_date: Mapped[date] = mapped_column(Date, nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExpenseVersion(Base):
    """One change of an expense: what it looked like after ``action``."""

    __tablename__ = "sharing_expense_history"

    expense_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_expenses.id"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInt, primary_key=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    snapshot: Mapped[Any] = mapped_column(JSONType, nullable=False)
    user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExpenseComment(Base):
    __tablename__ = "sharing_comments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    expense_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_expenses.id"), nullable=False
    )
    member_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_members.id"), nullable=False
    )
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_sharing_comments_expense_id_id", "expense_id", "id"),)


class Settlement(Base):
    """A payment between two members (``from_member_id`` paid ``to_member_id``)."""

    __tablename__ = "sharing_settlements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_groups.id"), nullable=False
    )
    from_member_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_members.id"), nullable=False
    )
    to_member_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_members.id"), nullable=False
    )
    amount: Mapped[int] = mapped_column(Money64, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_sharing_settlements_group_id_id", "group_id", "id"),)


class Activity(Base):
    """One line of a group's activity feed (ids are time ordered: newest = largest)."""

    __tablename__ = "sharing_activity"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sharing_groups.id"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    actor_member_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    data: Mapped[Any] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_sharing_activity_group_id_id", "group_id", "id"),)
