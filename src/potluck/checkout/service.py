"""Group order use cases: create, members, open, pay, expire, cancel, force-finalize,
finalize into a marketplace order.

Each function takes the caller's session (one unit of work) and, where it talks to the
payments service, the app. Every function that changes a group order first locks its row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write transaction already serializes),
checks the state machine (``states.py``), and only then writes: a refused transition is a 409
``invalid_state`` naming the current state, with nothing changed.

Money: an ``escrow`` account per group order in the merchant's platform book; every payment
intent's destination is that escrow. Finalization records a marketplace order funded by the
escrow (escrow → platform clearing), and the marketplace's split pipeline credits the
merchant and partners. A cancelled or expired group refunds every payment that reached the
escrow, and a payment that succeeds after that is refunded as it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish
from potluck.checkout import catalog, states
from potluck.checkout.models import GroupMember, GroupOrder, GroupPayment, GroupTransition
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.identity.models import User
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.money import allocate, format_money
from potluck.notify.inbox import notify
from potluck.paging import page_of
from potluck.splits import SplitRule, SplitRules

PURPOSE = "group_order"
ESCROW_CODE = "escrow"
SPLITS = ("equal", "custom", "by_items")
FALLBACKS = ("host_pays", "cancel")
# How long the host has to pay the remainder (expiry with host_pays, or force-finalize).
HOST_DEADLINE_SECONDS = 15 * 60
MAX_MEMBERS = 50
EXPIRY_TIMER = "group.expiry_due"
HOST_DEADLINE_TIMER = "group.host_deadline_due"


def _payments() -> ModuleType:
    # Imported on use: payments is a sibling product wired at bootstrap.
    from potluck.payments import service

    return service


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


def _views(session: Session, groups: list[GroupOrder]) -> list[GroupOrderView]:
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
    return _views(session, [group])[0]


# ------------------------------------------------------------------ helpers


def _not_found(group_id: str) -> DomainError:
    return DomainError("group_order_not_found", f"no group order {group_id}", status=404)


def lock_group(session: Session, group_id: str) -> GroupOrder:
    """The group order row, locked for the rest of the transaction (PostgreSQL); a fresh read
    in any case, so a decision is taken on the state as it is now."""
    group = session.execute(
        select(GroupOrder)
        .where(GroupOrder.id == group_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if group is None:
        raise _not_found(group_id)
    return group


def _hosted(session: Session, group_id: str, user_id: str) -> GroupOrder:
    """The caller's own group order, locked (another's is 404, like one that does not exist)."""
    group = lock_group(session, group_id)
    if group.host_user_id != user_id:
        raise _not_found(group_id)
    return group


def _members(session: Session, group_id: str) -> list[GroupMember]:
    return list(
        session.execute(
            select(GroupMember)
            .where(GroupMember.group_id == group_id)
            .order_by(GroupMember.is_host.desc(), GroupMember.id)
        ).scalars()
    )


def _payments_of(session: Session, group_id: str) -> list[GroupPayment]:
    return list(
        session.execute(
            select(GroupPayment)
            .where(GroupPayment.group_id == group_id)
            .order_by(GroupPayment.created_at, GroupPayment.intent_id)
        ).scalars()
    )


def _transition(
    session: Session, group: GroupOrder, target: str, *, now: datetime, reason: str | None
) -> None:
    states.check_transition(group.id, group.status, target)
    group.status = target
    group.updated_at = now
    if target in states.TERMINAL:
        group.reason = reason
    session.add(GroupTransition(group_id=group.id, status=target, reason=reason, at=now))


def _event(group: GroupOrder, **extra: Any) -> dict[str, Any]:
    return {"platform_id": group.platform_id, "group_id": group.id, **extra}


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def _tell_members(
    session: Session,
    group: GroupOrder,
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    for m in _members(session, group.id):
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


def _user_by_email(session: Session, email: str) -> str | None:
    return session.scalar(select(User.id).where(User.email == email))


def _email_of(session: Session, user_id: str) -> str:
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email is None:
        raise DomainError("user_not_found", f"no user {user_id}", status=404)
    return email


def _normalise_email(value: str) -> str:
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320:
        raise DomainError("invalid_email", f"{value!r} is not an email address", field="email")
    return email


# ------------------------------------------------------------------ create


def create_group_order(
    session: Session,
    *,
    host_user_id: str,
    merchant_id: str,
    items: list[tuple[str, int]],
    currency: str,
    split: str,
    expires_in_seconds: int,
    fallback: str,
    host_share: int | None = None,
    now: datetime,
) -> GroupOrderView:
    """A DRAFT group order with the host as its first member; prices from the merchant's
    catalogue, stock checked (422 ``out_of_stock``); an expiry timer at ``expires_at``."""
    if split not in SPLITS:
        raise DomainError(
            "invalid_split", f"split must be one of {', '.join(SPLITS)}", field="split"
        )
    if fallback not in FALLBACKS:
        raise DomainError(
            "invalid_fallback", f"fallback must be one of {', '.join(FALLBACKS)}", field="fallback"
        )
    if not items:
        raise DomainError("items_required", "a group order needs at least one item", field="items")
    platform_id = catalog.merchant_platform(session, merchant_id)
    if platform_id is None:
        raise DomainError(
            "merchant_not_found",
            f"no merchant {merchant_id} with a catalogue",
            status=404,
            field="merchant",
        )
    skus = [sku for sku, _ in items]
    if len(set(skus)) != len(skus):
        raise DomainError("duplicate_sku", "each sku may appear once in items", field="items")
    known = catalog.merchant_items(session, merchant_id, skus)
    lines: list[dict[str, Any]] = []
    for i, (sku, quantity) in enumerate(items):
        item = known.get(sku)
        if item is None:
            raise DomainError(
                "unknown_sku", f"merchant {merchant_id} sells no {sku!r}", field=f"items.{i}.sku"
            )
        if item.currency != currency:
            raise DomainError(
                "currency_mismatch",
                f"merchant {merchant_id} sells in {item.currency}, not {currency}",
                field="currency",
            )
        if item.stock < quantity:
            raise DomainError(
                "out_of_stock",
                f"{sku}: {quantity} wanted, {item.stock} in stock",
                field=f"items.{i}.quantity",
            )
        lines.append(
            {
                "sku": sku,
                "name": item.name,
                "quantity": quantity,
                "unit_price": item.unit_price,
                "amount": item.unit_price * quantity,
            }
        )
    total = sum(line["amount"] for line in lines)
    if total <= 0 or total > ledger.MAX_AMOUNT:
        raise DomainError(
            "invalid_total", f"the order's total {total} is out of range", field="items"
        )
    if host_share is not None and split != "custom":
        raise DomainError(
            "host_share_not_custom", "host_share is only for split 'custom'", field="host_share"
        )
    host_email = _email_of(session, host_user_id)
    group_id = new_id("grp")
    escrow = ledger.create_account(
        session,
        currency=currency,
        code=ESCROW_CODE,
        now=now,
        book=marketplace.platform_book(platform_id),
        scope=marketplace.platform_scope(platform_id),
        owner=group_id,
        flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
    )
    expires_at = now + timedelta(seconds=expires_in_seconds)
    group = GroupOrder(
        id=group_id,
        host_user_id=host_user_id,
        platform_id=platform_id,
        merchant_id=merchant_id,
        currency=currency,
        total=total,
        items=lines,
        split=split,
        fallback=fallback,
        status=states.DRAFT,
        escrow_account_id=escrow.id,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    session.add(group)
    session.flush()
    host = GroupMember(
        id=new_id("mbr"),
        group_id=group_id,
        user_id=host_user_id,
        email=host_email,
        is_host=True,
        requested_share=(host_share or 0) if split == "custom" else None,
        status="invited",
        created_at=now,
    )
    session.add(host)
    session.add(GroupTransition(group_id=group_id, status=states.DRAFT, reason="created", at=now))
    session.flush()
    publish(
        session,
        "group.created",
        _event(
            group,
            host_user_id=host_user_id,
            merchant_id=merchant_id,
            total=total,
            currency=currency,
            expires_at=expires_at.isoformat(),
        ),
        now=now,
    )
    publish(
        session,
        EXPIRY_TIMER,
        {"group_id": group_id},
        now=now,
        deliver_after=expires_at,
        dedupe_key=f"{EXPIRY_TIMER}:{group_id}",
    )
    return view(session, group)


# ------------------------------------------------------------------ members


def _check_claims(
    group: GroupOrder, others: list[GroupMember], claims: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    ordered = {line["sku"]: line["quantity"] for line in group.items}
    claimed: dict[str, int] = {}
    for m in others:
        for c in m.claims or []:
            claimed[c["sku"]] = claimed.get(c["sku"], 0) + int(c["quantity"])
    out = []
    for i, (sku, quantity) in enumerate(claims):
        if sku not in ordered:
            raise DomainError("unknown_sku", f"the order has no {sku!r}", field=f"items.{i}.sku")
        claimed[sku] = claimed.get(sku, 0) + quantity
        if claimed[sku] > ordered[sku]:
            raise DomainError(
                "items_over_claimed",
                f"{sku}: {claimed[sku]} claimed, the order has {ordered[sku]}",
                field=f"items.{i}.quantity",
            )
        out.append({"sku": sku, "quantity": quantity})
    return out


def add_member(
    session: Session,
    *,
    group_id: str,
    host_user_id: str,
    email: str,
    share: int | None = None,
    items: list[tuple[str, int]] | None = None,
    now: datetime,
) -> MemberView:
    """Add a member by email (linked to the registered person if there is one); only while
    the group is a draft (409 ``invalid_state`` otherwise)."""
    group = _hosted(session, group_id, host_user_id)
    if group.status not in states.EDITABLE:
        raise states.InvalidGroupTransition(group.id, group.status, "add members")
    address = _normalise_email(email)
    if group.split == "custom":
        if share is None:
            raise DomainError("share_required", "split 'custom' needs a share", field="share")
    elif share is not None:
        raise DomainError("share_not_custom", "share is only for split 'custom'", field="share")
    if items is not None and group.split != "by_items":
        raise DomainError(
            "items_not_by_items", "items are only for split 'by_items'", field="items"
        )
    members = _members(session, group.id)
    if len(members) >= MAX_MEMBERS:
        raise DomainError("too_many_members", f"at most {MAX_MEMBERS} members", field="email")
    if any(m.email == address for m in members):
        raise DomainError(
            "member_exists", f"{address} is already a member", status=409, field="email"
        )
    claims = _check_claims(group, members, items or []) if group.split == "by_items" else None
    member = GroupMember(
        id=new_id("mbr"),
        group_id=group.id,
        user_id=_user_by_email(session, address),
        email=address,
        is_host=False,
        requested_share=share,
        claims=claims,
        status="invited",
        created_at=now,
    )
    session.add(member)
    group.updated_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise DomainError(
            "member_exists", f"{address} is already a member", status=409, field="email"
        ) from None
    publish(
        session,
        "member.added",
        _event(
            group,
            member_id=member.id,
            user_id=member.user_id,
            email=address,
            share=share,
            currency=group.currency,
        ),
        now=now,
    )
    return _member_view(member)


def _member_view(m: GroupMember) -> MemberView:
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


def remove_member(
    session: Session, *, group_id: str, host_user_id: str, member: str, now: datetime
) -> GroupOrderView:
    """Remove a member (by user id or member id); not the host; only while a draft."""
    group = _hosted(session, group_id, host_user_id)
    if group.status not in states.EDITABLE:
        raise states.InvalidGroupTransition(group.id, group.status, "remove members")
    target = session.execute(
        select(GroupMember).where(
            GroupMember.group_id == group.id,
            or_(GroupMember.user_id == member, GroupMember.id == member),
        )
    ).scalar_one_or_none()
    if target is None:
        raise DomainError("member_not_found", f"no member {member} in {group_id}", status=404)
    if target.is_host:
        raise DomainError("host_cannot_leave", "the host cannot be removed", status=409)
    publish(
        session,
        "member.removed",
        _event(group, member_id=target.id, user_id=target.user_id, email=target.email),
        now=now,
    )
    session.delete(target)
    group.updated_at = now
    session.flush()
    return view(session, group)


# ------------------------------------------------------------------ open


def compute_shares(group: GroupOrder, members: list[GroupMember]) -> list[int]:
    """Each member's share (host first), summing exactly to the total; 422 if custom shares
    do not."""
    if group.split == "equal":
        return allocate(group.total, [1] * len(members))
    if group.split == "custom":
        shares = [m.requested_share or 0 for m in members]
        off = sum(shares) - group.total
        if off != 0:
            raise DomainError(
                "shares_do_not_sum",
                f"custom shares sum to {sum(shares)}, the total is {group.total}: "
                f"{abs(off)} {'too much' if off > 0 else 'missing'}",
                field="members",
            )
        return shares
    prices = {line["sku"]: int(line["unit_price"]) for line in group.items}
    shares = [sum(prices[c["sku"]] * int(c["quantity"]) for c in (m.claims or [])) for m in members]
    shares[0] += group.total - sum(shares)  # what nobody claimed is the host's
    return shares


def open_group_order(
    session: Session, app: Any, *, group_id: str, host_user_id: str, now: datetime
) -> GroupOrderView:
    """DRAFT → OPEN: shares, one payment intent per member with a share, invitations."""
    group = _hosted(session, group_id, host_user_id)
    states.check_transition(group.id, group.status, states.OPEN)
    if now >= utc(group.expires_at):
        raise DomainError(
            "group_order_expired",
            f"group order {group.id} passed its expiry ({utc(group.expires_at).isoformat()})",
            status=409,
        )
    members = _members(session, group.id)
    shares = compute_shares(group, members)
    payments = _payments()
    for member, share in zip(members, shares, strict=True):
        member.share = share
        if share == 0:
            member.status = "paid"  # nothing to pay
            member.paid_at = now
            continue
        intent = payments.create_intent(
            session,
            app,
            amount=share,
            currency=group.currency,
            purpose=PURPOSE,
            destination_account_id=group.escrow_account_id,
            payer_user_id=member.user_id,
            payer_email=member.email,
            platform_id=group.platform_id,
            metadata={"group_order": group.id, "member": member.id},
            client_id=f"{group.id}-{member.id}",
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
                amount=share,
                status="requires_payment",
                created_at=now,
                updated_at=now,
            )
        )
        notify(
            session,
            user_id=member.user_id,
            email=member.email,
            kind="group_order.invitation",
            title="Your share of a group order",
            body=f"Pay your share of {_money(share, group.currency)} before "
            f"{utc(group.expires_at).isoformat()}: {intent.payment_url}",
            data={
                "group_order": group.id,
                "member": member.id,
                "amount": share,
                "currency": group.currency,
                "payment_url": intent.payment_url,
                "expires_at": utc(group.expires_at).isoformat(),
            },
            now=now,
        )
    _transition(session, group, states.OPEN, now=now, reason="opened by the host")
    publish(
        session,
        "group.opened",
        _event(
            group,
            total=group.total,
            currency=group.currency,
            shares=[{"member_id": m.id, "share": m.share} for m in members],
        ),
        now=now,
    )
    session.flush()
    # Zero shares only (cannot happen with a positive total), or every share already paid.
    return view(session, group)


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
    refund = _payments().refund_intent(
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
            intent = _payments().cancel_intent(session, app, payment.intent_id, now=now)
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
    wanted = (payment.kind == "share" and group.status in states.COLLECTING) or (
        payment.kind == "remainder" and group.status == states.HOST_PAYING
    )
    payment.status = "succeeded"
    payment.updated_at = now
    if not wanted:
        _refund(session, app, group, payment, reason=f"group order is {group.status}", now=now)
        return "refunded"
    members = _members(session, group.id)
    if payment.kind == "share":
        member = next(m for m in members if m.id == payment.member_id)
        member.status = "paid"
        member.paid_at = now
        if group.status == states.OPEN:
            _transition(session, group, states.PENDING, now=now, reason="first payment")
        publish(
            session,
            "member.paid",
            _event(
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
            _event(
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
        _transition(session, group, states.PAID, now=now, reason="every share paid")
        publish(
            session,
            "group.fully_paid",
            _event(group, total=group.total, currency=group.currency),
            now=now,
        )
    return "counted"


def payment_failed(
    session: Session, *, intent_id: str, group_id: str, reason: str | None, now: datetime
) -> str:
    group = lock_group(session, group_id)
    payment = session.get(GroupPayment, intent_id)
    if payment is None or payment.group_id != group.id:
        return "unknown"
    if payment.status != "requires_payment":
        return "duplicate"
    payment.status = "failed"
    payment.updated_at = now
    if payment.kind == "share":
        member = session.get(GroupMember, payment.member_id)
        if member is not None and member.status == "due":
            member.status = "failed"
    host_email = _email_of(session, group.host_user_id)
    notify(
        session,
        user_id=group.host_user_id,
        email=host_email,
        kind="group_order.payment_failed",
        title="A payment of your group order failed",
        body=f"A payment of {_money(payment.amount, group.currency)} failed"
        + (f": {reason}" if reason else ""),
        data={"group_order": group.id, "member": payment.member_id, "intent": intent_id},
        now=now,
    )
    return "failed"


# ------------------------------------------------------------------ ending


def _refund_all(
    session: Session, app: Any, group: GroupOrder, *, reason: str, now: datetime
) -> int:
    """Refund every payment that reached the escrow, cancel the rest; returns the refunds."""
    refunded = 0
    for p in _payments_of(session, group.id):
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
    _transition(session, group, target, now=now, reason=reason)
    if target == states.CANCELLED:
        publish(
            session,
            "group.cancelled",
            _event(group, reason=reason, cancelled_by=cancelled_by, refunded=refunded),
            now=now,
        )
        title = "Group order cancelled"
    else:
        publish(
            session,
            "group.expired",
            _event(group, fallback=group.fallback, refunded=refunded, paid_members=refunded),
            now=now,
        )
        title = "Group order expired"
    _tell_members(
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
    group = _hosted(session, group_id, host_user_id)
    cancel(session, app, group, reason="cancelled by the host", cancelled_by=host_user_id, now=now)
    return view(session, group)


def _host_covers(
    session: Session, app: Any, group: GroupOrder, *, reason: str, now: datetime
) -> None:
    """→ HOST_PAYING: the unpaid shares' intents cancelled, one intent for the host."""
    states.check_transition(group.id, group.status, states.HOST_PAYING)
    members = _members(session, group.id)
    host = next(m for m in members if m.is_host)
    unpaid = sum(m.share or 0 for m in members if m.status in ("due", "failed"))
    for p in _payments_of(session, group.id):
        if p.status == "requires_payment":
            _cancel_intent(session, app, p, now=now)
    deadline = now + timedelta(seconds=HOST_DEADLINE_SECONDS)
    intent = _payments().create_intent(
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
    _transition(session, group, states.HOST_PAYING, now=now, reason=reason)
    notify(
        session,
        user_id=group.host_user_id,
        email=host.email,
        kind="group_order.host_payment",
        title="Cover the rest of your group order",
        body=f"Pay the unpaid {_money(unpaid, group.currency)} before {deadline.isoformat()}: "
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
    group = _hosted(session, group_id, host_user_id)
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
    paid = sum(1 for m in _members(session, group.id) if m.status == "paid")
    _host_covers(session, app, group, reason="expired: the host covers the unpaid shares", now=now)
    publish(
        session,
        "group.expired",
        _event(group, fallback="host_pays", refunded=0, paid_members=paid),
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
        _event(
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
            _event(group, order_id=group.id, merchant_id=group.merchant_id, reason=exc.message),
            now=now,
        )
        cancel(session, app, group, reason=exc.code, cancelled_by="merchant", now=now)
        return exc.code
    group.order_pk = order.id
    _transition(session, group, states.CONFIRMED, now=now, reason="merchant order placed")
    publish(
        session,
        "order.confirmed",
        _event(
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
        _event(group, order_id=order.id, total=group.total, currency=group.currency),
        now=now,
    )
    _tell_members(
        session,
        group,
        kind="group_order.confirmed",
        title="Group order confirmed",
        body=f"Your group order of {_money(group.total, group.currency)} is confirmed.",
        now=now,
    )
    return "confirmed"


# ------------------------------------------------------------------ reading


def _is_me(session: Session, user_id: str) -> ColumnElement[bool]:
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
        raise _not_found(group_id)
    if group.host_user_id != user_id:
        member = session.scalar(
            select(GroupMember.id).where(GroupMember.group_id == group_id, _is_me(session, user_id))
        )
        if member is None:
            raise _not_found(group_id)
    return view(session, group)


def list_group_orders(
    session: Session, *, user_id: str, limit: int, starting_after: str | None
) -> tuple[list[GroupOrderView], bool]:
    """The caller's group orders (as host or member), oldest first."""
    mine = or_(
        GroupOrder.host_user_id == user_id,
        GroupOrder.id.in_(select(GroupMember.group_id).where(_is_me(session, user_id))),
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
    return _views(session, list(rows)), more
