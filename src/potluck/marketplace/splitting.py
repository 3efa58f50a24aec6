"""The split: allocations per order (splitter) and wallet credits (wallets), each exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, select, update
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish_many
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace.accounts import CLEARING_CODE, platform_accounts
from potluck.marketplace.common import table_of
from potluck.marketplace.models import (
    Allocation,
    Order,
    Party,
    SplitCredit,
)
from potluck.marketplace.parties import platform_scope
from potluck.splits import SplitRules, allocate_split


@dataclass(frozen=True, slots=True)
class SplitCreditView:
    id: str
    order: str
    order_id: str
    allocation_id: str
    party_id: str
    amount: int
    currency: str
    transfer_id: str
    created_at: datetime


# ---------------------------------------------------------------- the split (event handlers)


def split_order(session: Session, *, order_pk: str, now: datetime) -> int:
    """Split one order (see ``split_orders``)."""
    return split_orders(session, order_pks=[order_pk], now=now)


def split_orders(session: Session, *, order_pks: Sequence[str], now: datetime) -> int:
    """Compute and store the orders' allocations and request one wallet credit per party.

    Returns the number of credits requested. An order already split is skipped (a duplicate
    ``order.recorded`` that got past the inbox changes nothing): the claim is a conditional
    UPDATE (``allocations_total IS NULL``) that only one caller wins.
    """
    wanted = sorted(set(order_pks))
    orders = {
        o.id: o
        for o in session.execute(
            select(
                Order.id,
                Order.platform_id,
                Order.order_id,
                Order.amount,
                Order.currency,
                Order.split,
            ).where(Order.id.in_(wanted))
        ).all()
    }
    if len(orders) != len(wanted):
        missing = sorted(set(wanted) - set(orders))
        raise DomainError("order_not_found", f"no order {missing[0]}", status=404)
    parts = {
        pk: allocate_split(o.amount, SplitRules.from_dict(o.split)) for pk, o in orders.items()
    }
    # One conditional UPDATE claims every order not split yet.
    claimed = set(
        session.execute(
            update(Order)
            .where(Order.id.in_(wanted), Order.allocations_total.is_(None))
            .values(allocations_total=case({pk: len(p) for pk, p in parts.items()}, value=Order.id))
            .returning(Order.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    rows = [
        {
            "id": new_id("alc"),
            "order_pk": pk,
            "platform_id": orders[pk].platform_id,
            "party_id": party_id,
            "amount": amount,
            "currency": orders[pk].currency,
            "status": "requested",
            "refunded_amount": 0,
            "position": position,
            "created_at": now,
            "applied_at": None,
        }
        for pk in wanted
        if pk in claimed
        for position, (party_id, amount) in enumerate(parts[pk].items())
    ]
    if not rows:
        return 0
    # Core executemany (one multi-row INSERT), not the ORM's bulk path: a hot loop.
    session.connection().execute(insert(table_of(Allocation)), rows)
    publish_many(
        session,
        [
            (
                "wallet.credit.requested",
                {
                    "platform_id": row["platform_id"],
                    "order": row["order_pk"],
                    "order_id": orders[row["order_pk"]].order_id,
                    "allocation_id": row["id"],
                    "party_id": row["party_id"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                },
            )
            for row in rows
        ],
        now=now,
    )
    return len(rows)


def credit_transfer_id(allocation_id: str) -> str:
    """The ledger client id of an allocation's credit: one per allocation, ever."""
    return f"split-{allocation_id}"


def apply_credit(session: Session, *, allocation_id: str, now: datetime) -> bool:
    """Credit one allocation (see ``apply_credits``); False if it was already applied."""
    return apply_credits(session, allocation_ids=[allocation_id], now=now) == 1


def apply_credits(session: Session, *, allocation_ids: Sequence[str], now: datetime) -> int:
    """Credit allocations to their parties' wallets (clearing → wallet), record the split
    history and complete the orders whose last allocation this was. Returns how many
    credits were applied now.

    Exactly once per allocation, even if an event is applied twice: the allocation rows are
    locked (PostgreSQL) and flip requested → applied in a conditional UPDATE, so a twin
    waits and then finds nothing to do; and each ledger transfer has a client id derived from
    its allocation, so even a second post would be a replay that writes nothing. An order
    completes in an atomic increment of its row, so of several concurrent credits of one
    order exactly one sees the last one applied.

    Locks are taken in one order everywhere (allocations, then orders, then ledger accounts,
    each by ascending id), and the ledger goes last: the platform's clearing account, which
    every credit and order of the platform touches, is held only for the ledger write and the
    commit. Credits of one platform go to the ledger as one batch.
    """
    wanted = sorted(set(allocation_ids))
    rows = session.execute(
        select(
            Allocation.id,
            Allocation.order_pk,
            Allocation.platform_id,
            Allocation.party_id,
            Allocation.amount,
            Allocation.currency,
            Allocation.status,
            Party.wallet_account_id,
        )
        .join(Party, Party.id == Allocation.party_id)
        .where(Allocation.id.in_(wanted))
        .order_by(Allocation.id)
        .with_for_update(of=Allocation, key_share=True)
    ).all()
    if len(rows) != len(wanted):
        missing = sorted(set(wanted) - {r.id for r in rows})
        # Not committed yet or unknown: fail, so that the bus retries (then dead-letters).
        raise DomainError("allocation_not_found", f"no allocation {missing[0]}", status=404)
    todo = [r for r in rows if r.status == "requested"]
    if not todo:
        return 0
    won = set(
        session.execute(
            update(Allocation)
            .where(Allocation.id.in_([r.id for r in todo]), Allocation.status == "requested")
            .values(status="applied", applied_at=now)
            .returning(Allocation.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    applied = [r for r in todo if r.id in won]
    if not applied:
        return 0  # a concurrent twin applied them (SQLite, or a lock-free read)
    per_order: dict[str, list[Any]] = {}
    for r in applied:
        per_order.setdefault(r.order_pk, []).append(r)
    # One UPDATE for every order of the batch: add its credits and complete it if that was
    # the last one. Each row is updated under its row lock (PostgreSQL), and the new count
    # is RETURNed, so of concurrent credits of one order exactly one sees it complete.
    if session.get_bind().dialect.name == "postgresql":
        # Row locks in id order, so that two batches sharing orders cannot deadlock. NO KEY
        # UPDATE (key_share): what the UPDATE below takes anyway, and it does not conflict
        # with the KEY SHARE locks of foreign keys pointing at the order.
        session.execute(
            select(Order.id)
            .where(Order.id.in_(sorted(per_order)))
            .order_by(Order.id)
            .with_for_update(key_share=True)
        )
    added = case({pk: len(c) for pk, c in per_order.items()}, value=Order.id)
    now_applied = Order.allocations_applied + added
    last = now_applied == Order.allocations_total
    progress = session.execute(
        update(Order)
        .where(Order.id.in_(sorted(per_order)))
        .values(
            allocations_applied=now_applied,
            split_status=case((last, "completed"), else_=Order.split_status),
            completed_at=case((last, now), else_=Order.completed_at),
        )
        .returning(
            Order.id,
            Order.allocations_applied,
            Order.allocations_total,
            Order.order_id,
            Order.amount,
        )
        .execution_options(synchronize_session=False)
    ).all()
    completed = [r.id for r in progress if r.allocations_applied == r.allocations_total]
    # What each party got, for split.completed: one event tells a platform the whole split.
    parts: dict[str, list[dict[str, Any]]] = {pk: [] for pk in completed}
    if completed:
        for a in session.execute(
            select(Allocation.order_pk, Allocation.id, Allocation.party_id, Allocation.amount)
            .where(Allocation.order_pk.in_(completed))
            .order_by(Allocation.id)
        ):
            parts[a.order_pk].append(
                {"allocation_id": a.id, "party_id": a.party_id, "amount": a.amount}
            )
    events: list[tuple[str, dict[str, Any]]] = []
    for row in sorted(progress, key=lambda r: r.id):
        credits = per_order[row.id]
        common = {"platform_id": credits[0].platform_id, "order": row.id, "order_id": row.order_id}
        events.extend(
            (
                "wallet.credited",
                {
                    **common,
                    "allocation_id": r.id,
                    "party_id": r.party_id,
                    "amount": r.amount,
                    "currency": r.currency,
                    "transfer_id": credit_transfer_id(r.id),
                },
            )
            for r in credits
        )
        if row.allocations_applied == row.allocations_total:
            events.append(
                (
                    "split.completed",
                    {
                        **common,
                        "amount": row.amount,
                        "currency": credits[0].currency,
                        "allocations": row.allocations_total,
                        "credits": parts[row.id],
                    },
                )
            )
    # History after the order rows are locked: its foreign key takes a KEY SHARE lock on
    # the order, which must not come before our own lock on it.
    session.connection().execute(
        insert(table_of(SplitCredit)),
        [
            {
                "id": new_id("spl"),
                "platform_id": r.platform_id,
                "order_pk": r.order_pk,
                "allocation_id": r.id,
                "party_id": r.party_id,
                "amount": r.amount,
                "currency": r.currency,
                "transfer_id": credit_transfer_id(r.id),
                "created_at": now,
            }
            for r in applied
        ],
    )
    publish_many(session, events, now=now)
    by_platform: dict[str, list[Any]] = {}
    for r in applied:
        by_platform.setdefault(r.platform_id, []).append(r)
    for platform_id in sorted(by_platform):  # a fixed order: no lock cycles between batches
        ops: list[ledger.Operation] = []
        for r in by_platform[platform_id]:
            accounts = platform_accounts(
                session, platform_id=platform_id, currency=r.currency, now=now
            )
            ops.append(
                ledger.NewTransfer(
                    debit_account_id=accounts[CLEARING_CODE],
                    credit_account_id=r.wallet_account_id,
                    amount=r.amount,
                    currency=r.currency,
                    client_id=credit_transfer_id(r.id),
                    code="split_credit",
                )
            )
        ledger.create_transfers(session, ops, now=now, scope=platform_scope(platform_id))
    return len(applied)


def list_split_history(
    session: Session,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None = None,
    order_pk: str | None = None,
    order_id: str | None = None,
) -> tuple[list[SplitCreditView], bool]:
    """Credits applied, oldest first: all the platform's, or one order's (by either id)."""
    query = (
        select(SplitCredit, Order.order_id)
        .join(Order, Order.id == SplitCredit.order_pk)
        .where(SplitCredit.platform_id == platform_id)
    )
    if order_pk is not None or order_id is not None:
        lookup = select(Order.id).where(Order.platform_id == platform_id)
        if order_pk is not None:
            lookup = lookup.where(Order.id == order_pk)
        if order_id is not None:
            lookup = lookup.where(Order.order_id == order_id)
        pk = session.scalar(lookup)
        if pk is None:
            raise DomainError("order_not_found", f"no order {order_id or order_pk}", status=404)
        query = query.where(SplitCredit.order_pk == pk)
    if starting_after is not None:
        known = session.scalar(
            select(SplitCredit.id).where(
                SplitCredit.platform_id == platform_id, SplitCredit.id == starting_after
            )
        )
        if known is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no split entry {starting_after}",
                field="starting_after",
            )
        query = query.where(SplitCredit.id > starting_after)
    rows = session.execute(query.order_by(SplitCredit.id).limit(limit + 1)).all()
    views = [
        SplitCreditView(
            id=c.id,
            order=c.order_pk,
            order_id=oid,
            allocation_id=c.allocation_id,
            party_id=c.party_id,
            amount=c.amount,
            currency=c.currency,
            transfer_id=c.transfer_id,
            created_at=utc(c.created_at),
        )
        for c, oid in rows[:limit]
    ]
    return views, len(rows) > limit
