"""Group orders before payment: create (prices and stock from the catalogue), members, open
(shares, one payment intent per member, invitations)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish
from potluck.checkout import catalog, states
from potluck.checkout.common import (
    ESCROW_CODE,
    EXPIRY_TIMER,
    FALLBACKS,
    MAX_MEMBERS,
    SPLITS,
    email_of,
    event_data,
    hosted_group,
    members_of,
    normalise_email,
    record_transition,
    request_share,
    user_by_email,
)
from potluck.checkout.models import GroupMember, GroupOrder, GroupTransition
from potluck.checkout.views import (
    GroupOrderView,
    MemberView,
    member_view,
    view,
)
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.money import allocate

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
    host_email = email_of(session, host_user_id)
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
        event_data(
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
    group = hosted_group(session, group_id, host_user_id)
    if group.status not in states.EDITABLE:
        raise states.InvalidGroupTransition(group.id, group.status, "add members")
    address = normalise_email(email)
    if group.split == "custom":
        if share is None:
            raise DomainError("share_required", "split 'custom' needs a share", field="share")
    elif share is not None:
        raise DomainError("share_not_custom", "share is only for split 'custom'", field="share")
    if items is not None and group.split != "by_items":
        raise DomainError(
            "items_not_by_items", "items are only for split 'by_items'", field="items"
        )
    members = members_of(session, group.id)
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
        user_id=user_by_email(session, address),
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
        event_data(
            group,
            member_id=member.id,
            user_id=member.user_id,
            email=address,
            share=share,
            currency=group.currency,
        ),
        now=now,
    )
    return member_view(member)


def remove_member(
    session: Session, *, group_id: str, host_user_id: str, member: str, now: datetime
) -> GroupOrderView:
    """Remove a member (by user id or member id); not the host; only while a draft."""
    group = hosted_group(session, group_id, host_user_id)
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
        event_data(group, member_id=target.id, user_id=target.user_id, email=target.email),
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
    group = hosted_group(session, group_id, host_user_id)
    states.check_transition(group.id, group.status, states.OPEN)
    if now >= utc(group.expires_at):
        raise DomainError(
            "group_order_expired",
            f"group order {group.id} passed its expiry ({utc(group.expires_at).isoformat()})",
            status=409,
        )
    members = members_of(session, group.id)
    shares = compute_shares(group, members)
    for member, share in zip(members, shares, strict=True):
        member.share = share
        if share == 0:
            member.status = "paid"  # nothing to pay
            member.paid_at = now
            continue
        request_share(session, app, group, member, now=now)
    record_transition(session, group, states.OPEN, now=now, reason="opened by the host")
    publish(
        session,
        "group.opened",
        event_data(
            group,
            total=group.total,
            currency=group.currency,
            shares=[{"member_id": m.id, "share": m.share} for m in members],
        ),
        now=now,
    )
    session.flush()
    return view(session, group)
