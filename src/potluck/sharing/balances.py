"""Balances (read from the ledger only), settle-up, settlements, friends, the activity feed
and expenses between two people outside any group.

Settle-up with ``simplify`` is ``simplify_debts`` of the ledger balances (minimal number of
payments for up to 15 non-zero balances, at most n−1 beyond). Without it, the pairwise net
debts: for each expense, each person who owes pays each payer in proportion to what that
payer paid (largest remainder over what each payer still has to get back, so that both
margins are exact and net balances are preserved), minus the settlements recorded between
them; each pair is then netted.

A settlement ``from`` → ``to`` is one ledger transfer from ``to``'s account to ``from``'s: the
payer's balance rises, the receiver's falls.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus import publish
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.money import allocate
from potluck.sharing.expenses import ExpenseView, create_expense
from potluck.sharing.groups import (
    MAX_MEMBERS,
    MemberView,
    check_emails,
    create_group,
    group_scope,
    lock_group,
    member_view,
    membership,
    record_activity,
    user_email,
)
from potluck.sharing.models import Activity, Expense, Settlement, SharingGroup, SharingMember
from potluck.sharing.simplify import Payment, pairwise_payments, simplify_debts
from potluck.splits.expense import ExpenseSplit

SETTLEMENT_METHODS = ("cash", "bank", "other")
# Paid with real money: recorded only by the wallet payment's completion (wallet_settlement.py).
WALLET_METHOD = "wallet"


@dataclass(frozen=True, slots=True)
class MemberBalance:
    member: MemberView
    balance: int  # positive = is owed


@dataclass(frozen=True, slots=True)
class SettlementView:
    id: str
    group_id: str
    from_member_id: str
    to_member_id: str
    amount: int
    currency: str
    method: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityView:
    id: str
    group_id: str
    type: str
    actor_member_id: str | None
    subject_id: str | None
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FriendBalance:
    user_id: str | None
    email: str
    name: str
    balances: dict[str, int]  # currency → amount; positive = the friend owes the caller


def _all_members(s: Session, group_id: str) -> list[SharingMember]:
    return list(
        s.execute(
            select(SharingMember)
            .where(SharingMember.group_id == group_id)
            .order_by(SharingMember.id)
        )
        .scalars()
        .all()
    )


def balances_of(s: Session, group_id: str) -> list[MemberBalance]:
    """Every member's balance from the ledger (removed members have zero and are left out)."""
    # one query: every account of the group is in its scope (members + iou_expenses)
    accounts, _ = ledger.list_accounts(s, scope=group_scope(group_id), limit=10 * MAX_MEMBERS)
    totals = {a.id: a.total for a in accounts}
    out = []
    for m in _all_members(s, group_id):
        total = totals[m.account_id]
        if m.removed_at is None or total != 0:
            out.append(MemberBalance(member_view(m), total))
    return out


def group_balances(session: Session, group_id: str, *, user_id: str) -> list[MemberBalance]:
    membership(session, group_id, user_id=user_id)
    return balances_of(session, group_id)


def _gross_debts(s: Session, group_id: str) -> dict[tuple[str, str], int]:
    """debts[(a, b)] = what a owes b, gross, from the expenses and settlements."""
    debts: dict[tuple[str, str], int] = defaultdict(int)
    rows = s.execute(
        select(Expense.paid_by, Expense.owed)
        .where(Expense.group_id == group_id, Expense.deleted_at.is_(None))
        .order_by(Expense.id)
    ).all()
    for paid_by, owed in rows:
        payers = [str(m) for m, _ in paid_by]
        # Each debtor's share is spread over the payers in proportion to what each payer
        # still has to get back: every payer gets exactly what they paid and every debtor
        # pays exactly their share, so net balances are preserved to the minor unit.
        remaining = [int(a) for _, a in paid_by]
        for debtor, amount in owed:
            parts = allocate(int(amount), remaining)
            for i, part in enumerate(parts):
                remaining[i] -= part
                if payers[i] != debtor and part:
                    debts[(str(debtor), payers[i])] += part
    for frm, to, amount in s.execute(
        select(Settlement.from_member_id, Settlement.to_member_id, Settlement.amount).where(
            Settlement.group_id == group_id
        )
    ).all():
        debts[(to, frm)] += int(amount)  # from paid to: to now owes from that much back
    return debts


def settle_up(
    session: Session, group_id: str, *, user_id: str, simplify: bool = True
) -> list[Payment]:
    membership(session, group_id, user_id=user_id)
    if simplify:
        return simplify_debts(
            {b.member.id: b.balance for b in balances_of(session, group_id) if b.balance}
        )
    return pairwise_payments(_gross_debts(session, group_id))


def _settlement_view(st: Settlement) -> SettlementView:
    return SettlementView(
        st.id,
        st.group_id,
        st.from_member_id,
        st.to_member_id,
        st.amount,
        st.currency,
        st.method,
        st.created_by,
        utc(st.created_at),
    )


def record_settlement(
    session: Session,
    *,
    user_id: str,
    group_id: str,
    from_member_id: str,
    to_member_id: str,
    amount: int,
    method: str = "cash",
    now: datetime,
    wallet_transfer_id: str | None = None,
    settlement_id: str | None = None,
) -> SettlementView:
    """Record that ``from`` paid ``to``: one IOU-book transfer. ``method="wallet"`` only with
    the ``wallet_transfer_id`` that moved the money (in the same transaction)."""
    group, me = membership(session, group_id, user_id=user_id)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise DomainError(
            "validation_error", "amount must be a positive integer of minor units", field="amount"
        )
    if amount > ledger.MAX_AMOUNT:
        raise DomainError("validation_error", "amount is too large", field="amount")
    if method not in SETTLEMENT_METHODS and not (
        method == WALLET_METHOD and wallet_transfer_id is not None
    ):
        raise DomainError(
            "validation_error", f"method must be one of {SETTLEMENT_METHODS}", field="method"
        )
    if from_member_id == to_member_id:
        raise DomainError("same_member", "a member cannot pay themselves", field="to")
    if session.get_bind().dialect.name == "postgresql":
        # as for an expense: the group row, before the members are read, so that a
        # concurrent removal waits for us or we see it (groups.lock_group)
        lock_group(session, group.id)
    members = {
        m.id: m
        for m in session.execute(
            select(SharingMember)
            .where(
                SharingMember.id.in_([from_member_id, to_member_id]),
                SharingMember.group_id == group.id,
                SharingMember.removed_at.is_(None),
            )
            .order_by(SharingMember.id)
        ).scalars()
    }
    for field, mid in (("from", from_member_id), ("to", to_member_id)):
        if mid not in members:
            raise DomainError("unknown_member", f"{mid} is not a member of this group", field=field)
    st = Settlement(
        id=settlement_id or new_id("stl"),
        group_id=group.id,
        from_member_id=from_member_id,
        to_member_id=to_member_id,
        amount=amount,
        currency=group.currency,
        method=method,
        created_by=user_id,
        created_at=now,
    )
    session.add(st)
    session.flush()
    ledger.create_transfer(
        session,
        ledger.NewTransfer(
            members[to_member_id].account_id,
            members[from_member_id].account_id,
            amount,
            client_id=st.id,
            currency=group.currency,
            code="iou_settlement",
        ),
        now=now,
        scope=group_scope(group.id),
    )
    record_activity(
        session,
        group_id=group.id,
        type="settlement.recorded",
        actor=me.id,
        subject=st.id,
        data={
            "from": from_member_id,
            "to": to_member_id,
            "amount": amount,
            "currency": group.currency,
            "method": method,
            **({"wallet_transfer_id": wallet_transfer_id} if wallet_transfer_id else {}),
        },
        now=now,
    )
    publish(
        session,
        "settlement.recorded",
        {
            "platform_id": None,
            "group_id": group.id,
            "settlement_id": st.id,
            "from_member_id": from_member_id,
            "to_member_id": to_member_id,
            "amount": amount,
            "currency": group.currency,
            "method": method,
            "wallet_transfer_id": wallet_transfer_id,
        },
        now=now,
    )
    return _settlement_view(st)


def list_activity(
    session: Session,
    group_id: str,
    *,
    user_id: str,
    limit: int,
    starting_after: str | None = None,
) -> tuple[list[ActivityView], bool]:
    """The group's activity, newest first."""
    membership(session, group_id, user_id=user_id)
    query = select(Activity).where(Activity.group_id == group_id)
    if starting_after is not None:
        if (
            session.scalar(
                select(Activity.id).where(
                    Activity.id == starting_after, Activity.group_id == group_id
                )
            )
            is None
        ):
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no activity {starting_after} in this group",
                field="starting_after",
            )
        query = query.where(Activity.id < starting_after)
    rows = session.execute(query.order_by(Activity.id.desc()).limit(limit + 1)).scalars().all()
    views = [
        ActivityView(
            a.id,
            a.group_id,
            a.type,
            a.actor_member_id,
            a.subject_id,
            dict(a.data),
            utc(a.created_at),
        )
        for a in rows[:limit]
    ]
    return views, len(rows) > limit


def friends(session: Session, *, user_id: str) -> list[FriendBalance]:
    """For each person the caller shares a group with: the net across groups, per currency
    (positive = the friend owes the caller), from each group's pairwise net debts."""
    mine = session.execute(
        select(SharingMember.group_id, SharingMember.id, SharingGroup.currency)
        .join(SharingGroup, SharingGroup.id == SharingMember.group_id)
        .where(SharingMember.user_id == user_id, SharingMember.removed_at.is_(None))
    ).all()
    found: dict[str, FriendBalance] = {}
    for group_id, my_id, currency in mine:
        members = {m.id: m for m in _all_members(session, group_id)}
        for m in members.values():
            if m.id == my_id or m.removed_at is not None or m.user_id == user_id:
                continue
            key = m.user_id or m.email
            if key not in found:
                found[key] = FriendBalance(m.user_id, m.email, m.name, {})
            found[key].balances.setdefault(currency, 0)
        for p in pairwise_payments(_gross_debts(session, group_id)):
            if my_id not in (p.from_id, p.to_id):
                continue
            other = members[p.to_id if p.from_id == my_id else p.from_id]
            key = other.user_id or other.email
            if key not in found:
                found[key] = FriendBalance(other.user_id, other.email, other.name, {})
            sign = 1 if p.to_id == my_id else -1
            found[key].balances[currency] = found[key].balances.get(currency, 0) + sign * p.amount
    return sorted(found.values(), key=lambda f: (f.name.lower(), f.email))


def create_direct_expense(
    session: Session,
    *,
    user_id: str,
    with_email: str,
    description: str,
    amount: int,
    currency: str,
    date: date | None = None,
    category: str | None = None,
    notes: str = "",
    paid_by: list[tuple[str, int]] | None = None,
    split: ExpenseSplit | None = None,
    now: datetime,
) -> tuple[str, ExpenseView]:
    """An expense between the caller and one other person, outside any group: it goes to
    their implicit two-person group (``kind: direct``, one per pair and currency), created on
    first use. In ``paid_by`` and the split, a person may be named by email (the member ids
    of that group are not known before it exists). Returns (group id, expense)."""
    (other,) = check_emails([with_email], field="with")
    my_email = user_email(session, user_id)
    if other == my_email:
        raise DomainError(
            "validation_error", "an expense with yourself is not shared", field="with"
        )
    key = "|".join([*sorted([my_email, other]), currency])
    group = session.scalar(select(SharingGroup).where(SharingGroup.direct_key == key))
    if group is None:
        try:
            with session.begin_nested():
                view = create_group(
                    session,
                    user_id=user_id,
                    name=f"{my_email} & {other}",
                    currency=currency,
                    emails=[other],
                    now=now,
                    kind="direct",
                    direct_key=key,
                )
            group_id = view.id
        except IntegrityError:  # created concurrently: use that one
            group_id = (
                session.scalar(select(SharingGroup.id).where(SharingGroup.direct_key == key)) or ""
            )
    else:
        group_id = group.id
    by_email = {m.email: m.id for m in _all_members(session, group_id) if m.removed_at is None}

    def member(ref: str) -> str:
        return by_email.get(ref.strip().lower(), ref) if "@" in ref else ref

    if paid_by is not None:
        paid_by = [(member(m), a) for m, a in paid_by]
    if split is not None:
        split = replace(
            split,
            shares=tuple(replace(sh, user_id=member(sh.user_id)) for sh in split.shares),
            items=tuple(
                replace(i, user_ids=tuple(member(u) for u in i.user_ids)) for i in split.items
            ),
        )
    expense = create_expense(
        session,
        user_id=user_id,
        group_id=group_id,
        description=description,
        amount=amount,
        currency=currency,
        date=date,
        category=category,
        notes=notes,
        paid_by=paid_by,
        split=split,
        now=now,
    )
    return group_id, expense
