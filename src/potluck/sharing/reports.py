"""Group reports: spending by category, by member, or by month, in the group currency.

Only expenses that are not deleted count (converted expenses at their converted amount);
settlements are not spending. ``by=member`` gives per member what they paid, their share and
net = paid − share (Σpaid = Σshare = total, Σnet = 0), and the settle-ups they paid and
received, apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.sharing.groups import membership
from potluck.sharing.models import Expense, Settlement, SharingMember

REPORTS = ("category", "member", "month")


@dataclass(frozen=True, slots=True)
class ReportRowView:
    key: str
    amount: int
    count: int
    name: str | None = None
    paid: int | None = None
    share: int | None = None
    net: int | None = None
    settlements_paid: int | None = None
    settlements_received: int | None = None


@dataclass(frozen=True, slots=True)
class ReportView:
    by: str
    currency: str
    rows: list[ReportRowView]
    total: int


def group_report(session: Session, group_id: str, *, user_id: str, by: str) -> ReportView:
    """404 for a non-member; 422 ``invalid_report`` for an unknown ``by``."""
    group, _ = membership(session, group_id, user_id=user_id)
    if by not in REPORTS:
        raise DomainError("invalid_report", f"by must be one of {', '.join(REPORTS)}", field="by")
    expenses = session.execute(
        select(Expense.amount, Expense.category, Expense.date, Expense.paid_by, Expense.owed)
        .where(Expense.group_id == group.id, Expense.deleted_at.is_(None))
        .order_by(Expense.id)
    ).all()
    total = sum(int(e.amount) for e in expenses)
    if by in ("category", "month"):
        sums: dict[str, int] = defaultdict(int)
        counts: dict[str, int] = defaultdict(int)
        for e in expenses:
            key = e.category if by == "category" else e.date.strftime("%Y-%m")
            sums[key] += int(e.amount)
            counts[key] += 1
        keys = sorted(sums, key=lambda k: (-sums[k], k)) if by == "category" else sorted(sums)
        rows = [ReportRowView(k, sums[k], counts[k]) for k in keys]
        return ReportView(by, group.currency, rows, total)
    paid: dict[str, int] = defaultdict(int)
    share: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for e in expenses:
        involved: set[str] = set()
        for m, a in e.paid_by:
            paid[str(m)] += int(a)
            involved.add(str(m))
        for m, a in e.owed:
            share[str(m)] += int(a)
            involved.add(str(m))
        for m in involved:
            count[m] += 1
    sent: dict[str, int] = defaultdict(int)
    received: dict[str, int] = defaultdict(int)
    for from_id, to_id, amount in session.execute(
        select(Settlement.from_member_id, Settlement.to_member_id, Settlement.amount).where(
            Settlement.group_id == group.id
        )
    ):
        sent[from_id] += int(amount)
        received[to_id] += int(amount)
    members = session.execute(
        select(SharingMember.id, SharingMember.name, SharingMember.removed_at)
        .where(SharingMember.group_id == group.id)
        .order_by(SharingMember.created_at, SharingMember.id)
    ).all()
    rows = [
        ReportRowView(
            key=m.id,
            amount=share[m.id],
            count=count[m.id],
            name=m.name,
            paid=paid[m.id],
            share=share[m.id],
            net=paid[m.id] - share[m.id],
            settlements_paid=sent[m.id],
            settlements_received=received[m.id],
        )
        for m in members
        if m.removed_at is None or paid[m.id] or share[m.id] or sent[m.id] or received[m.id]
    ]
    return ReportView(by, group.currency, rows, total)
