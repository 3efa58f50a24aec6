"""Refunds: the split reversed from the parties' wallets, in proportion, all or nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from potluck.bus import publish
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace.accounts import CLEARING_CODE, PSP_RECEIVABLE_CODE, platform_accounts
from potluck.marketplace.common import check_amount, table_of
from potluck.marketplace.models import (
    Allocation,
    Order,
    Party,
    Refund,
)
from potluck.marketplace.orders import (
    RefundView,
    refund_view,
)
from potluck.marketplace.parties import platform_scope
from potluck.money import allocate

# ---------------------------------------------------------------- refunds


def refund_order(
    session: Session, *, platform_id: str, order_pk: str, amount: int, now: datetime
) -> RefundView:
    """Reverse ``amount`` of a split order from the parties' wallets, in proportion to what
    each still has from it, back through clearing to the PSP receivable: one ledger batch.

    409 ``split_pending`` before the split completed; 422 ``refund_exceeds_order`` past the
    order amount; 402 ``insufficient_funds`` (nothing written) if a wallet cannot pay its part.
    """
    check_amount(amount)
    # The order row lock serializes refunds of one order (the refunded total is read under it).
    order = session.execute(
        select(Order)
        .where(Order.id == order_pk, Order.platform_id == platform_id)
        .with_for_update(key_share=True)
    ).scalar_one_or_none()
    if order is None:
        raise DomainError("order_not_found", f"no order {order_pk}", status=404)
    if order.split_status != "completed":
        raise DomainError(
            "split_pending", "the order's split is not completed yet; retry later", status=409
        )
    left = order.amount - order.refunded_amount
    if amount > left:
        raise DomainError(
            "refund_exceeds_order",
            f"at most {left} of this order is left to refund",
            field="amount",
        )
    locked = session.execute(
        select(
            Allocation.id,
            Allocation.party_id,
            Allocation.amount,
            Allocation.refunded_amount,
            Allocation.position,
        )
        .where(Allocation.order_pk == order.id)
        .order_by(Allocation.id)  # locks in id order, as apply_credits takes them
        .with_for_update(key_share=True)
    ).all()
    allocations = sorted(locked, key=lambda a: a.position)
    wallets = dict(
        session.execute(
            select(Party.id, Party.wallet_account_id).where(
                Party.id.in_([a.party_id for a in allocations])
            )
        ).all()
    )
    # Weights: what each party still has from this order, so no part exceeds it.
    shares = allocate(amount, [a.amount - a.refunded_amount for a in allocations])
    refund_id = new_id("rfd")
    accounts = platform_accounts(session, platform_id=platform_id, currency=order.currency, now=now)
    ops: list[ledger.Operation] = []
    parts: list[dict[str, Any]] = []
    for i, (a, share) in enumerate(zip(allocations, shares, strict=True)):
        if share == 0:
            continue
        ops.append(
            ledger.NewTransfer(
                debit_account_id=wallets[a.party_id],
                credit_account_id=accounts[CLEARING_CODE],
                amount=share,
                currency=order.currency,
                client_id=f"{refund_id}-{i}",
                code="refund_reversal",
            )
        )
        parts.append({"party": a.party_id, "allocation_id": a.id, "amount": share})
    ops.append(
        ledger.NewTransfer(
            debit_account_id=accounts[CLEARING_CODE],
            credit_account_id=accounts[PSP_RECEIVABLE_CODE],
            amount=amount,
            currency=order.currency,
            client_id=refund_id,
            code="refund",
        )
    )
    try:
        ledger.create_transfers(session, ops, now=now, scope=platform_scope(platform_id))
    except ledger.LedgerError as exc:
        if exc.code == "insufficient_funds" and exc.index is not None and exc.index < len(parts):
            # A party's reversal: name the party and the field the caller sent, not the
            # ledger's ``debit_account`` of a batch the caller never saw.
            part = parts[exc.index]
            raise DomainError(
                "insufficient_funds",
                f"party {part['party']} cannot pay back its part of the refund "
                f"({part['amount']} {order.currency}): {exc.message}",
                status=402,
                field="amount",
            ) from exc
        exc.index = None  # the batch is ours, not the caller's: name no transfer in it
        raise
    allocations_table = table_of(Allocation)
    session.connection().execute(
        update(allocations_table)
        .where(allocations_table.c.id == bindparam("alc_id"))
        .values(refunded_amount=allocations_table.c.refunded_amount + bindparam("share")),
        [{"alc_id": p["allocation_id"], "share": p["amount"]} for p in parts],
    )
    order.refunded_amount += amount
    refund = Refund(
        id=refund_id,
        platform_id=platform_id,
        order_pk=order.id,
        amount=amount,
        currency=order.currency,
        parts=[{"party": p["party"], "amount": p["amount"]} for p in parts],
        created_at=now,
    )
    session.add(refund)
    session.flush()
    publish(
        session,
        "order.refunded",
        {
            "platform_id": platform_id,
            "order": order.id,
            "order_id": order.order_id,
            "refund_id": refund_id,
            "amount": amount,
            "currency": order.currency,
            "refunded_amount": order.refunded_amount,
            "parts": refund.parts,
        },
        now=now,
    )
    return refund_view(refund)
