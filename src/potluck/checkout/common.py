"""What the group order use cases share: constants, the row lock, transitions, events,
messages to members."""

from __future__ import annotations

from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from potluck.checkout import states
from potluck.checkout.models import GroupMember, GroupOrder, GroupPayment, GroupTransition
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.identity.models import User
from potluck.money import format_money
from potluck.notify.inbox import notify

PURPOSE = "group_order"
ESCROW_CODE = "escrow"
SPLITS = ("equal", "custom", "by_items")
FALLBACKS = ("host_pays", "cancel")
# How long the host has to pay the remainder (expiry with host_pays, or force-finalize).
HOST_DEADLINE_SECONDS = 15 * 60
MAX_MEMBERS = 50
EXPIRY_TIMER = "group.expiry_due"
HOST_DEADLINE_TIMER = "group.host_deadline_due"


def payments_service() -> ModuleType:
    # Imported on use: payments is a sibling product wired at bootstrap.
    from potluck.payments import service

    return service


# ------------------------------------------------------------------ helpers


def not_found(group_id: str) -> DomainError:
    return DomainError("group_order_not_found", f"no group order {group_id}", status=404)


def lock_group(session: Session, group_id: str) -> GroupOrder:
    """The group order row, locked for the rest of the transaction (PostgreSQL ``FOR NO KEY
    UPDATE``: inserts of its members, payments and history, which only need its key, are not
    held up); a fresh read in any case, so a decision is taken on the state as it is now."""
    group = session.execute(
        select(GroupOrder)
        .where(GroupOrder.id == group_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if group is None:
        raise not_found(group_id)
    return group


def hosted_group(session: Session, group_id: str, user_id: str) -> GroupOrder:
    """The caller's own group order, locked (another's is 404, like one that does not exist)."""
    group = lock_group(session, group_id)
    if group.host_user_id != user_id:
        raise not_found(group_id)
    return group


def members_of(session: Session, group_id: str) -> list[GroupMember]:
    return list(
        session.execute(
            select(GroupMember)
            .where(GroupMember.group_id == group_id)
            .order_by(GroupMember.is_host.desc(), GroupMember.id)
        ).scalars()
    )


def payments_of(session: Session, group_id: str) -> list[GroupPayment]:
    return list(
        session.execute(
            select(GroupPayment)
            .where(GroupPayment.group_id == group_id)
            .order_by(GroupPayment.created_at, GroupPayment.intent_id)
        ).scalars()
    )


def record_transition(
    session: Session, group: GroupOrder, target: str, *, now: datetime, reason: str | None
) -> None:
    states.check_transition(group.id, group.status, target)
    group.status = target
    group.updated_at = now
    if target in states.TERMINAL:
        group.reason = reason
    session.add(GroupTransition(group_id=group.id, status=target, reason=reason, at=now))


def event_data(group: GroupOrder, **extra: Any) -> dict[str, Any]:
    return {"platform_id": group.platform_id, "group_id": group.id, **extra}


def fmt_money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def tell_members(
    session: Session,
    group: GroupOrder,
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    for m in members_of(session, group.id):
        notify(
            session,
            user_id=m.user_id,
            email=m.email,
            kind=kind,
            title=title,
            body=body,
            data={"group_order": group.id, "status": group.status, **(data or {})},
            now=now,
        )


def user_by_email(session: Session, email: str) -> str | None:
    return session.scalar(select(User.id).where(User.email == email))


def email_of(session: Session, user_id: str) -> str:
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email is None:
        raise DomainError("user_not_found", f"no user {user_id}", status=404)
    return email


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320:
        raise DomainError("invalid_email", f"{value!r} is not an email address", field="email")
    return email


def request_share(
    session: Session, app: Any, group: GroupOrder, member: GroupMember, *, now: datetime
) -> None:
    """A payment intent for the member's share into the escrow, and a message with its link.
    A member whose payment failed gets a new one (attempt 2, 3, …: its own client id)."""
    if member.share is None or member.share <= 0:
        raise ValueError(f"member {member.id} has no share to pay")
    attempts = (
        session.scalar(
            select(func.count()).where(
                GroupPayment.group_id == group.id,
                GroupPayment.member_id == member.id,
                GroupPayment.kind == "share",
            )
        )
        or 0
    )
    suffix = f"-{attempts + 1}" if attempts else ""
    intent = payments_service().create_intent(
        session,
        app,
        amount=member.share,
        currency=group.currency,
        purpose=PURPOSE,
        destination_account_id=group.escrow_account_id,
        payer_user_id=member.user_id,
        payer_email=member.email,
        platform_id=group.platform_id,
        metadata={"group_order": group.id, "member": member.id},
        client_id=f"{group.id}-{member.id}{suffix}",
        now=now,
    )
    member.status = "due"
    member.intent_id = intent.id
    member.payment_url = intent.payment_url
    session.add(
        GroupPayment(
            intent_id=intent.id,
            group_id=group.id,
            member_id=member.id,
            kind="share",
            amount=member.share,
            status="requires_payment",
            created_at=now,
            updated_at=now,
        )
    )
    expires = utc(group.expires_at).isoformat()
    notify(
        session,
        user_id=member.user_id,
        email=member.email,
        kind="group_order.invitation",
        title="Your share of a group order"
        + (" (your last payment failed: try again)" if attempts else ""),
        body=f"Pay your share of {fmt_money(member.share, group.currency)} before "
        f"{utc(group.expires_at):%Y-%m-%d %H:%M} UTC: {intent.payment_url}",
        data={
            "group_order": group.id,
            "member": member.id,
            "amount": member.share,
            "currency": group.currency,
            "payment_url": intent.payment_url,
            "expires_at": expires,
            "attempt": attempts + 1,
        },
        now=now,
    )
