"""Parties: someone a platform pays, each with a wallet that never goes below zero."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace.models import (
    Party,
)
from potluck.money import check_currency
from potluck.paging import page_of

PARTY_KINDS = ("merchant", "partner", "platform")
WALLET_CODE = "wallet"


def platform_scope(platform_id: str) -> str:
    return f"platform:{platform_id}"


def platform_book(platform_id: str) -> str:
    """A platform's money: its own book (one ledger per currency), as in the ledger API."""
    return f"platform:{platform_id}"


@dataclass(frozen=True, slots=True)
class PartyView:
    id: str
    platform_id: str
    name: str
    kind: str
    currency: str
    wallet_account_id: str
    created_at: datetime


def _view(p: Party) -> PartyView:
    return PartyView(
        id=p.id,
        platform_id=p.platform_id,
        name=p.name,
        kind=p.kind,
        currency=p.currency,
        wallet_account_id=p.wallet_account_id,
        created_at=utc(p.created_at),
    )


def create_party(
    session: Session, *, platform_id: str, name: str, kind: str, currency: str, now: datetime
) -> PartyView:
    """A party and its wallet (an account that can never go below zero)."""
    if kind not in PARTY_KINDS:
        raise DomainError(
            "invalid_party_kind", f"kind must be one of {', '.join(PARTY_KINDS)}", field="kind"
        )
    check_currency(currency)
    party_id = new_id("pty")
    wallet = ledger.create_account(
        session,
        currency=currency,
        code=WALLET_CODE,
        now=now,
        book=platform_book(platform_id),
        scope=platform_scope(platform_id),
        owner=party_id,
        flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
    )
    party = Party(
        id=party_id,
        platform_id=platform_id,
        name=name,
        kind=kind,
        currency=currency,
        wallet_account_id=wallet.id,
        created_at=now,
    )
    session.add(party)
    session.flush()
    return _view(party)


def get_party(session: Session, party_id: str, *, platform_id: str) -> PartyView:
    """The platform's party, or 404 ``party_not_found`` (another platform's party included)."""
    party = session.execute(
        select(Party).where(Party.id == party_id, Party.platform_id == platform_id)
    ).scalar_one_or_none()
    if party is None:
        raise DomainError("party_not_found", f"no party {party_id}", status=404)
    return _view(party)


def list_parties(
    session: Session, *, platform_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[PartyView], bool]:
    query = select(Party).where(Party.platform_id == platform_id)
    rows, more = page_of(
        session,
        query,
        Party.id,
        visible=Party.platform_id == platform_id,
        limit=limit,
        starting_after=starting_after,
        noun="party",
    )
    return [_view(p) for p in rows], more


def wallet_balance(session: Session, party: PartyView) -> ledger.AccountView:
    """The party's wallet account, read from the ledger (total, available, held)."""
    return ledger.get_account(session, party.wallet_account_id)
