"""Group orders as the use cases return them, and reading them (host or member only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from potluck.checkout.common import (
    not_found,
)
from potluck.checkout.models import GroupMember, GroupOrder, GroupPayment, GroupTransition
from potluck.clock import utc
from potluck.identity.models import User
from potluck.paging import page_of

# ------------------------------------------------------------------ views


@dataclass(frozen=True, slots=True)
class MemberView:
    id: str
    user_id: str | None
    email: str
    is_host: bool
    share: int | None
    requested_share: int | None
    items: list[dict[str, Any]] | None
    status: str
    payment_intent: str | None
    payment_url: str | None
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaymentView:
    intent_id: str
    member_id: str
    kind: str
    amount: int
    status: str
    refund_id: str | None


@dataclass(frozen=True, slots=True)
class TransitionView:
    status: str
    at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class GroupOrderView:
    id: str
    host_user_id: str
    platform_id: str
    merchant_id: str
    currency: str
    total: int
    paid: int
    items: list[dict[str, Any]]
    split: str
    fallback: str
    status: str
    reason: str | None
    escrow_account_id: str
    expires_at: datetime
    host_deadline_at: datetime | None
    order_id: str | None
    members: list[MemberView]
    payments: list[PaymentView]
    history: list[TransitionView]
    created_at: datetime
    updated_at: datetime


def views_of(session: Session, groups: list[GroupOrder]) -> list[GroupOrderView]:
    ids = [g.id for g in groups]
    members: dict[str, list[GroupMember]] = {i: [] for i in ids}
    payments: dict[str, list[GroupPayment]] = {i: [] for i in ids}
    history: dict[str, list[GroupTransition]] = {i: [] for i in ids}
    if ids:
        for m in session.execute(
            select(GroupMember)
            .where(GroupMember.group_id.in_(ids))
            .order_by(GroupMember.is_host.desc(), GroupMember.id)
        ).scalars():
            members[m.group_id].append(m)
        for p in session.execute(
            select(GroupPayment)
            .where(GroupPayment.group_id.in_(ids))
            .order_by(GroupPayment.created_at, GroupPayment.intent_id)
        ).scalars():
            payments[p.group_id].append(p)
        for t in session.execute(
            select(GroupTransition)
            .where(GroupTransition.group_id.in_(ids))
            .order_by(GroupTransition.id)
        ).scalars():
            history[t.group_id].append(t)
    out = []
    for g in groups:
        out.append(
            GroupOrderView(
                id=g.id,
                host_user_id=g.host_user_id,
                platform_id=g.platform_id,
                merchant_id=g.merchant_id,
                currency=g.currency,
                total=g.total,
                paid=sum(p.amount for p in payments[g.id] if p.status == "succeeded"),
                items=list(g.items),
                split=g.split,
                fallback=g.fallback,
                status=g.status,
                reason=g.reason,
                escrow_account_id=g.escrow_account_id,
                expires_at=utc(g.expires_at),
                host_deadline_at=utc(g.host_deadline_at) if g.host_deadline_at else None,
                order_id=g.order_pk,
                members=[
                    MemberView(
                        id=m.id,
                        user_id=m.user_id,
                        email=m.email,
                        is_host=m.is_host,
                        share=m.share,
                        requested_share=m.requested_share,
                        items=list(m.claims) if m.claims is not None else None,
                        status=m.status,
                        payment_intent=m.intent_id,
                        payment_url=m.payment_url,
                        paid_at=utc(m.paid_at) if m.paid_at else None,
                    )
                    for m in members[g.id]
                ],
                payments=[
                    PaymentView(p.intent_id, p.member_id, p.kind, p.amount, p.status, p.refund_id)
                    for p in payments[g.id]
                ],
                history=[TransitionView(t.status, utc(t.at), t.reason) for t in history[g.id]],
                created_at=utc(g.created_at),
                updated_at=utc(g.updated_at),
            )
        )
    return out


def view(session: Session, group: GroupOrder) -> GroupOrderView:
    return views_of(session, [group])[0]


def member_view(m: GroupMember) -> MemberView:
    return MemberView(
        id=m.id,
        user_id=m.user_id,
        email=m.email,
        is_host=m.is_host,
        share=m.share,
        requested_share=m.requested_share,
        items=list(m.claims) if m.claims is not None else None,
        status=m.status,
        payment_intent=m.intent_id,
        payment_url=m.payment_url,
        paid_at=utc(m.paid_at) if m.paid_at else None,
    )


# ------------------------------------------------------------------ reading


def is_me(session: Session, user_id: str) -> ColumnElement[bool]:
    """A member row that is the person: linked by user id, or added by their email before
    they registered."""
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email is None:
        return GroupMember.user_id == user_id
    return or_(GroupMember.user_id == user_id, GroupMember.email == email)


def get_group_order(session: Session, group_id: str, *, user_id: str) -> GroupOrderView:
    """The group order if the caller is its host or a member (else 404)."""
    group = session.get(GroupOrder, group_id)
    if group is None:
        raise not_found(group_id)
    if group.host_user_id != user_id:
        member = session.scalar(
            select(GroupMember.id).where(GroupMember.group_id == group_id, is_me(session, user_id))
        )
        if member is None:
            raise not_found(group_id)
    return view(session, group)


def list_group_orders(
    session: Session, *, user_id: str, limit: int, starting_after: str | None
) -> tuple[list[GroupOrderView], bool]:
    """The caller's group orders (as host or member), oldest first."""
    mine = or_(
        GroupOrder.host_user_id == user_id,
        GroupOrder.id.in_(select(GroupMember.group_id).where(is_me(session, user_id))),
    )
    rows, more = page_of(
        session,
        select(GroupOrder).where(mine),
        GroupOrder.id,
        visible=mine,
        limit=limit,
        starting_after=starting_after,
        noun="group order",
    )
    return views_of(session, list(rows)), more
