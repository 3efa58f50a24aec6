"""Payout use cases: bank accounts, payouts (hold, transitions), reading them.

Each function takes the caller's session (one unit of work) and raises ``DomainError``s before
writing anything. The money side is the ledger: a payout holds its amount on the party's
wallet with a pending transfer to the platform's ``payout_in_transit`` account; completion
posts the hold, failure voids it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.paging import page_of
from potluck.payouts import routing, states
from potluck.payouts.models import BankAccount, Payout, PayoutTransition

IN_TRANSIT_CODE = "payout_in_transit"
HOLD_CODE = "payout"
# A payout's hold (and its post or void) is Potluck's, not the platform's: in the system
# scope, the platform's ledger API (which works in ``platform:<id>``) cannot post or void it
# behind the payout's back. It still shows in the wallet's entries.
HOLD_SCOPE = ledger.SYSTEM_SCOPE


# ------------------------------------------------------------------ views


@dataclass(frozen=True, slots=True)
class BankAccountView:
    id: str
    party_id: str
    holder_name: str
    routing_type: str
    routing_value: str | None
    account_number_masked: str
    last4: str
    country: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TransitionView:
    status: str
    at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class PayoutView:
    id: str
    platform_id: str
    party_id: str
    bank_account_id: str
    amount: int
    currency: str
    status: str
    hold_id: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    bank_reference: str | None
    created_at: datetime
    updated_at: datetime
    history: tuple[TransitionView, ...]


def _bank_view(b: BankAccount) -> BankAccountView:
    return BankAccountView(
        id=b.id,
        party_id=b.party_id,
        holder_name=b.holder_name,
        routing_type=b.routing_type,
        routing_value=b.routing_value,
        account_number_masked=routing.mask(b.account_number),
        last4=b.account_number[-4:],
        country=b.country,
        created_at=utc(b.created_at),
    )


def _payout_view(p: Payout, history: list[PayoutTransition]) -> PayoutView:
    return PayoutView(
        id=p.id,
        platform_id=p.platform_id,
        party_id=p.party_id,
        bank_account_id=p.bank_account_id,
        amount=p.amount,
        currency=p.currency,
        status=p.status,
        hold_id=p.hold_id,
        attempts=p.attempts,
        last_error=p.last_error,
        next_attempt_at=utc(p.next_attempt_at) if p.next_attempt_at else None,
        bank_reference=p.bank_reference,
        created_at=utc(p.created_at),
        updated_at=utc(p.updated_at),
        history=tuple(TransitionView(t.status, utc(t.at), t.reason) for t in history),
    )


def _histories(session: Session, payout_ids: list[str]) -> dict[str, list[PayoutTransition]]:
    out: dict[str, list[PayoutTransition]] = {pid: [] for pid in payout_ids}
    if not payout_ids:
        return out
    rows = session.execute(
        select(PayoutTransition)
        .where(PayoutTransition.payout_id.in_(payout_ids))
        .order_by(PayoutTransition.id)
    ).scalars()
    for t in rows:
        out[t.payout_id].append(t)
    return out


# ------------------------------------------------------------------ bank accounts


def add_bank_account(
    session: Session,
    *,
    platform_id: str,
    party_id: str,
    holder_name: str,
    account_number: str,
    routing_type: str,
    routing_value: str | None,
    now: datetime,
) -> BankAccountView:
    party = marketplace.get_party(session, party_id, platform_id=platform_id)
    holder = holder_name.strip()
    if not holder:
        raise routing.InvalidBankAccount("holder_name must not be blank", field="holder_name")
    details = routing.validate(routing_type, routing_value, account_number)
    account = BankAccount(
        id=new_id("ba"),
        platform_id=platform_id,
        party_id=party.id,
        holder_name=holder,
        routing_type=details.routing_type,
        routing_value=details.routing_value,
        account_number=details.account_number,
        country=details.country,
        created_at=now,
    )
    session.add(account)
    session.flush()
    return _bank_view(account)


def list_bank_accounts(
    session: Session,
    *,
    platform_id: str,
    party_id: str,
    limit: int,
    starting_after: str | None = None,
) -> tuple[list[BankAccountView], bool]:
    marketplace.get_party(session, party_id, platform_id=platform_id)
    query = select(BankAccount).where(BankAccount.party_id == party_id)
    rows, more = page_of(
        session,
        query,
        BankAccount.id,
        visible=BankAccount.party_id == party_id,
        limit=limit,
        starting_after=starting_after,
        noun="bank account",
    )
    return [_bank_view(b) for b in rows], more


def _bank_account_of(session: Session, bank_account_id: str, *, party_id: str) -> BankAccount:
    account = session.get(BankAccount, bank_account_id)
    if account is None or account.party_id != party_id:
        # Another party's account (or another platform's) is as good as missing.
        raise DomainError(
            "bank_account_not_found",
            f"party {party_id} has no bank account {bank_account_id}",
            status=404,
            field="bank_account",
        )
    return account


# ------------------------------------------------------------------ the hold


def in_transit_account_id(platform_id: str, currency: str) -> str:
    """A fixed id per platform and currency, so that creating it lazily cannot make two."""
    digest = hashlib.sha256(f"{platform_id}:{currency}".encode()).hexdigest()[:26]
    return f"acc_pit_{digest}"


def ensure_in_transit_account(
    session: Session, *, platform_id: str, currency: str, now: datetime
) -> str:
    """The platform's ``payout_in_transit`` account in ``currency``, created on first use."""
    account_id = in_transit_account_id(platform_id, currency)
    try:
        ledger.get_account(session, account_id)
        return account_id
    except ledger.LedgerError:
        pass
    try:
        with session.begin_nested():
            ledger.create_account(
                session,
                currency=currency,
                code=IN_TRANSIT_CODE,
                now=now,
                book=marketplace.platform_book(platform_id),
                scope=marketplace.platform_scope(platform_id),
                owner=f"platform:{platform_id}",
                account_id=account_id,
            )
    except IntegrityError:
        pass  # a concurrent first payout created it; it is committed and ours to use
    return account_id


# ------------------------------------------------------------------ payouts


def event_data(p: Payout, *, reason: str | None = None) -> dict[str, Any]:
    return {
        "platform_id": p.platform_id,
        "payout_id": p.id,
        "party_id": p.party_id,
        "bank_account_id": p.bank_account_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status,
        "attempts": p.attempts,
        "reason": reason,
        "hold_transfer_id": p.hold_id,
        "bank_reference": p.bank_reference,
    }


def transition(
    session: Session, payout: Payout, target: str, *, now: datetime, reason: str | None
) -> None:
    """Move ``payout`` to ``target`` if the table allows it: history row and event included.

    A refused transition raises ``InvalidPayoutTransition`` before anything is changed.
    """
    states.check_transition(payout.id, payout.status, target)
    payout.status = target
    payout.updated_at = now
    if target in states.TERMINAL:
        payout.next_attempt_at = None
        payout.locked_until = None
        payout.claim_id = None
        payout.check_status = False
    _record(session, payout, now=now, reason=reason)


def _record(session: Session, payout: Payout, *, now: datetime, reason: str | None) -> None:
    session.add(PayoutTransition(payout_id=payout.id, status=payout.status, reason=reason, at=now))
    publish(session, states.EVENT_OF[payout.status], event_data(payout, reason=reason), now=now)


def create_payout(
    session: Session,
    *,
    platform_id: str,
    party_id: str,
    bank_account_id: str,
    amount: int,
    currency: str,
    now: datetime,
) -> PayoutView:
    """Hold ``amount`` on the party's wallet and record a ``pending`` payout.

    Insufficient available balance is the ledger's 402 ``insufficient_funds``; the caller's
    transaction then rolls back, so neither a payout nor a hold is left behind.
    """
    try:
        party = marketplace.get_party(session, party_id, platform_id=platform_id)
    except DomainError as exc:
        if exc.code != "party_not_found":
            raise
        # Named like ``bank_account_not_found``: the caller sent it in the body as ``party``.
        raise DomainError(exc.code, exc.message, status=exc.status, field="party") from None
    bank_account = _bank_account_of(session, bank_account_id, party_id=party.id)
    if currency != party.currency:
        raise DomainError(
            "currency_mismatch",
            f"party {party.id} is paid in {party.currency}, not {currency}",
            field="currency",
        )
    if amount <= 0:
        raise DomainError("invalid_amount", "amount must be positive", field="amount")
    in_transit = ensure_in_transit_account(
        session, platform_id=platform_id, currency=currency, now=now
    )
    payout_id = new_id("po")
    payout = Payout(
        id=payout_id,
        platform_id=platform_id,
        party_id=party.id,
        bank_account_id=bank_account.id,
        amount=amount,
        currency=currency,
        status=states.PENDING,
        hold_id=payout_id,
        attempts=0,
        next_attempt_at=now,
        check_status=False,
        created_at=now,
        updated_at=now,
    )
    session.add(payout)
    session.flush()
    _record(session, payout, now=now, reason="requested")
    session.flush()
    # The hold last: it locks the wallet and the platform's in-transit account (shared by
    # every payout of the platform) until commit, so nothing else should run after it.
    try:
        ledger.create_transfer(
            session,
            ledger.NewTransfer(
                debit_account_id=party.wallet_account_id,
                credit_account_id=in_transit,
                amount=amount,
                client_id=payout_id,
                currency=currency,
                code=HOLD_CODE,
                pending=True,  # no timeout: the hold lasts until the bank has answered
                metadata={"payout_id": payout_id, "party_id": party.id},
            ),
            now=now,
            scope=HOLD_SCOPE,
        )
    except ledger.LedgerError as exc:
        if exc.code != "insufficient_funds":
            raise
        # The caller sent ``amount``, not a ledger ``debit_account``: name what they sent.
        available = ledger.get_account(session, party.wallet_account_id).available
        raise DomainError(
            "insufficient_funds",
            f"party {party.id} has {available} {currency} available, {amount} needed",
            status=402,
            field="amount",
        ) from exc
    return _payout_view(
        payout,
        [PayoutTransition(payout_id=payout_id, status=states.PENDING, reason="requested", at=now)],
    )


def post_hold(session: Session, payout: Payout, *, now: datetime) -> None:
    ledger.create_transfer(
        session,
        ledger.PostPending(pending_client_id=payout.hold_id, client_id=f"{payout.hold_id}-post"),
        now=now,
        scope=HOLD_SCOPE,
    )


def void_hold(session: Session, payout: Payout, *, now: datetime) -> None:
    ledger.create_transfer(
        session,
        ledger.VoidPending(pending_client_id=payout.hold_id, client_id=f"{payout.hold_id}-void"),
        now=now,
        scope=HOLD_SCOPE,
    )


def complete(session: Session, payout: Payout, *, now: datetime, reference: str | None) -> None:
    """processing → completed: the hold is posted (the money has left the wallet).

    ``last_error`` is cleared: it describes a problem on the way (a transient failure, a
    lease that expired), which the payout no longer has; the history keeps what happened.
    """
    states.check_transition(payout.id, payout.status, states.COMPLETED)
    payout.bank_reference = reference
    payout.last_error = None
    transition(session, payout, states.COMPLETED, now=now, reason="paid by the bank")
    session.flush()
    post_hold(session, payout, now=now)  # last: it locks the shared in-transit account


def fail(session: Session, payout: Payout, *, now: datetime, reason: str) -> None:
    """→ failed: the hold is voided (the money is available again)."""
    states.check_transition(payout.id, payout.status, states.FAILED)
    payout.last_error = reason[:500]
    transition(session, payout, states.FAILED, now=now, reason=reason[:500])
    session.flush()
    void_hold(session, payout, now=now)  # last: it locks the shared in-transit account


def lock_payout(session: Session, payout_id: str, *, platform_id: str | None = None) -> Payout:
    query = select(Payout).where(Payout.id == payout_id)
    if platform_id is not None:
        query = query.where(Payout.platform_id == platform_id)
    payout = session.execute(query.with_for_update()).scalar_one_or_none()
    if payout is None:
        raise DomainError("payout_not_found", f"no payout {payout_id}", status=404)
    return payout


def cancel_payout(
    session: Session, payout_id: str, *, platform_id: str, now: datetime
) -> PayoutView:
    """Cancel a payout no worker has taken yet (pending → failed, hold voided)."""
    payout = lock_payout(session, payout_id, platform_id=platform_id)
    if payout.status != states.PENDING:
        # processing → failed is the worker's to decide: the bank may be paying right now.
        raise states.InvalidPayoutTransition(
            payout.id,
            payout.status,
            states.FAILED,
            message=f"only a pending payout can be cancelled; payout {payout.id} is "
            + (
                "processing (the bank may be paying it)"
                if payout.status == states.PROCESSING
                else payout.status
            ),
        )
    fail(session, payout, now=now, reason="cancelled")
    session.flush()
    return get_payout(session, payout_id, platform_id=platform_id)


def get_payout(session: Session, payout_id: str, *, platform_id: str) -> PayoutView:
    payout = session.execute(
        select(Payout).where(Payout.id == payout_id, Payout.platform_id == platform_id)
    ).scalar_one_or_none()
    if payout is None:
        raise DomainError("payout_not_found", f"no payout {payout_id}", status=404)
    return _payout_view(payout, _histories(session, [payout.id])[payout.id])


def list_payouts(
    session: Session,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None = None,
    party_id: str | None = None,
    status: str | None = None,
) -> tuple[list[PayoutView], bool]:
    query = select(Payout).where(Payout.platform_id == platform_id)
    if party_id is not None:
        # A party that is not yours is 404, as an account filter is in the ledger's lists.
        marketplace.get_party(session, party_id, platform_id=platform_id)
        query = query.where(Payout.party_id == party_id)
    if status is not None:
        query = query.where(Payout.status == status)
    page, more = page_of(
        session,
        query,
        Payout.id,
        visible=Payout.platform_id == platform_id,
        limit=limit,
        starting_after=starting_after,
        noun="payout",
    )
    histories = _histories(session, [p.id for p in page])
    return [_payout_view(p, histories[p.id]) for p in page], more
