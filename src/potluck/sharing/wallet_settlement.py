"""Settling an IOU with real money: ``POST /v1/groups/{id}/settlements`` with ``method: "wallet"``.

Two books, one transaction: the money moves payer's wallet → payee's wallet (book ``money``,
``wallets.service.send`` with purpose ``group_settlement``), and the IOU settlement (book
``iou``, ``balances.record_settlement`` with method ``wallet``) is recorded by the wallet
payment's completion hook, which wallets runs in the transaction that posts the money: at once
when the payment completes, or in the reviewer's approving transaction when risk holds it for
review. If either side fails, both roll back.

The settlement's id is derived from the wallet transfer's (``stl_`` + its ULID), so a second
run of the hook for one transfer cannot record a second settlement, and the reply can find it.

Lock order: the wallets first (``send``), the group row last (in ``record_settlement``), the
same order as an approval (wallets, then the hook), so the two never deadlock; the members are
checked up front without a lock and again under the group lock by ``record_settlement``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.sharing import balances
from potluck.sharing.balances import WALLET_METHOD, SettlementView
from potluck.sharing.groups import membership
from potluck.sharing.models import Settlement, SharingMember
from potluck.wallets import service as wallets

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

PURPOSE = "group_settlement"

RECORDED = "recorded"
IN_REVIEW = "in_review"


@dataclass(frozen=True, slots=True)
class WalletSettlement:
    """The outcome: ``status`` is the wallet transfer's (completed, in_review, failed,
    blocked); ``settlement`` is set once the IOU settlement is recorded (completed)."""

    transfer: wallets.WalletTransferView
    settlement: SettlementView | None

    @property
    def status(self) -> str:
        return self.transfer.status


def settlement_id_of(transfer_id: str) -> str:
    return "stl_" + transfer_id.partition("_")[2]


def client_id_of(group_id: str, idempotency_key: str | None) -> str | None:
    """The wallet transfer's client id from the request's Idempotency-Key (as wallets' own
    route does, with a prefix and the group of its own): a retry after the key's 24 hours,
    or after a crash between commit and reply, finds the first payment instead of paying
    again."""
    if not idempotency_key:
        return None
    digest = hashlib.sha256(f"{group_id}:{idempotency_key}".encode()).hexdigest()[:40]
    return "gs-" + digest


def settle_with_wallet(
    session: Session,
    app: Potluck,
    *,
    user_id: str,
    group_id: str,
    from_member_id: str,
    to_member_id: str,
    amount: int,
    device_id: str | None = None,
    client_id: str | None = None,
    now: datetime,
) -> WalletSettlement:
    """The caller (the paying member, ``from``) pays ``to`` from their wallet in the group's
    currency. Nothing is committed here; a ``failed`` or ``blocked`` payment changes neither
    book (its wallet transfer is kept, as every refused payment is)."""
    group, me = membership(session, group_id, user_id=user_id)
    if from_member_id == to_member_id:
        raise DomainError("same_member", "a member cannot pay themselves", field="to")
    members = {
        m.id: m
        for m in session.execute(
            select(SharingMember).where(
                SharingMember.id.in_([from_member_id, to_member_id]),
                SharingMember.group_id == group.id,
                SharingMember.removed_at.is_(None),
            )
        ).scalars()
    }
    for field, mid in (("from", from_member_id), ("to", to_member_id)):
        if mid not in members:
            raise DomainError("unknown_member", f"{mid} is not a member of this group", field=field)
    if from_member_id != me.id:
        raise DomainError(
            "not_the_payer",
            "only the paying member can pay with their wallet: 'from' must be you",
            status=403,
            field="from",
        )
    payee = members[to_member_id].user_id
    if payee is None:
        raise DomainError(
            "member_not_registered",
            f"{to_member_id} has no Potluck account yet, so no wallet to pay into",
            field="to",
        )
    transfer = wallets.send(
        session,
        app,
        payer_user_id=user_id,
        to=payee,
        amount=amount,
        currency=group.currency,
        device_id=device_id,
        purpose=PURPOSE,
        reference={"group": group.id, "from": from_member_id, "to": to_member_id},
        client_id=client_id,
        now=now,
    )
    recorded = None
    if transfer.status == wallets.COMPLETED:
        st = session.get(Settlement, settlement_id_of(transfer.id))
        if st is None:  # pragma: no cover - the completion hook records it or raises
            raise RuntimeError(f"wallet transfer {transfer.id} completed without its settlement")
        recorded = balances._settlement_view(st)
    return WalletSettlement(transfer=transfer, settlement=recorded)


def on_transfer_completed(
    session: Session, app: Potluck, transfer: wallets.WalletTransferView, now: datetime
) -> None:
    """Wallets' completion hook for ``group_settlement``: record the IOU settlement in the
    transaction that posts the money (an approval included)."""
    ref = transfer.reference or {}
    balances.record_settlement(
        session,
        user_id=transfer.payer_user_id,
        group_id=str(ref["group"]),
        from_member_id=str(ref["from"]),
        to_member_id=str(ref["to"]),
        amount=transfer.amount,
        method=WALLET_METHOD,
        now=now,
        wallet_transfer_id=transfer.id,
        settlement_id=settlement_id_of(transfer.id),
    )


def register() -> None:
    wallets.register_completion_hook(PURPOSE, on_transfer_completed)
