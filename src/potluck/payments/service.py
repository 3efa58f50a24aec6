"""Payment intents: create, read, cancel, refund, and the one transition function every path
(webhook, reconciliation, cancel) goes through.

``from potluck.payments import service as payments``. Every function takes the caller's
session (one unit of work); provider calls are made with that session bound
(``providers.bound_session``) so that the sandbox, which keeps its state in our database,
writes in the same transaction.

Money: on success the captured amount moves from the provider's clearing account (a
receivable: it goes negative, the provider owes it to us) to the intent's destination account
(an escrow, a platform's ``payments_received``…), client id ``pay-<intent_id>``. A refund
moves it back, client id ``rfd-<refund_id>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from potluck.bus.outbox import publish, publish_many
from potluck.clock import utc
from potluck.db import find_or_create
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.money import MoneyError, check_currency
from potluck.paging import page_of
from potluck.payments import states
from potluck.payments.models import PaymentAccount, PaymentIntent, PaymentRefund
from potluck.payments.providers import bound_session
from potluck.payments.providers.base import IntentStatus, ProviderIntent

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

CLEARING_CODE = "provider_clearing"
RECEIVED_CODE = "payments_received"
PURPOSE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_METADATA_KEYS = 20
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500


class PaymentsError(DomainError):
    """A refused payments operation. Nothing was written."""


@dataclass(frozen=True, slots=True)
class IntentView:
    id: str
    amount: int
    currency: str
    payer_user_id: str | None
    payer_email: str | None
    purpose: str
    status: str
    provider: str
    provider_ref: str | None
    payment_url: str | None
    captured_amount: int
    refunded_amount: int
    metadata: dict[str, str]
    platform_id: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RefundView:
    id: str
    intent_id: str
    amount: int
    currency: str
    status: str
    provider_ref: str | None
    reason: str
    created_at: datetime


def intent_view(p: PaymentIntent) -> IntentView:
    return IntentView(
        id=p.id,
        amount=p.amount,
        currency=p.currency,
        payer_user_id=p.payer_user_id,
        payer_email=p.payer_email,
        purpose=p.purpose,
        status=p.status,
        provider=p.provider,
        provider_ref=p.provider_ref,
        payment_url=p.payment_url,
        captured_amount=p.captured_amount,
        refunded_amount=p.refunded_amount,
        metadata=dict(p.meta or {}),
        platform_id=p.platform_id,
        failure_reason=p.failure_reason,
        created_at=utc(p.created_at),
        updated_at=utc(p.updated_at),
    )


def refund_view(r: PaymentRefund) -> RefundView:
    return RefundView(
        id=r.id,
        intent_id=r.intent_id,
        amount=r.amount,
        currency=r.currency,
        status=r.status,
        provider_ref=r.provider_ref,
        reason=r.reason,
        created_at=utc(r.created_at),
    )


# ------------------------------------------------------------------ accounts


def payment_account(
    session: Session,
    *,
    book: str,
    currency: str,
    code: str,
    provider: str = "",
    scope: str,
    owner: str | None,
    flags: ledger.AccountFlags,
    now: datetime,
) -> str:
    """The ledger account payments keeps under ``(book, currency, code, provider)``, opened on
    first use (a concurrent first use on PostgreSQL waits, then reads the winner's)."""
    where = (
        PaymentAccount.book == book,
        PaymentAccount.currency == currency,
        PaymentAccount.code == code,
        PaymentAccount.provider == provider,
    )

    def find() -> str | None:
        return session.execute(select(PaymentAccount.account_id).where(*where)).scalar_one_or_none()

    def create() -> str:
        account = ledger.create_account(
            session,
            currency=currency,
            code=code,
            now=now,
            book=book,
            scope=scope,
            owner=owner,
            flags=flags,
        )
        session.execute(
            insert(PaymentAccount),
            [
                {
                    "book": book,
                    "currency": currency,
                    "code": code,
                    "provider": provider,
                    "account_id": account.id,
                }
            ],
        )
        return account.id

    return find_or_create(session, find=find, create=create)


def clearing_account(
    session: Session, *, destination: ledger.AccountView, provider: str, now: datetime
) -> str:
    """The provider's clearing account in the destination's book and currency (a receivable:
    no overdraft flag, it goes negative by what the provider owes us)."""
    return payment_account(
        session,
        book=destination.book,
        currency=destination.currency,
        code=CLEARING_CODE,
        provider=provider,
        scope=ledger_scope_of(destination),
        owner=f"provider:{provider}",
        flags=ledger.AccountFlags(),
        now=now,
    )


def ledger_scope_of(destination: ledger.AccountView) -> str:
    """The scope an intent's money moves in: the destination's own when it is its book's (a
    platform's), else the system scope (book ``money`` holds accounts of many scopes, e.g. one
    wallet per person, and shares one clearing account per currency and provider)."""
    return destination.scope if destination.scope == destination.book else ledger.SYSTEM_SCOPE


def platform_received_account(
    session: Session, *, platform_id: str, currency: str, now: datetime
) -> str:
    """A platform's ``payments_received`` account for ``currency`` (its own book)."""
    from potluck.marketplace.parties import platform_book, platform_scope

    return payment_account(
        session,
        book=platform_book(platform_id),
        currency=currency,
        code=RECEIVED_CODE,
        scope=platform_scope(platform_id),
        owner=platform_scope(platform_id),
        flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
        now=now,
    )


# ------------------------------------------------------------------ validation


def _check_amount(amount: Any, currency: Any) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentsError("invalid_amount", "amount must be a positive integer", field="amount")
    if amount > ledger.MAX_AMOUNT:
        raise PaymentsError(
            "invalid_amount", f"amount must be at most {ledger.MAX_AMOUNT}", field="amount"
        )
    try:
        check_currency(currency)
    except MoneyError as exc:
        raise PaymentsError(exc.code, str(exc), field="currency") from None


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    meta = dict(metadata or {})
    if len(meta) > MAX_METADATA_KEYS:
        raise PaymentsError(
            "invalid_metadata", f"at most {MAX_METADATA_KEYS} metadata keys", field="metadata"
        )
    for k, v in meta.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k:
            raise PaymentsError(
                "invalid_metadata", "metadata maps strings to strings", field="metadata"
            )
        if len(k) > MAX_METADATA_KEY or len(v) > MAX_METADATA_VALUE:
            raise PaymentsError(
                "invalid_metadata",
                f"metadata keys are at most {MAX_METADATA_KEY} characters and values at "
                f"most {MAX_METADATA_VALUE}",
                field="metadata",
            )
    return meta


def provider_named(app: Potluck, name: str | None) -> Any:
    name = name or app.settings.payment_provider
    provider = app.providers.get(name)
    if provider is None:
        raise PaymentsError(
            "unknown_provider", f"payment provider {name!r} is not configured", field="provider"
        )
    return provider


# ------------------------------------------------------------------ intents


def create_intent(
    session: Session,
    app: Potluck,
    *,
    amount: int,
    currency: str,
    purpose: str,
    destination_account_id: str,
    payer_user_id: str | None = None,
    payer_email: str | None = None,
    platform_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    client_id: str | None = None,
    provider: str | None = None,
    now: datetime,
) -> IntentView:
    """A new intent in ``requires_payment`` with the provider's payment link; publishes
    ``payment.requested``. The same ``client_id`` again returns the first intent."""
    _check_amount(amount, currency)
    if not isinstance(purpose, str) or not PURPOSE_PATTERN.match(purpose):
        raise PaymentsError(
            "invalid_purpose", "purpose is a lower-case word (a-z, 0-9, _)", field="purpose"
        )
    meta = _check_metadata(metadata)
    if client_id is not None:
        existing = session.execute(
            select(PaymentIntent).where(PaymentIntent.client_id == client_id)
        ).scalar_one_or_none()
        if existing is not None:
            return _same_request(existing, amount=amount, currency=currency, purpose=purpose)
    adapter = provider_named(app, provider)
    try:
        destination = ledger.get_account(session, destination_account_id)
    except ledger.LedgerError:
        raise PaymentsError(
            "account_not_found",
            f"no ledger account {destination_account_id}",
            status=404,
            field="destination_account_id",
        ) from None
    if destination.currency != currency:
        raise PaymentsError(
            "currency_mismatch",
            f"the destination account holds {destination.currency}, not {currency}",
            field="currency",
        )
    clearing = clearing_account(session, destination=destination, provider=adapter.name, now=now)
    intent_id = new_id("pi")
    with bound_session(session):
        remote: ProviderIntent = adapter.create_intent(
            intent_id=intent_id,
            amount=amount,
            currency=currency,
            description=purpose,
            metadata=meta,
        )
    intent = PaymentIntent(
        id=intent_id,
        platform_id=platform_id,
        client_id=client_id,
        amount=amount,
        currency=currency,
        purpose=purpose,
        payer_user_id=payer_user_id,
        payer_email=payer_email,
        status=states.REQUIRES_PAYMENT,
        provider=adapter.name,
        provider_ref=remote.provider_ref,
        payment_url=remote.payment_url,
        destination_account_id=destination_account_id,
        clearing_account_id=clearing,
        ledger_scope=ledger_scope_of(destination),
        captured_amount=0,
        refunded_amount=0,
        meta=meta,
        failure_reason=None,
        created_at=now,
        updated_at=now,
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    savepoint = session.begin_nested() if postgres and client_id is not None else None
    session.add(intent)
    try:
        session.flush()
    except IntegrityError:
        if savepoint is None:
            raise
        savepoint.rollback()  # a concurrent request with this client id won
        winner = session.execute(
            select(PaymentIntent).where(PaymentIntent.client_id == client_id)
        ).scalar_one()
        return _same_request(winner, amount=amount, currency=currency, purpose=purpose)
    if savepoint is not None:
        savepoint.commit()
    publish(
        session,
        "payment.requested",
        {**_event_data(intent), "payment_url": intent.payment_url},
        now=now,
    )
    return intent_view(intent)


def _same_request(
    existing: PaymentIntent, *, amount: int, currency: str, purpose: str
) -> IntentView:
    if (existing.amount, existing.currency, existing.purpose) != (amount, currency, purpose):
        raise PaymentsError(
            "intent_exists_with_different_fields",
            f"client id {existing.client_id} already made intent {existing.id} with other "
            "amount, currency or purpose",
            status=409,
            field="client_id",
        )
    return intent_view(existing)


def _event_data(p: PaymentIntent) -> dict[str, Any]:
    return {
        "intent": p.id,
        "purpose": p.purpose,
        "amount": p.amount,
        "currency": p.currency,
        "payer_user_id": p.payer_user_id,
        "platform_id": p.platform_id,
        "metadata": dict(p.meta or {}),
    }


def _visible(platform_id: str | None) -> Any:
    return True if platform_id is None else PaymentIntent.platform_id == platform_id


def _load(
    session: Session, intent_id: str, *, platform_id: str | None = None, lock: bool = False
) -> PaymentIntent:
    query = select(PaymentIntent).where(PaymentIntent.id == intent_id)
    if platform_id is not None:
        query = query.where(PaymentIntent.platform_id == platform_id)
    if lock:
        query = query.with_for_update()
    intent = session.execute(query).scalar_one_or_none()
    if intent is None:
        raise PaymentsError("intent_not_found", f"no payment intent {intent_id}", status=404)
    return intent


def get_intent(session: Session, intent_id: str, *, platform_id: str | None = None) -> IntentView:
    """404 ``intent_not_found`` when it does not exist or is another platform's."""
    return intent_view(_load(session, intent_id, platform_id=platform_id))


def list_intents(
    session: Session,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None,
    status: str | None = None,
) -> tuple[list[IntentView], bool]:
    visible = PaymentIntent.platform_id == platform_id
    query = select(PaymentIntent).where(visible)
    if status is not None:
        query = query.where(PaymentIntent.status == status)
    rows, more = page_of(
        session,
        query,
        PaymentIntent.id,
        visible=visible,
        limit=limit,
        starting_after=starting_after,
        noun="payment intent",
    )
    return [intent_view(r) for r in rows], more


def find_by_provider_ref(
    session: Session, provider: str, provider_ref: str, *, lock: bool = False
) -> PaymentIntent | None:
    query = _BY_REF_FOR_UPDATE if lock else _BY_REF
    return session.execute(query, {"provider": provider, "ref": provider_ref}).scalar_one_or_none()


_BY_REF = select(PaymentIntent).where(
    PaymentIntent.provider == bindparam("provider"),
    PaymentIntent.provider_ref == bindparam("ref"),
)
_BY_REF_FOR_UPDATE = _BY_REF.with_for_update()


def apply_status(
    session: Session,
    intent: PaymentIntent,
    status: str,
    *,
    now: datetime,
    captured_amount: int | None = None,
    failure_reason: str | None = None,
) -> bool:
    """Move a LOCKED intent to ``status`` if the transition table allows it, with its money
    and its event, in the caller's transaction. False (nothing done) when it does not: the
    same status again, or anything after a terminal state."""
    if not states.can_move(intent.status, status):
        return False
    changes: dict[str, Any] = {"status": status, "updated_at": now}
    transfer: ledger.NewTransfer | None = None
    if status == states.SUCCEEDED:
        captured = intent.amount if captured_amount is None else captured_amount
        if captured <= 0 or captured > intent.amount:
            captured = intent.amount  # a provider cannot capture more than was asked
        transfer = ledger.NewTransfer(
            debit_account_id=intent.clearing_account_id,
            credit_account_id=intent.destination_account_id,
            amount=captured,
            client_id=f"pay-{intent.id}",
            code="payment",
            metadata={"intent": intent.id, "purpose": intent.purpose},
        )
        changes["captured_amount"] = captured
    if status == states.FAILED:
        changes["failure_reason"] = (failure_reason or "declined")[:500]
    _write(session, intent, changes)
    data = _event_data(intent)
    if status == states.FAILED:
        data["failure_reason"] = intent.failure_reason
    if status == states.SUCCEEDED:
        data["captured_amount"] = intent.captured_amount
    # publish_many: Core on the session's connection (the ORM insert path costs more).
    publish_many(session, [(states.EVENT_OF[status], data)], now=now)
    if transfer is not None:
        # Last: the clearing account is shared by every payment of its book and currency, so
        # its row lock is held from here to the commit only.
        ledger.create_transfer(session, transfer, now=now, scope=intent.ledger_scope)
    return True


def _write(session: Session, intent: PaymentIntent, changes: dict[str, Any]) -> None:
    """UPDATE the intent's row with Core and record the values on the loaded object as
    already stored (the hot path of every webhook; the ORM's flush costs more than the SQL).
    A savepoint rolled back after this does not expire those values: do not keep using the
    object then (no caller does)."""
    if intent in session.dirty:  # unflushed ORM changes: keep one way of writing them
        for name, value in changes.items():
            setattr(intent, name, value)
        return
    session.connection().execute(_update_statement(tuple(changes)), {**changes, "row": intent.id})
    for name, value in changes.items():
        set_committed_value(intent, name, value)


_INTENTS = cast(Table, PaymentIntent.__table__)
_UPDATES: dict[tuple[str, ...], Any] = {}


def _update_statement(columns: tuple[str, ...]) -> Any:
    """``UPDATE payment_intents SET <columns> WHERE id = :row``, built once per column set."""
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = (
            _INTENTS.update()
            .where(_INTENTS.c.id == bindparam("row"))
            .values({name: bindparam(name) for name in columns})
        )
        _UPDATES[columns] = statement
    return statement


def sync_from_provider(
    session: Session, intent: PaymentIntent, remote: ProviderIntent, *, now: datetime
) -> bool:
    """Apply what the provider says about a LOCKED intent (reconciliation, cancel)."""
    status = IntentStatus(remote.status).value
    if status == states.SUCCEEDED and intent.status == states.REQUIRES_PAYMENT:
        # Through processing, as the webhooks would have: subscribers see both events.
        apply_status(session, intent, states.PROCESSING, now=now)
    return apply_status(
        session,
        intent,
        status,
        now=now,
        captured_amount=remote.captured_amount or None,
        failure_reason=remote.failure_reason,
    )


def cancel_intent(session: Session, app: Potluck, intent_id: str, *, now: datetime) -> IntentView:
    """Cancel an intent that is still open (requires_payment or processing); 409
    ``intent_not_cancelable`` otherwise. If the provider says it was paid meanwhile, the
    intent becomes succeeded instead (the reply shows it)."""
    intent = _load(session, intent_id, lock=True)
    return _cancel_locked(session, app, intent, now=now)


def cancel_platform_intent(
    session: Session, app: Potluck, intent_id: str, *, platform_id: str, now: datetime
) -> IntentView:
    intent = _load(session, intent_id, platform_id=platform_id, lock=True)
    return _cancel_locked(session, app, intent, now=now)


def _cancel_locked(
    session: Session, app: Potluck, intent: PaymentIntent, *, now: datetime
) -> IntentView:
    if not states.can_move(intent.status, states.CANCELED):
        raise PaymentsError(
            "intent_not_cancelable",
            f"payment intent {intent.id} is {intent.status}; only an open one can be canceled",
            status=409,
        )
    adapter = provider_named(app, intent.provider)
    if intent.provider_ref is not None:
        with bound_session(session):
            remote = adapter.cancel_intent(intent.provider_ref)
        if remote.status != IntentStatus.CANCELED:
            sync_from_provider(session, intent, remote, now=now)
            return intent_view(intent)
    apply_status(session, intent, states.CANCELED, now=now)
    return intent_view(intent)


# ------------------------------------------------------------------ refunds


def refund_intent(
    session: Session,
    app: Potluck,
    intent_id: str,
    *,
    amount: int | None = None,
    reason: str = "",
    client_id: str | None = None,
    now: datetime,
    platform_id: str | None = None,
) -> RefundView:
    """Give back ``amount`` (None: all that is left) of a succeeded intent.

    422 ``refund_exceeds_captured`` above what is left; 402 ``insufficient_funds`` when the
    destination account cannot cover it; 409 ``intent_not_refundable`` unless succeeded. The
    same ``client_id`` again returns the first refund.
    """
    intent = _load(session, intent_id, platform_id=platform_id, lock=True)
    if client_id is not None:
        existing = session.execute(
            select(PaymentRefund).where(
                PaymentRefund.intent_id == intent.id, PaymentRefund.client_id == client_id
            )
        ).scalar_one_or_none()
        if existing is not None:
            if amount is not None and amount != existing.amount:
                raise PaymentsError(
                    "refund_exists_with_different_fields",
                    f"client id {client_id} already made refund {existing.id} of {existing.amount}",
                    status=409,
                    field="client_id",
                )
            return refund_view(existing)
    if intent.status != states.SUCCEEDED:
        raise PaymentsError(
            "intent_not_refundable",
            f"payment intent {intent.id} is {intent.status}; only a succeeded one is refunded",
            status=409,
        )
    left = intent.captured_amount - intent.refunded_amount
    if amount is None:
        amount = left
    elif isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentsError("invalid_amount", "amount must be a positive integer", field="amount")
    if amount > left or amount <= 0:
        raise PaymentsError(
            "refund_exceeds_captured",
            f"{amount} is more than the {left} left to refund of payment intent {intent.id}",
            field="amount",
        )
    refund_id = new_id("re")
    try:
        ledger.create_transfer(
            session,
            ledger.NewTransfer(
                debit_account_id=intent.destination_account_id,
                credit_account_id=intent.clearing_account_id,
                amount=amount,
                client_id=f"rfd-{refund_id}",
                code="refund",
                metadata={"intent": intent.id, "refund": refund_id},
            ),
            now=now,
            scope=intent.ledger_scope,
        )
    except ledger.LedgerError as exc:
        raise PaymentsError(exc.code, exc.message, status=exc.status, field="amount") from None
    adapter = provider_named(app, intent.provider)
    assert intent.provider_ref is not None  # set at creation
    with bound_session(session):
        remote = adapter.refund(
            refund_id=refund_id,
            intent_provider_ref=intent.provider_ref,
            amount=amount,
            currency=intent.currency,
        )
    if remote.status == "failed":
        raise PaymentsError(
            "refund_declined", f"the provider declined refund of {intent.id}", status=502
        )
    refund = PaymentRefund(
        id=refund_id,
        intent_id=intent.id,
        client_id=client_id,
        amount=amount,
        currency=intent.currency,
        status="succeeded" if remote.status == "succeeded" else "pending",
        provider_ref=remote.provider_ref,
        reason=reason[:500],
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    intent.refunded_amount += amount
    intent.updated_at = now
    session.flush()
    publish(
        session,
        "payment.refunded",
        {
            "intent": intent.id,
            "refund": refund_id,
            "amount": amount,
            "currency": intent.currency,
            "refunded_amount": intent.refunded_amount,
            "purpose": intent.purpose,
            "metadata": dict(intent.meta or {}),
        },
        now=now,
    )
    return refund_view(refund)


def list_refunds(session: Session, intent_id: str) -> Sequence[RefundView]:
    rows = session.execute(
        select(PaymentRefund).where(PaymentRefund.intent_id == intent_id).order_by(PaymentRefund.id)
    ).scalars()
    return [refund_view(r) for r in rows]


def fail_refund(session: Session, refund: PaymentRefund, *, now: datetime) -> bool:
    """The provider could not pay a pending refund back: reverse its ledger transfer."""
    if refund.status != "pending":
        return False
    intent = _load(session, refund.intent_id, lock=True)
    ledger.create_transfer(
        session,
        ledger.NewTransfer(
            debit_account_id=intent.clearing_account_id,
            credit_account_id=intent.destination_account_id,
            amount=refund.amount,
            client_id=f"rfdrev-{refund.id}",
            code="refund_reversal",
            metadata={"intent": intent.id, "refund": refund.id},
        ),
        now=now,
        scope=intent.ledger_scope,
    )
    refund.status = "failed"
    refund.updated_at = now
    intent.refunded_amount -= refund.amount
    intent.updated_at = now
    return True
