"""Orders: recorded synchronously (PSP receivable → clearing, ``order.recorded``) and read
back with their allocations and refunds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.bus import publish
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace.accounts import CLEARING_CODE, PSP_RECEIVABLE_CODE, platform_accounts
from potluck.marketplace.common import check_amount, currency_field, dialect_insert
from potluck.marketplace.models import (
    Allocation,
    Order,
    Refund,
    SplitRuleSet,
)
from potluck.marketplace.parties import platform_scope
from potluck.marketplace.rules import check_split_parties, current_split_rules
from potluck.paging import page_of
from potluck.splits import SplitError, SplitRules, allocate_split, validate_rules

# ---------------------------------------------------------------- orders


@dataclass(frozen=True, slots=True)
class AllocationView:
    id: str
    party_id: str
    amount: int
    currency: str
    status: str
    refunded_amount: int
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefundView:
    id: str
    order: str
    amount: int
    currency: str
    parts: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    platform_id: str
    order_id: str
    amount: int
    currency: str
    split_status: str
    rules_version: int | None
    split: SplitRules
    refunded_amount: int
    allocations: list[AllocationView]
    refunds: list[RefundView]
    created_at: datetime
    completed_at: datetime | None


def refund_view(r: Refund) -> RefundView:
    return RefundView(
        id=r.id,
        order=r.order_pk,
        amount=r.amount,
        currency=r.currency,
        parts=list(r.parts),
        created_at=utc(r.created_at),
    )


def order_views(session: Session, orders: Sequence[Order]) -> list[OrderView]:
    """Orders with their allocations and refunds: three queries whatever the page size."""
    ids = [o.id for o in orders]
    allocations: dict[str, list[AllocationView]] = {i: [] for i in ids}
    refunds: dict[str, list[RefundView]] = {i: [] for i in ids}
    if ids:
        for a in session.execute(
            select(Allocation)
            .where(Allocation.order_pk.in_(ids))
            .order_by(Allocation.order_pk, Allocation.position)
        ).scalars():
            allocations[a.order_pk].append(
                AllocationView(
                    id=a.id,
                    party_id=a.party_id,
                    amount=a.amount,
                    currency=a.currency,
                    status=a.status,
                    refunded_amount=a.refunded_amount,
                    applied_at=utc(a.applied_at) if a.applied_at else None,
                )
            )
        for r in session.execute(
            select(Refund).where(Refund.order_pk.in_(ids)).order_by(Refund.id)
        ).scalars():
            refunds[r.order_pk].append(refund_view(r))
    return [
        OrderView(
            id=o.id,
            platform_id=o.platform_id,
            order_id=o.order_id,
            amount=o.amount,
            currency=o.currency,
            split_status=o.split_status,
            rules_version=o.rules_version,
            split=SplitRules.from_dict(o.split),
            refunded_amount=o.refunded_amount,
            allocations=allocations[o.id],
            refunds=refunds[o.id],
            created_at=utc(o.created_at),
            completed_at=utc(o.completed_at) if o.completed_at else None,
        )
        for o in orders
    ]


def _resolve_split(
    session: Session,
    *,
    platform_id: str,
    currency: str,
    split: SplitRules | None,
) -> tuple[SplitRules, int | None]:
    if split is not None:
        validate_rules(split, field="split.")
        check_split_parties(
            session, split, platform_id=platform_id, currency=currency, field="split."
        )
        return split, None
    try:
        current = current_split_rules(session, platform_id=platform_id, currency=currency)
    except DomainError:
        other = session.scalar(
            select(SplitRuleSet.currency).where(SplitRuleSet.platform_id == platform_id).limit(1)
        )
        if other is not None:
            raise DomainError(
                "currency_mismatch",
                f"the platform's split rules are for other currencies, not {currency}; "
                "send a split or PUT /v1/split-rules for this currency",
                field="currency",
            ) from None
        raise DomainError(
            "split_rules_missing",
            "no split rules: PUT /v1/split-rules first or send the order's own split",
            field="split",
        ) from None
    return current.split, current.version


def record_order(
    session: Session,
    *,
    platform_id: str,
    order_id: str,
    amount: int,
    currency: str,
    split: SplitRules | None = None,
    funding_account_id: str | None = None,
    now: datetime,
) -> OrderView:
    """Record a paid order: PSP receivable → clearing, ``order.recorded``; split later.

    ``funding_account_id`` is where the order's money comes from when it is not the PSP
    receivable: checkout passes a group order's escrow (same platform book and currency).

    Refused before any write: bad amount or currency, rules that are missing, invalid or
    larger than the amount (422); the platform's ``order_id`` already recorded (409).
    """
    check_amount(amount)
    currency_field(currency)
    resolved, version = _resolve_split(
        session, platform_id=platform_id, currency=currency, split=split
    )
    try:
        allocate_split(amount, resolved)  # refuse now what the splitter could not split
    except SplitError as exc:
        raise SplitError(exc.code, exc.message, field="amount") from None
    pk = new_id("ord")
    inserted = session.execute(
        dialect_insert(session)(Order)
        .values(
            id=pk,
            platform_id=platform_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            split_status="pending",
            rules_version=version,
            split=resolved.to_dict(),
            allocations_total=None,
            allocations_applied=0,
            refunded_amount=0,
            created_at=now,
        )
        # A concurrent twin waits for our commit, then inserts nothing: a 409, not a 500.
        .on_conflict_do_nothing(index_elements=["platform_id", "order_id"])
        .returning(Order.id)
    ).scalar_one_or_none()
    if inserted is None:
        raise DomainError(
            "order_exists", f"order {order_id} was already recorded", status=409, field="order_id"
        )
    publish(
        session,
        "order.recorded",
        {
            "platform_id": platform_id,
            "order": pk,
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
            "rules_version": version,
        },
        now=now,
    )
    # The ledger last: the platform's clearing account is held for the write and the commit.
    accounts = platform_accounts(session, platform_id=platform_id, currency=currency, now=now)
    ledger.create_transfer(
        session,
        ledger.NewTransfer(
            debit_account_id=funding_account_id or accounts[PSP_RECEIVABLE_CODE],
            credit_account_id=accounts[CLEARING_CODE],
            amount=amount,
            currency=currency,
            client_id=f"order-{pk}",
            code="order_payment",
        ),
        now=now,
        scope=platform_scope(platform_id),
    )
    return OrderView(
        id=pk,
        platform_id=platform_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        split_status="pending",
        rules_version=version,
        split=resolved,
        refunded_amount=0,
        allocations=[],
        refunds=[],
        created_at=utc(now),
        completed_at=None,
    )


def get_order(session: Session, order_pk: str, *, platform_id: str) -> OrderView:
    order = session.execute(
        select(Order).where(Order.id == order_pk, Order.platform_id == platform_id)
    ).scalar_one_or_none()
    if order is None:
        raise DomainError("order_not_found", f"no order {order_pk}", status=404)
    return order_views(session, [order])[0]


def list_orders(
    session: Session,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None = None,
    order_id: str | None = None,
) -> tuple[list[OrderView], bool]:
    """The platform's orders, oldest first; ``order_id`` filters on the platform's own id."""
    query = select(Order).where(Order.platform_id == platform_id)
    if order_id is not None:
        query = query.where(Order.order_id == order_id)
    rows, more = page_of(
        session,
        query,
        Order.id,
        visible=Order.platform_id == platform_id,
        limit=limit,
        starting_after=starting_after,
        noun="order",
    )
    return order_views(session, rows), more
