"""Group orders while they collect and after: payments in (counted once, or refunded), cancel,
expiry and its fallback, the host covering the rest, finalize into a marketplace order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish
from potluck.checkout import catalog, states
from potluck.checkout.common import (
    HOST_DEADLINE_SECONDS,
    HOST_DEADLINE_TIMER,
    PURPOSE,
    email_of,
    event_data,
    fmt_money,
    hosted_group,
    lock_group,
    members_of,
    payments_of,
    payments_service,
    record_transition,
    request_share,
    tell_members,
)
from potluck.checkout.models import GroupMember, GroupOrder, GroupPayment
from potluck.checkout.views import (
    GroupOrderView,
    view,
)
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.marketplace import service as marketplace
from potluck.notify.inbox import notify
from potluck.splits import SplitRule, SplitRules

# ------------------------------------------------------------------ payments in


def _refund(
    session: Session,
    app: Any,
    group: GroupOrder,
    payment: GroupPayment,
    *,
    reason: str,
    now: datetime,
) -> None:
    refund = payments_service().refund_intent(
        session,
        app,
        payment.intent_id,
        reason=reason,
        client_id=f"refund-{payment.intent_id}",
        now=now,
    )
    payment.status = "refunded"
    payment.refund_id = refund.id
    payment.updated_at = now


def _cancel_intent(session: Session, app: Any, payment: GroupPayment, *, now: datetime) -> None:
    """Cancel an intent nobody paid. If the provider says it is already paid, its
    ``payment.succeeded`` is on its way and will be refunded when it arrives."""
    try:
        with session.begin_nested():
            intent = payments_service().cancel_intent(session, app, payment.intent_id, now=now)
    except DomainError:
        return
    if intent.status != "canceled":
        return  # paid meanwhile: its payment.succeeded follows, and is refunded then
    payment.status = "canceled"
    payment.updated_at = now


def payment_succeeded(
    session: Session, app: Any, *, intent_id: str, group_id: str, now: datetime
) -> str:
    """A payment for a group order reached its escrow. Returns what it did: ``counted``,
    ``duplicate``, ``refunded`` (the group no longer takes it) or ``unknown``."""
    group = lock_group(session, group_id)
    payment = session.execute(
        select(GroupPayment)
        .where(GroupPayment.intent_id == intent_id, GroupPayment.group_id == group.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if payment is None:
        return "unknown"
    if payment.status in ("succeeded", "refunded"):
        return "duplicate"
    members = members_of(session, group.id)
    member = next((m for m in members if m.id == payment.member_id), None)
    wanted = (
        payment.kind == "share"
        and group.status in states.COLLECTING
        and member is not None
        and member.status != "paid"  # never counted twice, whichever of their intents
    ) or (payment.kind == "remainder" and group.status == states.HOST_PAYING)
    payment.status = "succeeded"
    payment.updated_at = now
    if not wanted:
        _refund(session, app, group, payment, reason=f"group order is {group.status}", now=now)
        return "refunded"
    if payment.kind == "share":
        assert member is not None  # wanted
        member.status = "paid"
        member.paid_at = now
        if group.status == states.OPEN:
            record_transition(session, group, states.PENDING, now=now, reason="first payment")
        publish(
            session,
            "member.paid",
            event_data(
                group,
                member_id=member.id,
                payment_id=intent_id,
                amount=payment.amount,
                currency=group.currency,
            ),
            now=now,
        )
    else:
        for m in members:
            if m.status in ("due", "failed"):
                m.status = "covered"
        publish(
            session,
            "member.paid",
            event_data(
                group,
                member_id=payment.member_id,
                payment_id=intent_id,
                amount=payment.amount,
                currency=group.currency,
                remainder=True,
            ),
            now=now,
        )
    group.updated_at = now
    if all(m.status in ("paid", "covered") for m in members):
        record_transition(session, group, states.PAID, now=now, reason="every share paid")
        publish(
            session,
            "group.fully_paid",
            event_data(group, total=group.total, currency=group.currency),
            now=now,
        )
    return "counted"


def payment_failed(
    session: Session,
    app: Any,
    *,
    intent_id: str,
    group_id: str,
    reason: str | None,
    now: datetime,
) -> str:
    """A payment was declined: the host is told; a member's share gets a new intent (and
    link) while the group still collects, so they can try again."""
    group = lock_group(session, group_id)
    payment = session.get(GroupPayment, intent_id)
    if payment is None or payment.group_id != group.id:
        return "unknown"
    if payment.status != "requires_payment":
        return "duplicate"
    payment.status = "failed"
    payment.updated_at = now
    retried = False
    if payment.kind == "share":
        member = session.get(GroupMember, payment.member_id)
        if member is not None and member.intent_id == intent_id and member.status == "due":
            member.status = "failed"
            if group.status in states.COLLECTING:
                request_share(session, app, group, member, now=now)
                retried = True
    host_email = email_of(session, group.host_user_id)
    notify(
        session,
        user_id=group.host_user_id,
        email=host_email,
        kind="group_order.payment_failed",
        title="A payment of your group order failed",
        body=f"A payment of {fmt_money(payment.amount, group.currency)} failed"
        + (f": {reason}" if reason else ""),
        data={
            "group_order": group.id,
            "member": payment.member_id,
            "intent": intent_id,
            "new_link_sent": retried,
        },
        now=now,
    )
    return "retry" if retried else "failed"


# ------------------------------------------------------------------ ending


def _refund_all(
    session: Session, app: Any, group: GroupOrder, *, reason: str, now: datetime
) -> int:
    """Refund every payment that reached the escrow, cancel the rest; returns the refunds."""
    refunded = 0
    for p in payments_of(session, group.id):
        if p.status == "succeeded":
            _refund(session, app, group, p, reason=reason, now=now)
            refunded += 1
        elif p.status == "requires_payment":
            _cancel_intent(session, app, p, now=now)
    return refunded


def cancel(
    session: Session,
    app: Any,
    group: GroupOrder,
    *,
    reason: str,
    cancelled_by: str,
    now: datetime,
    target: str = states.CANCELLED,
) -> int:
    """→ CANCELLED (or EXPIRED): every paid share refunded, open intents cancelled."""
    states.check_transition(group.id, group.status, target)
    refunded = _refund_all(session, app, group, reason=reason, now=now)
    record_transition(session, group, target, now=now, reason=reason)
    if target == states.CANCELLED:
        publish(
            session,
            "group.cancelled",
            event_data(group, reason=reason, cancelled_by=cancelled_by, refunded=refunded),
            now=now,
        )
        title = "Group order cancelled"
    else:
        publish(
            session,
            "group.expired",
            event_data(group, fallback=group.fallback, refunded=refunded, paid_members=refunded),
            now=now,
        )
        title = "Group order expired"
    tell_members(
        session,
        group,
        kind=f"group_order.{target}",
        title=title,
        body=f"{title}: {reason}." + (" Your payment is refunded." if refunded else ""),
        now=now,
    )
    return refunded


def cancel_group_order(
    session: Session, app: Any, *, group_id: str, host_user_id: str, now: datetime
) -> GroupOrderView:
    group = hosted_group(session, group_id, host_user_id)
    cancel(session, app, group, reason="cancelled by the host", cancelled_by=host_user_id, now=now)
    return view(session, group)


def _host_covers(
    session: Session, app: Any, group: GroupOrder, *, reason: str, now: datetime
) -> None:
    """→ HOST_PAYING: the unpaid shares' intents cancelled, one intent for the host."""
    states.check_transition(group.id, group.status, states.HOST_PAYING)
    members = members_of(session, group.id)
    host = next(m for m in members if m.is_host)
    unpaid = sum(m.share or 0 for m in members if m.status in ("due", "failed"))
    for p in payments_of(session, group.id):
        if p.status == "requires_payment":
            _cancel_intent(session, app, p, now=now)
    deadline = now + timedelta(seconds=HOST_DEADLINE_SECONDS)
    intent = payments_service().create_intent(
        session,
        app,
        amount=unpaid,
        currency=group.currency,
        purpose=PURPOSE,
        destination_account_id=group.escrow_account_id,
        payer_user_id=group.host_user_id,
        payer_email=host.email,
        platform_id=group.platform_id,
        metadata={"group_order": group.id, "member": host.id, "remainder": "true"},
        client_id=f"{group.id}-remainder",
        now=now,
    )
    session.add(
        GroupPayment(
            intent_id=intent.id,
            group_id=group.id,
            member_id=host.id,
            kind="remainder",
            amount=unpaid,
            status="requires_payment",
            created_at=now,
            updated_at=now,
        )
    )
    group.host_deadline_at = deadline
    record_transition(session, group, states.HOST_PAYING, now=now, reason=reason)
    notify(
        session,
        user_id=group.host_user_id,
        email=host.email,
        kind="group_order.host_payment",
        title="Cover the rest of your group order",
        body=f"Pay the unpaid {fmt_money(unpaid, group.currency)} before {deadline.isoformat()}: "
        f"{intent.payment_url}",
        data={
            "group_order": group.id,
            "amount": unpaid,
            "currency": group.currency,
            "payment_url": intent.payment_url,
            "deadline": deadline.isoformat(),
        },
        now=now,
    )
    publish(
        session,
        HOST_DEADLINE_TIMER,
        {"group_id": group.id},
        now=now,
        deliver_after=deadline,
        dedupe_key=f"{HOST_DEADLINE_TIMER}:{group.id}",
    )


def force_finalize(
    session: Session, app: Any, *, group_id: str, host_user_id: str, now: datetime
) -> GroupOrderView:
    """The host covers what is unpaid now (OPEN or PENDING → HOST_PAYING)."""
    group = hosted_group(session, group_id, host_user_id)
    if group.status not in states.COLLECTING:
        raise states.InvalidGroupTransition(group.id, group.status, "be force-finalized")
    _host_covers(session, app, group, reason="force-finalized by the host", now=now)
    return view(session, group)


def expire(session: Session, app: Any, *, group_id: str, now: datetime) -> str:
    """The expiry timer: apply the fallback if the group is still collecting; otherwise do
    nothing (it was paid, confirmed, cancelled, or the host is already paying)."""
    group = lock_group(session, group_id)
    if now < utc(group.expires_at):
        return "not_due"
    if group.status == states.DRAFT:
        cancel(
            session,
            app,
            group,
            reason="expired before it was opened",
            cancelled_by="system",
            now=now,
            target=states.EXPIRED,
        )
        return "expired"
    if group.status not in states.COLLECTING:
        return "ignored"
    if group.fallback == "cancel":
        cancel(
            session,
            app,
            group,
            reason="expired: not every share was paid",
            cancelled_by="system",
            now=now,
            target=states.EXPIRED,
        )
        return "expired"
    paid = sum(1 for m in members_of(session, group.id) if m.status == "paid")
    _host_covers(session, app, group, reason="expired: the host covers the unpaid shares", now=now)
    publish(
        session,
        "group.expired",
        event_data(group, fallback="host_pays", refunded=0, paid_members=paid),
        now=now,
    )
    return "host_paying"


def host_deadline_passed(session: Session, app: Any, *, group_id: str, now: datetime) -> str:
    group = lock_group(session, group_id)
    if group.status != states.HOST_PAYING:
        return "ignored"
    if group.host_deadline_at is not None and now < utc(group.host_deadline_at):
        return "not_due"
    cancel(
        session,
        app,
        group,
        reason="the host did not pay the rest in time",
        cancelled_by="system",
        now=now,
    )
    return "cancelled"


# ------------------------------------------------------------------ finalize


def _merchant_split(session: Session, group: GroupOrder) -> SplitRules | None:
    """The platform's split rules if they include the merchant, else everything to it."""
    try:
        current = marketplace.current_split_rules(
            session, platform_id=group.platform_id, currency=group.currency
        )
    except DomainError:
        current = None
    if current is not None and group.merchant_id in current.split.parties:
        return None
    return SplitRules(
        rules=(SplitRule(group.merchant_id, "percent", 10_000),), remainder_to=group.merchant_id
    )


def finalize(session: Session, app: Any, *, group_id: str, now: datetime) -> str:
    """PAID → CONFIRMED: stock taken, merchant order recorded from the escrow (its split
    credits the merchant and partners), ``order.created`` and ``order.confirmed``. If stock
    ran out (or the marketplace refuses the order): ``order.failed``, every member refunded,
    CANCELLED with the refusal's code as reason (``out_of_stock``)."""
    group = lock_group(session, group_id)
    if group.status != states.PAID:
        return "ignored"
    publish(
        session,
        "order.created",
        event_data(
            group,
            order_id=group.id,
            merchant_id=group.merchant_id,
            total=group.total,
            currency=group.currency,
        ),
        now=now,
    )
    try:
        # Stock and the marketplace order together: a refusal of either leaves neither.
        with session.begin_nested():
            short = catalog.take_stock(
                session,
                group.merchant_id,
                [(line["sku"], int(line["quantity"])) for line in group.items],
            )
            if short is not None:
                raise DomainError("out_of_stock", f"out_of_stock: {short}")
            order = marketplace.record_order(
                session,
                platform_id=group.platform_id,
                order_id=group.id,
                amount=group.total,
                currency=group.currency,
                split=_merchant_split(session, group),
                funding_account_id=group.escrow_account_id,
                now=now,
            )
    except DomainError as exc:
        publish(
            session,
            "order.failed",
            event_data(group, order_id=group.id, merchant_id=group.merchant_id, reason=exc.message),
            now=now,
        )
        cancel(session, app, group, reason=exc.code, cancelled_by="merchant", now=now)
        return exc.code
    group.order_pk = order.id
    record_transition(session, group, states.CONFIRMED, now=now, reason="merchant order placed")
    publish(
        session,
        "order.confirmed",
        event_data(
            group,
            order_id=group.id,
            merchant_id=group.merchant_id,
            marketplace_order=order.id,
            total=group.total,
            currency=group.currency,
            confirmed_at=now.isoformat(),
        ),
        now=now,
    )
    publish(
        session,
        "group.finalized",
        event_data(group, order_id=order.id, total=group.total, currency=group.currency),
        now=now,
    )
    tell_members(
        session,
        group,
        kind="group_order.confirmed",
        title="Group order confirmed",
        body=f"Your group order of {fmt_money(group.total, group.currency)} is confirmed.",
        now=now,
    )
    return "confirmed"
