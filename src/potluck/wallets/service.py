"""Wallets' use cases: wallets, payments between people and to merchants, reviews, top-ups,
payment requests. ``from potluck.wallets import service as wallets``.

Every function takes the caller's session (one unit of work) and commits nothing.

Ledger layout (book ``money`` unless said otherwise):

- a person's wallet: code ``wallet``, scope ``user:<id>``, no overdraft;
- a payment to a person: one transfer wallet → wallet, client id ``wtr-<transfer id>-1``;
- a payment to a merchant party, whose wallet lives in its platform's book: two transfers in
  one atomic batch, wallet → ``platform_bridge`` (money book, per platform and currency) and
  ``wallets_bridge`` (platform book, may go negative) → the party's wallet (``-2``). The two
  bridges always hold equal and opposite amounts: what the money book owes the platform's.
- a payment in review holds the first leg only (a pending transfer without timeout); approval
  posts it (``-post``) and, for a merchant, posts the second leg in the same batch; rejection
  voids it (``-void``).

Wallet transfers touch accounts of several scopes, so they are posted in the system scope.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish, publish_many
from potluck.clock import utc
from potluck.db import find_or_create
from potluck.errors import DomainError
from potluck.identity.models import User
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace.models import Party
from potluck.marketplace.parties import platform_book, platform_scope
from potluck.money import MoneyError, check_currency
from potluck.risk import service as risk
from potluck.wallets.models import (
    WalletAccount,
    WalletBridge,
    WalletRequest,
    WalletTopUp,
    WalletTransfer,
)

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

WALLET_CODE = "wallet"
MONEY_BOOK = "money"
PLATFORM_BRIDGE_CODE = "platform_bridge"
WALLETS_BRIDGE_CODE = "wallets_bridge"
TOP_UP_PURPOSE = "wallet_top_up"
MAX_NOTE = 280
CLIENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

COMPLETED = "completed"
FAILED = "failed"
BLOCKED = "blocked"
IN_REVIEW = "in_review"
REJECTED = "rejected"
TRANSFER_STATUSES = (COMPLETED, FAILED, BLOCKED, IN_REVIEW, REJECTED)
EVENT_OF = {
    COMPLETED: "transfer.completed",
    FAILED: "transfer.failed",
    IN_REVIEW: "transfer.in_review",
    REJECTED: "transfer.rejected",
    BLOCKED: "transfer.blocked",
}


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


# ------------------------------------------------------------------ views


@dataclass(frozen=True, slots=True)
class WalletTransferView:
    id: str
    client_id: str | None
    payer_user_id: str
    to_user_id: str | None
    to_party_id: str | None
    platform_id: str | None
    amount: int
    currency: str
    note: str | None
    purpose: str
    reference: dict[str, Any] | None
    device_id: str | None
    status: str
    failure_reason: str | None
    risk_decision_id: str | None
    risk_score: int | None
    risk_reasons: list[dict[str, Any]]
    reviewer_id: str | None
    created_at: datetime
    updated_at: datetime


def transfer_view(t: WalletTransfer) -> WalletTransferView:
    return WalletTransferView(
        id=t.id,
        client_id=t.client_id,
        payer_user_id=t.payer_user_id,
        to_user_id=t.to_user_id,
        to_party_id=t.to_party_id,
        platform_id=t.platform_id,
        amount=t.amount,
        currency=t.currency,
        note=t.note,
        purpose=t.purpose,
        reference=dict(t.reference) if t.reference else None,
        device_id=t.device_id,
        status=t.status,
        failure_reason=t.failure_reason,
        risk_decision_id=t.risk_decision_id,
        risk_score=t.risk_score,
        risk_reasons=list(t.risk_reasons or []),
        reviewer_id=t.reviewer_id,
        created_at=utc(t.created_at),
        updated_at=utc(t.updated_at),
    )


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    total: int
    available: int
    held: int


@dataclass(frozen=True, slots=True)
class TopUpView:
    id: str
    user_id: str
    intent_id: str
    amount: int
    currency: str
    status: str
    payment_url: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RequestView:
    id: str
    requester_user_id: str
    payer_user_id: str
    amount: int
    currency: str
    note: str | None
    status: str
    transfer_id: str | None
    created_at: datetime
    updated_at: datetime


def request_view(r: WalletRequest) -> RequestView:
    return RequestView(
        id=r.id,
        requester_user_id=r.requester_user_id,
        payer_user_id=r.payer_user_id,
        amount=r.amount,
        currency=r.currency,
        note=r.note,
        status=r.status,
        transfer_id=r.transfer_id,
        created_at=utc(r.created_at),
        updated_at=utc(r.updated_at),
    )


# ------------------------------------------------------------------ completion hooks

CompletionHook = Callable[[Session, "Potluck", WalletTransferView, datetime], None]
_HOOKS: dict[str, list[CompletionHook]] = {}


def register_completion_hook(purpose: str, fn: CompletionHook) -> None:
    """Call ``fn(session, app, transfer, now)`` whenever a transfer of ``purpose`` posts its
    money (at once or on approval), in the same transaction; if it raises, all rolls back."""
    hooks = _HOOKS.setdefault(purpose, [])
    if fn not in hooks:
        hooks.append(fn)


def _run_hooks(session: Session, app: Potluck, t: WalletTransfer, now: datetime) -> None:
    hooks = _HOOKS.get(t.purpose)
    if hooks:
        view = transfer_view(t)
        for fn in hooks:
            fn(session, app, view, now)


# ------------------------------------------------------------------ risk


# Tests that stub ``_score`` build their decisions with this name (kept for them).
_AllowAll = risk.Decision


def _score(
    session: Session,
    app: Potluck,
    *,
    payer_user_id: str,
    recipient: str,
    amount: int,
    currency: str,
    device_id: str | None,
    subject_id: str,
    now: datetime,
    payer: risk.PayerAccount | None = None,
) -> risk.Decision:
    return risk.score_payment(
        session,
        app,
        payer_user_id=payer_user_id,
        recipient=recipient,
        amount=amount,
        currency=currency,
        device_id=device_id,
        subject_id=subject_id,
        now=now,
        payer=payer,
    )


def _record_outcome(session: Session, decision_id: str | None, outcome: str, now: datetime) -> None:
    if decision_id:
        risk.record_outcome(session, decision_id=decision_id, outcome=outcome, now=now)  # type: ignore[arg-type]


# ------------------------------------------------------------------ accounts


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def wallet_account(session: Session, *, user_id: str, currency: str, now: datetime) -> str:
    """The person's wallet in ``currency``, opened on first use (race-safe on PostgreSQL: a
    concurrent first use waits on the unique key, then reads the winner's)."""
    where = (WalletAccount.user_id == user_id, WalletAccount.currency == currency)

    def find() -> str | None:
        return session.execute(select(WalletAccount.account_id).where(*where)).scalar_one_or_none()

    def create() -> str:
        account = ledger.create_account(
            session,
            currency=currency,
            code=WALLET_CODE,
            now=now,
            book=MONEY_BOOK,
            scope=user_scope(user_id),
            owner=user_id,
            flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
        )
        session.execute(
            insert(WalletAccount),
            [
                {
                    "user_id": user_id,
                    "currency": currency,
                    "account_id": account.id,
                    "created_at": now,
                }
            ],
        )
        return account.id

    return find_or_create(session, find=find, create=create)


def bridge_account(
    session: Session, *, platform_id: str, currency: str, code: str, now: datetime
) -> str:
    """``platform_bridge`` (book money) or ``wallets_bridge`` (the platform's book) of a
    platform and currency, opened on first use."""
    where = (
        WalletBridge.platform_id == platform_id,
        WalletBridge.currency == currency,
        WalletBridge.code == code,
    )
    if code == PLATFORM_BRIDGE_CODE:
        book, scope = MONEY_BOOK, ledger.SYSTEM_SCOPE
    else:
        book, scope = platform_book(platform_id), platform_scope(platform_id)

    def find() -> str | None:
        return session.execute(select(WalletBridge.account_id).where(*where)).scalar_one_or_none()

    def create() -> str:
        account = ledger.create_account(
            session,
            currency=currency,
            code=code,
            now=now,
            book=book,
            scope=scope,
            owner=f"platform:{platform_id}",
        )
        session.execute(
            insert(WalletBridge),
            [
                {
                    "platform_id": platform_id,
                    "currency": currency,
                    "code": code,
                    "account_id": account.id,
                }
            ],
        )
        return account.id

    return find_or_create(session, find=find, create=create)


def balances(session: Session, *, user_id: str) -> list[Balance]:
    rows = session.execute(
        select(WalletAccount.currency, WalletAccount.account_id)
        .where(WalletAccount.user_id == user_id)
        .order_by(WalletAccount.currency)
    ).all()
    out = []
    for currency, account_id in rows:
        a = ledger.get_account(session, account_id)
        out.append(Balance(currency=currency, total=a.total, available=a.available, held=a.held))
    return out


# ------------------------------------------------------------------ validation


def check_amount(amount: Any, currency: Any) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DomainError("invalid_amount", "amount is an integer of minor units", field="amount")
    if amount <= 0 or amount > ledger.MAX_AMOUNT:
        raise DomainError(
            "invalid_amount", f"amount must be between 1 and {ledger.MAX_AMOUNT}", field="amount"
        )
    try:
        check_currency(currency)
    except MoneyError as exc:
        raise DomainError("invalid_currency", str(exc), field="currency") from None


def _check_note(note: Any) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise DomainError("invalid_note", f"note is at most {MAX_NOTE} characters", field="note")
    return note.strip() or None


def find_user(session: Session, who: str, *, field: str) -> str:
    """A user id from an email or a ``usr_…`` id, else 404 ``recipient_not_found``."""
    if not isinstance(who, str) or not who.strip():
        raise DomainError("invalid_recipient", "name a person by email or user id", field=field)
    who = who.strip()
    if "@" in who:
        if not EMAIL.match(who):
            raise DomainError("invalid_recipient", f"{field} is not an email", field=field)
        found = session.scalar(select(User.id).where(User.email == who.lower()))
    else:
        found = session.scalar(select(User.id).where(User.id == who))
    if found is None:
        raise DomainError(
            "recipient_not_found", f"nobody is known as {who[:80]}", status=404, field=field
        )
    return found


@dataclass(frozen=True, slots=True)
class _Recipient:
    user_id: str | None
    party_id: str | None
    platform_id: str | None
    party_wallet: str | None
    party_currency: str | None

    @property
    def risk_name(self) -> str:
        return f"user:{self.user_id}" if self.user_id else f"party:{self.party_id}"


# ------------------------------------------------------------------ sending


def _event_data(t: WalletTransfer) -> dict[str, Any]:
    return {
        "transfer_id": t.id,
        "from_user_id": t.payer_user_id,
        "to_user_id": t.to_user_id,
        "to_party_id": t.to_party_id,
        "platform_id": t.platform_id,
        "amount": t.amount,
        "currency": t.currency,
        "note": t.note,
        "purpose": t.purpose,
        "risk_score": t.risk_score,
    }


def _legs(
    session: Session, t: WalletTransfer, *, now: datetime, held: bool = False
) -> list[ledger.NewTransfer]:
    """The transfers that move ``t``'s money: one to a person, two to a merchant (through the
    bridges). ``held``: only the first, as a hold without timeout (``wtr-<id>-1``, which the
    review's post or void names). A posted leg needs no client id of its own: the transfer
    row's unique (payer, client id) already makes a retry a replay."""
    meta = {"wallet_transfer": t.id, "purpose": t.purpose}
    code = "wallet_transfer" if t.to_party_id is None else "wallet_payment"
    if t.to_party_id is None:
        first_credit = t.to_account_id
    else:
        assert t.platform_id is not None
        first_credit = bridge_account(
            session,
            platform_id=t.platform_id,
            currency=t.currency,
            code=PLATFORM_BRIDGE_CODE,
            now=now,
        )
    legs = [
        ledger.NewTransfer(
            debit_account_id=t.from_account_id,
            credit_account_id=first_credit,
            amount=t.amount,
            client_id=f"wtr-{t.id}-1" if held else None,
            code=code,
            pending=held,
            metadata=meta,
        )
    ]
    if t.to_party_id is not None and not held:
        assert t.platform_id is not None
        platform_side = bridge_account(
            session,
            platform_id=t.platform_id,
            currency=t.currency,
            code=WALLETS_BRIDGE_CODE,
            now=now,
        )
        legs.append(
            ledger.NewTransfer(
                debit_account_id=platform_side,
                credit_account_id=t.to_account_id,
                amount=t.amount,
                code=code,
                metadata=meta,
            )
        )
    return legs


def _same_send(t: WalletTransfer, *, to: _Recipient, amount: int, currency: str) -> None:
    if (t.to_user_id, t.to_party_id, t.amount, t.currency) != (
        to.user_id,
        to.party_id,
        amount,
        currency,
    ):
        raise DomainError(
            "transfer_exists_with_different_fields",
            f"client id {t.client_id} already made transfer {t.id} with another recipient, "
            "amount or currency",
            status=409,
            field="client_id",
        )


def _people(
    session: Session, *, payer_user_id: str, to: str, currency: str
) -> tuple[str | None, str | None, str | None, risk.PayerAccount | None]:
    """``(recipient user id, payer's wallet, recipient's wallet, payer's account for risk)``
    in one read; a wallet not opened yet is None. 404 ``recipient_not_found`` when ``to``
    names nobody."""
    if not isinstance(to, str) or not to.strip():
        raise DomainError("invalid_recipient", "name a person by email or user id", field="to")
    to = to.strip()
    if "@" in to:
        if not EMAIL.match(to):
            raise DomainError("invalid_recipient", "to is not an email", field="to")
        is_to = User.email == to.lower()
    else:
        is_to = User.id == to
    rows = session.execute(
        select(User.id, WalletAccount.account_id, is_to.label("is_to"), User.email, User.created_at)
        .outerjoin(
            WalletAccount,
            and_(WalletAccount.user_id == User.id, WalletAccount.currency == currency),
        )
        .where(or_(User.id == payer_user_id, is_to))
    ).all()
    recipient = next((r for r in rows if r.is_to), None)
    if recipient is None:
        raise DomainError(
            "recipient_not_found", f"nobody is known as {to[:80]}", status=404, field="to"
        )
    payer = next((r for r in rows if r.id == payer_user_id), None)
    if payer is None:
        return recipient.id, None, recipient.account_id, None
    account = risk.PayerAccount(email=payer.email, created_at=utc(payer.created_at))
    return recipient.id, payer.account_id, recipient.account_id, account


def _party(session: Session, to: str) -> _Recipient:
    party = session.execute(
        select(Party.id, Party.platform_id, Party.wallet_account_id, Party.currency).where(
            Party.id == to.strip()
        )
    ).one_or_none()
    if party is None:
        raise DomainError("recipient_not_found", f"no merchant {to[:80]}", status=404, field="to")
    return _Recipient(None, party[0], party[1], party[2], party[3])


_TRANSFERS_TABLE = cast(Table, WalletTransfer.__table__)


# Prebuilt (every payment runs them): the plain insert, the claiming insert of each dialect
# (index False: SQLite, True: PostgreSQL) and the outcome's update.
_INSERT_TRANSFER = insert(_TRANSFERS_TABLE)
_CLAIM_TRANSFER = tuple(
    dialect_insert(_TRANSFERS_TABLE)
    .on_conflict_do_nothing(index_elements=["payer_user_id", "client_id"])
    .returning(_TRANSFERS_TABLE.c.id)
    for dialect_insert in (sqlite_insert, pg_insert)
)
_SET_OUTCOME = (
    update(_TRANSFERS_TABLE)
    .where(_TRANSFERS_TABLE.c.id == bindparam("transfer_id"))
    .values(
        {
            c: bindparam("new_" + c)
            for c in (
                "status",
                "failure_reason",
                "risk_decision_id",
                "risk_score",
                "risk_reasons",
            )
        }
    )
)


def _claim(session: Session, values: dict[str, Any]) -> str | None:
    """Insert the transfer row; with a client id, None when that (payer, client id) exists
    already (a concurrent twin is waited for: the unique index holds us until it commits)."""
    conn = session.connection()
    if values["client_id"] is None:
        conn.execute(_INSERT_TRANSFER, [values])
        return str(values["id"])
    stmt = _CLAIM_TRANSFER[conn.dialect.name == "postgresql"]
    return conn.execute(stmt, values).scalar_one_or_none()


def send(
    session: Session,
    app: Potluck,
    *,
    payer_user_id: str,
    to: str,
    amount: int,
    currency: str,
    note: str | None = None,
    device_id: str | None = None,
    purpose: str = "transfer",
    reference: dict[str, Any] | None = None,
    client_id: str | None = None,
    now: datetime,
) -> WalletTransferView:
    """Pay ``amount`` from the payer's wallet to ``to`` (an email, a ``usr_…`` id or a
    merchant ``pty_…``): validate, score the risk, then move the money in one ledger batch.

    Returns the stored transfer whatever its outcome: ``completed``, ``in_review`` (held),
    ``blocked`` (risk) or ``failed`` (insufficient funds): the caller commits and answers.
    Invalid input raises ``DomainError`` and writes nothing. The same ``client_id`` (per payer)
    again returns the first transfer, even while that one is still committing (the second
    waits on the unique key).

    Statements on the hot path (person to person, wallets open): one read of both people and
    wallets, the claiming insert, the risk decision, the ledger batch, one update, one event.
    """
    check_amount(amount, currency)
    note = _check_note(note)
    if not isinstance(purpose, str) or not PURPOSE.match(purpose):
        raise DomainError("invalid_purpose", "purpose is a lower-case word", field="purpose")
    if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID.match(client_id)):
        raise DomainError("invalid_client_id", "client_id: 1-64 of A-Z a-z 0-9 _ -", field="id")
    if device_id is not None and (not isinstance(device_id, str) or len(device_id) > 64):
        raise DomainError(
            "invalid_device_id", "device_id is at most 64 characters", field="device_id"
        )
    if isinstance(to, str) and to.strip().startswith("pty_"):
        recipient = _party(session, to)
        if recipient.party_currency != currency:
            raise DomainError(
                "currency_mismatch",
                f"this merchant is paid in {recipient.party_currency}, not {currency}",
                field="currency",
            )
        from_account = wallet_account(session, user_id=payer_user_id, currency=currency, now=now)
        payer_account = None  # risk reads it
        assert recipient.party_wallet is not None
        to_account = recipient.party_wallet
    else:
        to_user, from_wallet, to_wallet, payer_account = _people(
            session, payer_user_id=payer_user_id, to=to, currency=currency
        )
        assert to_user is not None
        recipient = _Recipient(to_user, None, None, None, None)
        if to_user == payer_user_id:
            raise DomainError("self_payment", "you cannot pay yourself", field="to")
        from_account = from_wallet or wallet_account(
            session, user_id=payer_user_id, currency=currency, now=now
        )
        to_account = to_wallet or wallet_account(
            session, user_id=to_user, currency=currency, now=now
        )
    values: dict[str, Any] = {
        "id": new_id("wtr"),
        "client_id": client_id,
        "payer_user_id": payer_user_id,
        "to_user_id": recipient.user_id,
        "to_party_id": recipient.party_id,
        "platform_id": recipient.platform_id,
        "amount": amount,
        "currency": currency,
        "note": note,
        "purpose": purpose,
        "reference": reference,
        "device_id": device_id,
        "status": "new",
        "failure_reason": None,
        "risk_decision_id": None,
        "risk_score": None,
        "risk_reasons": None,
        "from_account_id": from_account,
        "to_account_id": to_account,
        "reviewer_id": None,
        "created_at": now,
        "updated_at": now,
    }
    if _claim(session, values) is None:
        winner = session.execute(
            select(WalletTransfer).where(
                WalletTransfer.payer_user_id == payer_user_id,
                WalletTransfer.client_id == client_id,
            )
        ).scalar_one()
        _same_send(winner, to=recipient, amount=amount, currency=currency)
        return transfer_view(winner)

    decision = _score(
        session,
        app,
        payer_user_id=payer_user_id,
        recipient=recipient.risk_name,
        amount=amount,
        currency=currency,
        device_id=device_id,
        subject_id=values["id"],
        now=now,
        payer=payer_account,
    )
    changes: dict[str, Any] = {
        "risk_decision_id": decision.id or None,
        "risk_score": int(decision.score),
        "risk_reasons": [dict(r) for r in decision.reasons],
    }
    values.update(changes)
    transfer = WalletTransfer(**values)  # transient: a value to read, never flushed
    if decision.action == "block":
        status = BLOCKED
        changes["failure_reason"] = "blocked by risk checks"
    else:
        legs = _legs(session, transfer, now=now, held=decision.action == "review")
        try:
            # A refused batch writes nothing, so the session stays usable.
            ledger.create_transfers(session, legs, now=now)
        except ledger.LedgerError as exc:
            if exc.code != "insufficient_funds":
                raise
            status = FAILED
            changes["failure_reason"] = "insufficient_funds"
        else:
            status = IN_REVIEW if decision.action == "review" else COMPLETED
    changes["status"] = status
    values.update(changes)
    transfer = WalletTransfer(**values)
    session.connection().execute(
        _SET_OUTCOME,
        {
            "transfer_id": values["id"],
            "new_status": status,
            "new_failure_reason": values["failure_reason"],
            "new_risk_decision_id": values["risk_decision_id"],
            "new_risk_score": values["risk_score"],
            "new_risk_reasons": values["risk_reasons"],
        },
    )
    _record_outcome(session, transfer.risk_decision_id, status, now)
    publish_many(session, [(EVENT_OF[status], _event_data(transfer))], now=now)
    if status == COMPLETED:
        _run_hooks(session, app, transfer, now)
    return transfer_view(transfer)


# ------------------------------------------------------------------ reviews


def _lock_transfer(session: Session, transfer_id: str) -> WalletTransfer:
    t = session.execute(
        select(WalletTransfer)
        .where(WalletTransfer.id == transfer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if t is None:
        raise DomainError("transfer_not_found", f"no wallet transfer {transfer_id}", status=404)
    if t.status != IN_REVIEW:
        raise DomainError(
            "invalid_state", f"transfer {transfer_id} is {t.status}, not in_review", status=409
        )
    return t


def approve_review(
    session: Session, app: Potluck, *, transfer_id: str, reviewer_id: str, now: datetime
) -> WalletTransferView:
    """Post a held payment (and a merchant payment's second leg); ``transfer.completed``."""
    t = _lock_transfer(session, transfer_id)
    ops: list[ledger.Operation] = [
        ledger.PostPending(pending_client_id=f"wtr-{t.id}-1", client_id=f"wtr-{t.id}-post")
    ]
    ops.extend(_legs(session, t, now=now)[1:])  # a merchant's second leg
    ledger.create_transfers(session, ops, now=now)
    return _resolved(session, app, t, COMPLETED, reviewer_id, now)


def reject_review(
    session: Session, app: Potluck, *, transfer_id: str, reviewer_id: str, now: datetime
) -> WalletTransferView:
    """Release a held payment; ``transfer.rejected``."""
    t = _lock_transfer(session, transfer_id)
    ledger.create_transfers(
        session,
        [ledger.VoidPending(pending_client_id=f"wtr-{t.id}-1", client_id=f"wtr-{t.id}-void")],
        now=now,
    )
    return _resolved(session, app, t, REJECTED, reviewer_id, now)


def _resolved(
    session: Session,
    app: Potluck,
    t: WalletTransfer,
    status: str,
    reviewer_id: str,
    now: datetime,
) -> WalletTransferView:
    t.status = status
    t.reviewer_id = reviewer_id
    t.updated_at = now
    session.flush()
    _record_outcome(session, t.risk_decision_id, status, now)
    publish(session, EVENT_OF[status], _event_data(t), now=now)
    if status == COMPLETED:
        _run_hooks(session, app, t, now)
    return transfer_view(t)


# ------------------------------------------------------------------ reading transfers


def get_transfer(
    session: Session, transfer_id: str, *, user_id: str | None = None
) -> WalletTransferView:
    """The transfer, or 404 when it is missing or ``user_id`` is neither side of it."""
    t = session.get(WalletTransfer, transfer_id)
    if t is None or (user_id is not None and user_id not in (t.payer_user_id, t.to_user_id)):
        raise DomainError("transfer_not_found", f"no wallet transfer {transfer_id}", status=404)
    return transfer_view(t)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One line of a person's wallet history."""

    id: str
    kind: Literal["transfer", "top_up"]
    direction: Literal["in", "out"]
    amount: int
    currency: str
    counterparty: dict[str, Any] | None
    note: str | None
    status: str
    created_at: datetime


def _key(item_id: str) -> str:
    return item_id.partition("_")[2]  # the ULID: time-ordered across id prefixes


def list_transactions(
    session: Session,
    *,
    user_id: str,
    limit: int,
    starting_after: str | None = None,
    currency: str | None = None,
) -> tuple[list[Transaction], bool]:
    """The person's transfers (sent and received) and top-ups, newest first."""
    mine = (WalletTransfer.payer_user_id == user_id) | (WalletTransfer.to_user_id == user_id)
    transfers = select(WalletTransfer).where(mine)
    top_ups = select(WalletTopUp).where(WalletTopUp.user_id == user_id)
    if currency is not None:
        transfers = transfers.where(WalletTransfer.currency == currency)
        top_ups = top_ups.where(WalletTopUp.currency == currency)
    if starting_after is not None:
        known = session.scalar(
            select(WalletTransfer.id).where(mine, WalletTransfer.id == starting_after)
        )
        if known is None:
            known = session.scalar(
                select(WalletTopUp.id).where(
                    WalletTopUp.user_id == user_id, WalletTopUp.id == starting_after
                )
            )
        if known is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no transaction {starting_after}",
                field="starting_after",
            )
        key = _key(starting_after)
        transfers = transfers.where(func.substr(WalletTransfer.id, 5) < key)
        top_ups = top_ups.where(func.substr(WalletTopUp.id, 5) < key)
    rows_t = (
        session.execute(
            transfers.order_by(func.substr(WalletTransfer.id, 5).desc()).limit(limit + 1)
        )
        .scalars()
        .all()
    )
    rows_u = (
        session.execute(top_ups.order_by(func.substr(WalletTopUp.id, 5).desc()).limit(limit + 1))
        .scalars()
        .all()
    )
    items: list[Transaction] = []
    for t in rows_t:
        out = t.payer_user_id == user_id
        if out:
            counterparty: dict[str, Any] | None = (
                {"type": "user", "id": t.to_user_id}
                if t.to_user_id
                else {"type": "party", "id": t.to_party_id, "platform_id": t.platform_id}
            )
        else:
            counterparty = {"type": "user", "id": t.payer_user_id}
        items.append(
            Transaction(
                id=t.id,
                kind="transfer",
                direction="out" if out else "in",
                amount=t.amount,
                currency=t.currency,
                counterparty=counterparty,
                note=t.note,
                status=t.status,
                created_at=utc(t.created_at),
            )
        )
    for u in rows_u:
        items.append(
            Transaction(
                id=u.id,
                kind="top_up",
                direction="in",
                amount=u.amount,
                currency=u.currency,
                counterparty=None,
                note=None,
                status=u.status,
                created_at=utc(u.created_at),
            )
        )
    items.sort(key=lambda i: _key(i.id), reverse=True)
    page = items[:limit]
    _name_counterparties(session, page)
    return page, len(items) > limit


def _name_counterparties(session: Session, items: list[Transaction]) -> None:
    """Give each counterparty its name (and a person's email), two reads for the whole page:
    a history that only says ``usr_…`` tells a person nothing."""
    people = {c["id"] for t in items if (c := t.counterparty) and c["type"] == "user"}
    parties = {c["id"] for t in items if (c := t.counterparty) and c["type"] == "party"}
    names: dict[str, dict[str, str]] = {}
    if people:
        for uid, name, email in session.execute(
            select(User.id, User.name, User.email).where(User.id.in_(people))
        ):
            names[uid] = {"name": name, "email": email}
    if parties:
        for pid, name in session.execute(select(Party.id, Party.name).where(Party.id.in_(parties))):
            names[pid] = {"name": name}
    for t in items:
        if t.counterparty is not None:
            t.counterparty.update(names.get(t.counterparty["id"], {}))


# ------------------------------------------------------------------ top-ups


def create_top_up(
    session: Session,
    app: Potluck,
    *,
    user_id: str,
    amount: int,
    currency: str,
    now: datetime,
) -> TopUpView:
    """A payment intent whose success credits the person's wallet (the payments product posts
    the money; ``top_up_succeeded`` then marks the top-up)."""
    from potluck.payments import service as payments

    check_amount(amount, currency)
    account = wallet_account(session, user_id=user_id, currency=currency, now=now)
    top_up_id = new_id("wtu")
    intent = payments.create_intent(
        session,
        app,
        amount=amount,
        currency=currency,
        purpose=TOP_UP_PURPOSE,
        destination_account_id=account,
        payer_user_id=user_id,
        metadata={"top_up": top_up_id},
        now=now,
    )
    top_up = WalletTopUp(
        id=top_up_id,
        user_id=user_id,
        intent_id=intent.id,
        amount=amount,
        currency=currency,
        status="pending",
        created_at=now,
        updated_at=now,
    )
    session.add(top_up)
    session.flush()
    return TopUpView(
        id=top_up.id,
        user_id=user_id,
        intent_id=intent.id,
        amount=amount,
        currency=currency,
        status=top_up.status,
        payment_url=intent.payment_url,
        created_at=now,
    )


def _lock_top_up(session: Session, intent_id: str) -> WalletTopUp | None:
    return session.execute(
        select(WalletTopUp)
        .where(WalletTopUp.intent_id == intent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def top_up_succeeded(session: Session, *, intent_id: str, now: datetime) -> bool:
    """Mark the top-up of ``intent_id`` succeeded and publish ``wallet.topped_up`` (once)."""
    top_up = _lock_top_up(session, intent_id)
    if top_up is None or top_up.status != "pending":
        return False
    top_up.status = "succeeded"
    top_up.updated_at = now
    session.flush()
    publish(
        session,
        "wallet.topped_up",
        {
            "top_up_id": top_up.id,
            "user_id": top_up.user_id,
            "intent_id": intent_id,
            "amount": top_up.amount,
            "currency": top_up.currency,
        },
        now=now,
    )
    return True


def top_up_failed(session: Session, *, intent_id: str, now: datetime) -> bool:
    top_up = _lock_top_up(session, intent_id)
    if top_up is None or top_up.status != "pending":
        return False
    top_up.status = "failed"
    top_up.updated_at = now
    session.flush()
    return True


# ------------------------------------------------------------------ payment requests

REQUEST_OPEN = "pending"


def _request_data(r: WalletRequest) -> dict[str, Any]:
    return {
        "request_id": r.id,
        "requester_user_id": r.requester_user_id,
        "payer_user_id": r.payer_user_id,
        "amount": r.amount,
        "currency": r.currency,
        "note": r.note,
    }


def create_request(
    session: Session,
    *,
    requester_user_id: str,
    payer: str,
    amount: int,
    currency: str,
    note: str | None,
    now: datetime,
) -> RequestView:
    check_amount(amount, currency)
    note = _check_note(note)
    payer_user_id = find_user(session, payer, field="from")
    if payer_user_id == requester_user_id:
        raise DomainError("self_request", "you cannot ask yourself for money", field="from")
    r = WalletRequest(
        id=new_id("wrq"),
        requester_user_id=requester_user_id,
        payer_user_id=payer_user_id,
        amount=amount,
        currency=currency,
        note=note,
        status=REQUEST_OPEN,
        transfer_id=None,
        created_at=now,
        updated_at=now,
    )
    session.add(r)
    session.flush()
    publish(session, "wallet.request.created", _request_data(r), now=now)
    return request_view(r)


def list_requests(
    session: Session, *, user_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[RequestView], bool]:
    mine = (WalletRequest.requester_user_id == user_id) | (WalletRequest.payer_user_id == user_id)
    query = select(WalletRequest).where(mine)
    if starting_after is not None:
        if (
            session.scalar(select(WalletRequest.id).where(mine, WalletRequest.id == starting_after))
            is None
        ):
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no request {starting_after}",
                field="starting_after",
            )
        query = query.where(WalletRequest.id < starting_after)
    rows = session.execute(query.order_by(WalletRequest.id.desc()).limit(limit + 1)).scalars().all()
    return [request_view(r) for r in rows[:limit]], len(rows) > limit


def _lock_request(session: Session, request_id: str, *, user_id: str) -> WalletRequest:
    r = session.execute(
        select(WalletRequest)
        .where(WalletRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if r is None or user_id not in (r.requester_user_id, r.payer_user_id):
        raise DomainError("request_not_found", f"no payment request {request_id}", status=404)
    return r


def _refuse_unless_open(r: WalletRequest) -> None:
    if r.status != REQUEST_OPEN:
        raise DomainError("invalid_state", f"request {r.id} is {r.status}, not pending", status=409)


def accept_request(
    session: Session,
    app: Potluck,
    *,
    request_id: str,
    user_id: str,
    device_id: str | None = None,
    now: datetime,
) -> tuple[RequestView, WalletTransferView]:
    """The payer pays the request through ``send`` (same outcomes as a transfer). The request
    is accepted when the payment completed or went to review; otherwise it stays pending."""
    r = _lock_request(session, request_id, user_id=user_id)
    if r.payer_user_id != user_id:
        raise DomainError("not_the_payer", "only the person asked can accept", status=403)
    _refuse_unless_open(r)
    t = send(
        session,
        app,
        payer_user_id=user_id,
        to=r.requester_user_id,
        amount=r.amount,
        currency=r.currency,
        note=r.note,
        device_id=device_id,
        purpose="payment_request",
        reference={"request_id": r.id},
        client_id=f"wrq-{r.id}-{_attempt(session, r)}",
        now=now,
    )
    if t.status in (COMPLETED, IN_REVIEW):
        r.status = "accepted"
        r.transfer_id = t.id
        r.updated_at = now
        session.flush()
        publish(
            session, "wallet.request.accepted", {**_request_data(r), "transfer_id": t.id}, now=now
        )
    return request_view(r), t


def _attempt(session: Session, r: WalletRequest) -> int:
    """A new client id per accept attempt (a failed attempt may be retried after a top-up)."""
    tried = session.scalar(
        select(func.count())
        .select_from(WalletTransfer)
        .where(
            WalletTransfer.payer_user_id == r.payer_user_id,
            WalletTransfer.client_id.like(f"wrq-{r.id}-%"),
        )
    )
    return int(tried or 0) + 1


def decline_request(
    session: Session, *, request_id: str, user_id: str, now: datetime
) -> RequestView:
    r = _lock_request(session, request_id, user_id=user_id)
    if r.payer_user_id != user_id:
        raise DomainError("not_the_payer", "only the person asked can decline", status=403)
    return _close(session, r, "declined", now)


def cancel_request(
    session: Session, *, request_id: str, user_id: str, now: datetime
) -> RequestView:
    r = _lock_request(session, request_id, user_id=user_id)
    if r.requester_user_id != user_id:
        raise DomainError("not_the_requester", "only the requester can cancel", status=403)
    return _close(session, r, "cancelled", now)


def _close(session: Session, r: WalletRequest, status: str, now: datetime) -> RequestView:
    _refuse_unless_open(r)
    r.status = status
    r.updated_at = now
    session.flush()
    publish(session, f"wallet.request.{status}", _request_data(r), now=now)
    return request_view(r)


def get_request(session: Session, request_id: str, *, user_id: str) -> RequestView:
    r = session.get(WalletRequest, request_id)
    if r is None or user_id not in (r.requester_user_id, r.payer_user_id):
        raise DomainError("request_not_found", f"no payment request {request_id}", status=404)
    return request_view(r)


__all__ = [
    "Balance",
    "CompletionHook",
    "RequestView",
    "TopUpView",
    "Transaction",
    "WalletTransferView",
    "accept_request",
    "approve_review",
    "balances",
    "cancel_request",
    "create_request",
    "create_top_up",
    "decline_request",
    "get_request",
    "get_transfer",
    "list_requests",
    "list_transactions",
    "register_completion_hook",
    "reject_review",
    "send",
    "top_up_failed",
    "top_up_succeeded",
    "wallet_account",
]
