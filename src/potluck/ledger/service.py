"""The double-entry ledger, with TigerBeetle's semantics.

Every function here works inside the caller's transaction (a SQLAlchemy ``Session`` from
``Database.transaction()``): the caller commits once. Balances are checked under row locks
taken in ascending account id order (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the
whole write transaction holds the database lock from ``BEGIN IMMEDIATE``), so concurrent
transfers can neither overdraw an account nor deadlock.

Kinds of transfer:

- ``posted``: moves money now.
- ``pending``: a hold. The debit account's ``debits_pending`` and the credit account's
  ``credits_pending`` grow; available balance shrinks, total does not. May time out.
- ``post_pending``: settles a hold in full or in part; the rest is released.
- ``void_pending`` / ``expire_pending``: releases a hold.

Each transfer writes two append-only entries (debit side 'D', credit side 'C') recording
the changes it made to the two accounts' running totals, so ``audit`` can recompute every
total from the entries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish
from potluck.clock import utc
from potluck.ids import new_id
from potluck.ledger import bulk
from potluck.ledger.models import Account, Entry, Transfer
from potluck.money import check_currency, is_currency

MAX_AMOUNT = 10**15  # a quadrillion minor units per transfer
MAX_TOTAL = 2**63 - 1
MAX_TIMEOUT_SECONDS = 2**32 - 1  # TigerBeetle's u32; keeps timeout_at a valid datetime
MAX_CODE_LENGTH = 64  # the column's width
SYSTEM_SCOPE = "system"
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
HOLD_TIMEOUT_EVENT = "ledger.pending.timeout"

_ACCOUNTS = cast(Table, Account.__table__)
_TRANSFERS = cast(Table, Transfer.__table__)
_ENTRIES = cast(Table, Entry.__table__)
# What a transfer needs of an account it locks (not its metadata or timestamps).
_LOCK_COLUMNS = [
    _ACCOUNTS.c[name]
    for name in (
        "id",
        "scope",
        "book",
        "currency",
        "debits_must_not_exceed_credits",
        "credits_must_not_exceed_debits",
        "debits_posted",
        "credits_posted",
        "debits_pending",
        "credits_pending",
    )
]
# Built once: SQLAlchemy memoizes a statement's cache key, so reusing the object saves
# rebuilding and re-keying it on every transfer.
_LOCK_ACCOUNTS = (
    select(*_LOCK_COLUMNS)
    .where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
_EXISTING_TRANSFERS = select(_TRANSFERS).where(
    _TRANSFERS.c.scope == bindparam("scope"),
    _TRANSFERS.c.client_id.in_(bindparam("client_ids", expanding=True)),
)


class LedgerError(Exception):
    """A refused ledger operation. Nothing was written.

    ``status`` is the HTTP status the API answers with; ``field`` names the offending input;
    ``index`` is the position in a batch.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 422,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.index = index


@dataclass(frozen=True, slots=True)
class AccountFlags:
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


@dataclass(frozen=True, slots=True)
class AccountView:
    id: str
    book: str
    currency: str
    code: str
    scope: str
    owner: str | None
    flags: AccountFlags
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    metadata: dict[str, Any] | None
    created_at: datetime

    @property
    def total(self) -> int:
        """credits_posted − debits_posted (what a wallet holds)."""
        return self.credits_posted - self.debits_posted

    @property
    def held(self) -> int:
        return self.debits_pending

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True, slots=True)
class TransferView:
    id: str  # the internal id
    client_id: str
    scope: str
    kind: str
    status: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    book: str
    currency: str
    code: str
    pending_id: str | None
    pending_client_id: str | None
    posted_amount: int | None
    timeout_seconds: int | None
    timeout_at: datetime | None
    batch_id: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewTransfer:
    """A posted transfer, or a hold when ``pending`` is true."""

    debit_account_id: str
    credit_account_id: str
    amount: int
    client_id: str | None = None
    currency: str | None = None
    code: str = "transfer"
    pending: bool = False
    timeout_seconds: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PostPending:
    """Settle a hold; ``amount`` None posts it in full, a smaller amount releases the rest."""

    pending_client_id: str
    amount: int | None = None
    client_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VoidPending:
    pending_client_id: str
    client_id: str | None = None
    metadata: dict[str, Any] | None = None


Operation = NewTransfer | PostPending | VoidPending


@dataclass(slots=True)
class TransferResult:
    transfer: TransferView
    created: bool  # False when an identical transfer with this id already existed


@dataclass(slots=True)
class _Totals:
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    row: Any
    changed: bool = False


@dataclass(slots=True)
class _Planned:
    values: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- accounts


def create_account(
    session: Session,
    *,
    currency: str,
    code: str,
    now: datetime,
    book: str = "money",
    scope: str = SYSTEM_SCOPE,
    owner: str | None = None,
    flags: AccountFlags | None = None,
    metadata: dict[str, Any] | None = None,
    account_id: str | None = None,
) -> AccountView:
    check_currency(currency)
    flags = flags or AccountFlags()
    if flags.debits_must_not_exceed_credits and flags.credits_must_not_exceed_debits:
        raise LedgerError(
            "flags_are_mutually_exclusive",
            "an account cannot limit both its debits and its credits",
            field="flags",
        )
    values = {
        "id": account_id or new_id("acc"),
        "book": book,
        "currency": currency,
        "code": code,
        "scope": scope,
        "owner": owner,
        "debits_must_not_exceed_credits": flags.debits_must_not_exceed_credits,
        "credits_must_not_exceed_debits": flags.credits_must_not_exceed_debits,
        "debits_posted": 0,
        "credits_posted": 0,
        "debits_pending": 0,
        "credits_pending": 0,
        "metadata": metadata,
        "created_at": now,
    }
    session.execute(insert(_ACCOUNTS), [values])
    return _account_view(values)


def get_account(session: Session, account_id: str, *, scope: str | None = None) -> AccountView:
    """The account, or ``account_not_found`` (404) if it is missing or outside ``scope``."""
    query = select(_ACCOUNTS).where(_ACCOUNTS.c.id == account_id)
    if scope is not None and scope != SYSTEM_SCOPE:
        query = query.where(_ACCOUNTS.c.scope == scope)
    row = session.execute(query).mappings().one_or_none()
    if row is None:
        raise LedgerError("account_not_found", f"no account {account_id}", status=404)
    return _account_view(row)


def list_accounts(
    session: Session, *, scope: str, limit: int, starting_after: str | None = None
) -> tuple[list[AccountView], bool]:
    query = select(_ACCOUNTS).where(_ACCOUNTS.c.scope == scope)
    if starting_after:
        query = query.where(_ACCOUNTS.c.id > starting_after)
    rows = session.execute(query.order_by(_ACCOUNTS.c.id).limit(limit + 1)).mappings().all()
    return [_account_view(r) for r in rows[:limit]], len(rows) > limit


def list_entries(
    session: Session, account_id: str, *, limit: int, starting_after: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Entries of one account, oldest first, with the client id of their transfer."""
    query = (
        select(
            _ENTRIES.c.id,
            _ENTRIES.c.side,
            _ENTRIES.c.posted_delta,
            _ENTRIES.c.pending_delta,
            _ENTRIES.c.created_at,
            _TRANSFERS.c.client_id.label("transfer"),
            _TRANSFERS.c.kind,
            _TRANSFERS.c.currency,
        )
        .join(_TRANSFERS, _TRANSFERS.c.id == _ENTRIES.c.transfer_id)
        .where(_ENTRIES.c.account_id == account_id)
    )
    if starting_after is not None:
        query = query.where(_ENTRIES.c.id > starting_after)
    rows = session.execute(query.order_by(_ENTRIES.c.id).limit(limit + 1)).mappings().all()
    return [dict(r) for r in rows[:limit]], len(rows) > limit


# ---------------------------------------------------------------- transfers


def get_transfer(session: Session, client_id: str, *, scope: str) -> TransferView:
    row = (
        session.execute(
            select(_TRANSFERS).where(
                _TRANSFERS.c.scope == scope, _TRANSFERS.c.client_id == client_id
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise LedgerError("transfer_not_found", f"no transfer {client_id}", status=404)
    return _transfer_views(session, [row])[0]


TRANSFER_STATUSES = ("posted", "pending", "voided", "expired")


def list_transfers(
    session: Session,
    *,
    scope: str,
    limit: int,
    starting_after: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
) -> tuple[list[TransferView], bool]:
    """The scope's transfers in id order (oldest first), at most ``limit``, and whether more follow.

    ``starting_after`` is a transfer's client id (its id in the API); it is translated to the
    internal id through the unique (scope, client_id) index, and an unknown one is 422
    ``invalid_cursor``. ``account_id`` keeps the transfers that debit or credit that account
    (404 ``account_not_found`` if the scope cannot see it); ``status`` keeps one status.

    Every query walks an index in id order and stops after ``limit + 1`` rows: (scope, id)
    without an account, else (debit_account_id, id) and (credit_account_id, id), whose two
    pages are merged here (a transfer never debits and credits the same account).
    """
    if status is not None and status not in TRANSFER_STATUSES:
        raise LedgerError(
            "invalid_status",
            f"status must be one of {', '.join(TRANSFER_STATUSES)}",
            field="status",
        )
    after: str | None = None
    if starting_after is not None:
        after = session.scalar(
            select(_TRANSFERS.c.id).where(
                _TRANSFERS.c.scope == scope, _TRANSFERS.c.client_id == starting_after
            )
        )
        if after is None:
            raise LedgerError(
                "invalid_cursor",
                f"starting_after: no transfer {starting_after}",
                field="starting_after",
            )
    if account_id is not None:
        get_account(session, account_id, scope=scope)

    def page(*where: Any) -> list[Any]:
        query = select(_TRANSFERS).where(_TRANSFERS.c.scope == scope, *where)
        if after is not None:
            query = query.where(_TRANSFERS.c.id > after)
        if status is not None:
            query = query.where(_TRANSFERS.c.status == status)
        return list(
            session.execute(query.order_by(_TRANSFERS.c.id).limit(limit + 1)).mappings().all()
        )

    if account_id is None:
        rows = page()
    else:
        debits = page(_TRANSFERS.c.debit_account_id == account_id)
        credits = page(_TRANSFERS.c.credit_account_id == account_id)
        rows = sorted(debits + credits, key=lambda r: r["id"])[: limit + 1]
    return _transfer_views(session, rows[:limit]), len(rows) > limit


def create_transfer(
    session: Session, op: Operation, *, now: datetime, scope: str = SYSTEM_SCOPE
) -> TransferResult:
    return create_transfers(session, [op], now=now, scope=scope)[0]


def create_transfers(
    session: Session,
    ops: Sequence[Operation],
    *,
    now: datetime,
    scope: str = SYSTEM_SCOPE,
    batch_id: str | None = None,
) -> list[TransferResult]:
    """Apply ``ops`` atomically: all of them or, on the first refusal, none.

    A transfer whose client id already exists with identical fields is not applied again;
    its original is returned with ``created=False``. If every operation of the batch already
    exists, nothing is written. A client id that exists with other fields is refused with
    ``transfer_exists_with_different_fields`` naming the first differing field.
    """
    if not ops:
        raise LedgerError("empty_batch", "a batch needs at least one transfer", field="transfers")
    if len(ops) > 1 and batch_id is None:
        batch_id = new_id("bat")
    planned_ids = _check_shapes(ops)

    # 1. Holds referenced by post/void, locked first (a fixed order: holds, then accounts).
    pending_refs = sorted(
        {op.pending_client_id for op in ops if isinstance(op, PostPending | VoidPending)}
    )
    pendings: dict[str, dict[str, Any]] = {}
    if pending_refs:
        rows = session.execute(
            select(_TRANSFERS)
            .where(_TRANSFERS.c.scope == scope, _TRANSFERS.c.client_id.in_(pending_refs))
            .order_by(_TRANSFERS.c.id)
            .with_for_update()
        ).mappings()
        pendings = {r["client_id"]: dict(r) for r in rows}

    # 2. The accounts, locked in ascending id order.
    account_ids: set[str] = set()
    for op in ops:
        if isinstance(op, NewTransfer):
            account_ids.update((op.debit_account_id, op.credit_account_id))
        elif op.pending_client_id in pendings:
            ref = pendings[op.pending_client_id]
            account_ids.update((ref["debit_account_id"], ref["credit_account_id"]))
    accounts: dict[str, _Totals] = {}
    if account_ids:
        rows = session.execute(_LOCK_ACCOUNTS, {"ids": sorted(account_ids)}).mappings()
        for r in rows:
            if scope != SYSTEM_SCOPE and r["scope"] != scope:
                continue  # invisible to this caller: treated as missing
            accounts[r["id"]] = _Totals(
                r["debits_posted"],
                r["credits_posted"],
                r["debits_pending"],
                r["credits_pending"],
                r,
            )

    # 3. Idempotency: read after the locks, so a concurrent twin has committed by now.
    # Ids generated above are new by construction; only ids a client chose can exist.
    chosen = [
        client_id
        for op, client_id in zip(ops, planned_ids, strict=True)
        if not (isinstance(op, NewTransfer) and op.client_id is None)
    ]
    existing: dict[str, Any] = {}
    if chosen:
        existing = {
            r["client_id"]: r
            for r in session.execute(
                _EXISTING_TRANSFERS, {"scope": scope, "client_ids": chosen}
            ).mappings()
        }
    if existing:
        return _replay(session, ops, planned_ids, existing, pendings)

    # 4. Plan every operation against the in-memory totals.
    planned: list[_Planned] = []
    in_batch: dict[str, dict[str, Any]] = {}
    resolved: dict[str, dict[str, Any]] = {}
    for index, (op, client_id) in enumerate(zip(ops, planned_ids, strict=True)):
        if isinstance(op, NewTransfer):
            plan = _plan_new(op, client_id, accounts, scope, now, batch_id, index)
            in_batch[client_id] = plan.values
        else:
            hold = in_batch.get(op.pending_client_id) or pendings.get(op.pending_client_id)
            if hold is None:
                raise LedgerError(
                    "pending_transfer_not_found",
                    f"no pending transfer {op.pending_client_id}",
                    status=404,
                    field="pending_id",
                    index=index,
                )
            plan = _plan_resolution(op, client_id, hold, accounts, scope, now, batch_id, index)
            resolved[hold["id"]] = {
                "status": hold["status"],
                "posted_amount": hold.get("posted_amount"),
                "resolved_at": hold["resolved_at"],
            }
        planned.append(plan)

    # 5. Write: transfers, entries, account totals, resolved holds, hold timers.
    try:
        bulk.write(
            session,
            transfers=[p.values for p in planned],
            entries=[e for p in planned for e in p.entries],
            totals=[
                (acc_id, t.debits_posted, t.credits_posted, t.debits_pending, t.credits_pending)
                for acc_id, t in accounts.items()
                if t.changed
            ],
        )
    except bulk.INTEGRITY_ERRORS as exc:
        # A concurrent request inserted one of these client ids first (with other accounts,
        # or it would have waited on our locks and seen it). Nothing of ours is kept.
        raise LedgerError(
            "transfer_exists",
            "a transfer with this id was created concurrently; retry to see it",
            status=409,
            field="id",
        ) from exc
    created_ids = {p.values["id"] for p in planned}
    for hold_id, changes in resolved.items():
        if hold_id in created_ids:
            continue  # a hold created and resolved in this very batch: already final
        session.execute(update(_TRANSFERS).where(_TRANSFERS.c.id == hold_id).values(**changes))
    for p in planned:
        v = p.values
        if v["kind"] == "pending" and v["timeout_at"] is not None and v["status"] == "pending":
            publish(
                session,
                HOLD_TIMEOUT_EVENT,
                {"transfer_id": v["id"]},
                now=now,
                deliver_after=v["timeout_at"],
            )
    return [TransferResult(v, True) for v in _views_from_values(session, planned)]


def expire_pending(session: Session, transfer_id: str, *, now: datetime) -> bool:
    """Release a hold whose timeout has passed. Returns False if there was nothing to do."""
    hold = (
        session.execute(select(_TRANSFERS).where(_TRANSFERS.c.id == transfer_id).with_for_update())
        .mappings()
        .one_or_none()
    )
    if hold is None:
        return False
    return _expire_locked(session, [hold], now=now) == 1


def expire_due_holds(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Expire every hold whose timeout has passed (a safety net next to the timer events).

    All due holds are locked first and their accounts after them, in one ascending pass each:
    the order ``create_transfers`` uses. Expiring hold by hold (hold, its accounts, the next
    hold, …) would hold account locks while waiting for a hold that a concurrent post of it
    has locked, and that post waits for the same accounts: a deadlock. Holds locked by a
    concurrent post or void are skipped; whoever holds them resolves them.
    """
    holds = (
        session.execute(
            select(_TRANSFERS)
            .where(_TRANSFERS.c.status == "pending", _TRANSFERS.c.timeout_at <= now)
            .order_by(_TRANSFERS.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .all()
    )
    return _expire_locked(session, holds, now=now)


def _expire_locked(session: Session, holds: Sequence[Any], *, now: datetime) -> int:
    """Release the due ones of ``holds`` (already locked); returns how many were released."""
    due = [
        h
        for h in holds
        if h["kind"] == "pending"
        and h["status"] == "pending"
        and h["timeout_at"] is not None
        and utc(h["timeout_at"]) <= now
    ]
    if not due:
        return 0
    ids = sorted({h[k] for h in due for k in ("debit_account_id", "credit_account_id")})
    rows = session.execute(_LOCK_ACCOUNTS, {"ids": ids}).mappings()
    accounts = {
        r["id"]: _Totals(
            r["debits_posted"], r["credits_posted"], r["debits_pending"], r["credits_pending"], r
        )
        for r in rows
    }
    expiries: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for hold in due:
        amount = hold["amount"]
        accounts[hold["debit_account_id"]].debits_pending -= amount
        accounts[hold["credit_account_id"]].credits_pending -= amount
        expiry_id = new_id("tr")
        expiries.append(
            {
                "id": expiry_id,
                "scope": hold["scope"],
                "client_id": f"{hold['client_id']}.expire",
                "kind": "expire_pending",
                "status": "posted",
                "debit_account_id": hold["debit_account_id"],
                "credit_account_id": hold["credit_account_id"],
                "amount": amount,
                "book": hold["book"],
                "currency": hold["currency"],
                "code": hold["code"],
                "pending_id": hold["id"],
                "posted_amount": None,
                "timeout_at": None,
                "timeout_seconds": None,
                "batch_id": None,
                "metadata": None,
                "created_at": now,
                "resolved_at": None,
            }
        )
        entries.append(_entry(expiry_id, hold["debit_account_id"], "D", 0, -amount, now))
        entries.append(_entry(expiry_id, hold["credit_account_id"], "C", 0, -amount, now))
    session.execute(insert(_TRANSFERS), expiries)
    session.execute(insert(_ENTRIES), entries)
    session.execute(
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == bindparam("b_id"))
        .values(
            debits_pending=bindparam("debits_pending"),
            credits_pending=bindparam("credits_pending"),
        )
        .execution_options(synchronize_session=False),
        [
            {
                "b_id": acc_id,
                "debits_pending": t.debits_pending,
                "credits_pending": t.credits_pending,
            }
            for acc_id, t in accounts.items()
        ],
    )
    session.execute(
        update(_TRANSFERS)
        .where(_TRANSFERS.c.id.in_([h["id"] for h in due]))
        .values(status="expired", resolved_at=now)
    )
    return len(due)


# ---------------------------------------------------------------- audit


@dataclass
class AuditReport:
    ledgers: int = 0
    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(session: Session) -> AuditReport:
    """Check, per ledger, that debits equal credits, and that every account's four running
    totals equal the sums of its entries."""
    report = AuditReport()
    a = _ACCOUNTS.c
    totals = session.execute(
        select(
            a.book,
            a.currency,
            func.count(),
            func.coalesce(func.sum(a.debits_posted), 0),
            func.coalesce(func.sum(a.credits_posted), 0),
            func.coalesce(func.sum(a.debits_pending), 0),
            func.coalesce(func.sum(a.credits_pending), 0),
        ).group_by(a.book, a.currency)
    ).all()
    for book, currency, count, dpo, cpo, dpe, cpe in totals:
        report.ledgers += 1
        report.accounts += count
        if dpo != cpo:
            report.problems.append(
                f"ledger {book}/{currency}: debits posted {dpo} != credits posted {cpo}"
            )
        if dpe != cpe:
            report.problems.append(
                f"ledger {book}/{currency}: debits pending {dpe} != credits pending {cpe}"
            )
    e = _ENTRIES.c

    def side_sum(side: str, column: Any) -> Any:
        return func.coalesce(func.sum(case((e.side == side, column), else_=0)), 0)

    sums = (
        select(
            e.account_id,
            side_sum("D", e.posted_delta).label("dpo"),
            side_sum("C", e.posted_delta).label("cpo"),
            side_sum("D", e.pending_delta).label("dpe"),
            side_sum("C", e.pending_delta).label("cpe"),
            func.count().label("n"),
        )
        .group_by(e.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            a.id,
            a.debits_must_not_exceed_credits,
            a.credits_must_not_exceed_debits,
            a.debits_posted,
            a.credits_posted,
            a.debits_pending,
            a.credits_pending,
            func.coalesce(sums.c.dpo, 0),
            func.coalesce(sums.c.cpo, 0),
            func.coalesce(sums.c.dpe, 0),
            func.coalesce(sums.c.cpe, 0),
            func.coalesce(sums.c.n, 0),
        ).outerjoin(sums, sums.c.account_id == a.id)
    ).all()
    for acc_id, d_limited, c_limited, dpo, cpo, dpe, cpe, s_dpo, s_cpo, s_dpe, s_cpe, n in rows:
        report.entries += n
        for name, stored, summed in (
            ("debits_posted", dpo, s_dpo),
            ("credits_posted", cpo, s_cpo),
            ("debits_pending", dpe, s_dpe),
            ("credits_pending", cpe, s_cpe),
        ):
            if stored != summed:
                report.problems.append(
                    f"account {acc_id}: {name} is {stored} but its entries sum to {summed}"
                )
        if min(dpo, cpo, dpe, cpe) < 0:
            report.problems.append(f"account {acc_id}: a running total is negative")
        if d_limited and dpo + dpe > cpo:
            report.problems.append(
                f"account {acc_id}: debits {dpo} + {dpe} pending exceed credits {cpo}"
            )
        if c_limited and cpo + cpe > dpo:
            report.problems.append(
                f"account {acc_id}: credits {cpo} + {cpe} pending exceed debits {dpo}"
            )
    report.transfers = session.execute(select(func.count()).select_from(_TRANSFERS)).scalar_one()
    orphans = session.execute(
        select(func.count())
        .select_from(_TRANSFERS)
        .where(~select(_ENTRIES.c.id).where(_ENTRIES.c.transfer_id == _TRANSFERS.c.id).exists())
    ).scalar_one()
    if orphans:
        report.problems.append(f"{orphans} transfers have no entries")
    return report


# ---------------------------------------------------------------- internals


def _check_shapes(ops: Sequence[Operation]) -> list[str]:
    """Static checks that need no database; returns the client id of each operation."""
    ids: list[str] = []
    seen: set[str] = set()
    for index, op in enumerate(ops):
        if op.client_id is not None and not CLIENT_ID_PATTERN.match(op.client_id):
            raise LedgerError(
                "invalid_transfer_id",
                "a transfer id is 1–64 letters, digits, '_' or '-'",
                field="id",
                index=index,
            )
        if isinstance(op, NewTransfer):
            _check_amount(op.amount, index)
            if op.debit_account_id == op.credit_account_id:
                raise LedgerError(
                    "accounts_must_be_different",
                    "a transfer cannot debit and credit the same account",
                    field="credit_account",
                    index=index,
                )
            if op.timeout_seconds is not None:
                if not op.pending:
                    raise LedgerError(
                        "timeout_requires_pending",
                        "only a pending transfer can time out",
                        field="timeout_seconds",
                        index=index,
                    )
                t = op.timeout_seconds
                if (
                    isinstance(t, bool)
                    or not isinstance(t, int)
                    or not 0 < t <= MAX_TIMEOUT_SECONDS
                ):
                    raise LedgerError(
                        "invalid_timeout",
                        f"timeout_seconds must be a whole number from 1 to {MAX_TIMEOUT_SECONDS}",
                        field="timeout_seconds",
                        index=index,
                    )
            if not isinstance(op.code, str) or not 0 < len(op.code) <= MAX_CODE_LENGTH:
                raise LedgerError(
                    "invalid_code",
                    f"code must be 1–{MAX_CODE_LENGTH} characters",
                    field="code",
                    index=index,
                )
            if op.currency is not None and not is_currency(op.currency):
                raise LedgerError(
                    "unknown_currency",
                    f"'{op.currency}' is not an ISO 4217 currency code",
                    field="currency",
                    index=index,
                )
            client_id = op.client_id or new_id("tr")
        elif isinstance(op, PostPending):
            if op.amount is not None:
                _check_amount(op.amount, index)
            client_id = op.client_id or f"{op.pending_client_id}.post"
        else:
            client_id = op.client_id or f"{op.pending_client_id}.void"
        if client_id in seen:
            raise LedgerError(
                "duplicate_transfer_id",
                f"transfer id {client_id} appears twice in the batch",
                field="id",
                index=index,
            )
        seen.add(client_id)
        ids.append(client_id)
    return ids


def _check_amount(amount: int, index: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerError(
            "invalid_amount",
            "amount must be an integer of minor units",
            field="amount",
            index=index,
        )
    if amount <= 0:
        raise LedgerError(
            "amount_must_be_positive",
            "amount must be greater than zero",
            field="amount",
            index=index,
        )
    if amount > MAX_AMOUNT:
        raise LedgerError(
            "amount_too_large", f"amount must be at most {MAX_AMOUNT}", field="amount", index=index
        )


def _account(accounts: dict[str, _Totals], acc_id: str, field_name: str, index: int) -> _Totals:
    t = accounts.get(acc_id)
    if t is None:
        raise LedgerError(
            "account_not_found", f"no account {acc_id}", status=404, field=field_name, index=index
        )
    return t


def _plan_new(
    op: NewTransfer,
    client_id: str,
    accounts: dict[str, _Totals],
    scope: str,
    now: datetime,
    batch_id: str | None,
    index: int,
) -> _Planned:
    debit = _account(accounts, op.debit_account_id, "debit_account", index)
    credit = _account(accounts, op.credit_account_id, "credit_account", index)
    d, c = debit.row, credit.row
    if (d["book"], d["currency"]) != (c["book"], c["currency"]):
        raise LedgerError(
            "currency_mismatch" if d["currency"] != c["currency"] else "ledger_mismatch",
            f"accounts are in different ledgers ({d['book']}/{d['currency']} and "
            f"{c['book']}/{c['currency']}); a transfer never crosses ledgers",
            field="credit_account",
            index=index,
        )
    if op.currency is not None and op.currency != d["currency"]:
        raise LedgerError(
            "currency_mismatch",
            f"the accounts hold {d['currency']}, not {op.currency}",
            field="currency",
            index=index,
        )
    amount = op.amount
    if op.pending:
        _check_debit(debit, amount, index)
        _check_credit(credit, amount, index)
        debit.debits_pending += amount
        credit.credits_pending += amount
        posted_delta, pending_delta = 0, amount
    else:
        _check_debit(debit, amount, index)
        _check_credit(credit, amount, index)
        debit.debits_posted += amount
        credit.credits_posted += amount
        posted_delta, pending_delta = amount, 0
    debit.changed = credit.changed = True
    _check_overflow(debit, index)
    _check_overflow(credit, index)
    # A generated client id is itself a fresh transfer id: one ULID instead of two.
    transfer_id = client_id if op.client_id is None else new_id("tr")
    timeout_at = now + timedelta(seconds=op.timeout_seconds) if op.timeout_seconds else None
    values = {
        "id": transfer_id,
        "scope": scope,
        "client_id": client_id,
        "kind": "pending" if op.pending else "posted",
        "status": "pending" if op.pending else "posted",
        "debit_account_id": op.debit_account_id,
        "credit_account_id": op.credit_account_id,
        "amount": amount,
        "book": d["book"],
        "currency": d["currency"],
        "code": op.code,
        "pending_id": None,
        "posted_amount": None,
        "timeout_at": timeout_at,
        "timeout_seconds": op.timeout_seconds,
        "batch_id": batch_id,
        "metadata": op.metadata,
        "created_at": now,
        "resolved_at": None,
    }
    return _Planned(
        values,
        [
            _entry(transfer_id, op.debit_account_id, "D", posted_delta, pending_delta, now),
            _entry(transfer_id, op.credit_account_id, "C", posted_delta, pending_delta, now),
        ],
    )


def _plan_resolution(
    op: PostPending | VoidPending,
    client_id: str,
    hold: dict[str, Any],
    accounts: dict[str, _Totals],
    scope: str,
    now: datetime,
    batch_id: str | None,
    index: int,
) -> _Planned:
    if hold["kind"] != "pending":
        raise LedgerError(
            "pending_transfer_not_pending",
            f"transfer {hold['client_id']} is not a pending transfer",
            status=409,
            field="pending_id",
            index=index,
        )
    status = hold["status"]
    if status != "pending":
        raise LedgerError(
            f"pending_transfer_already_{status}",
            f"pending transfer {hold['client_id']} is already {status}",
            status=409,
            field="pending_id",
            index=index,
        )
    if hold["timeout_at"] is not None and utc(hold["timeout_at"]) <= now:
        raise LedgerError(
            "pending_transfer_expired",
            f"pending transfer {hold['client_id']} timed out at {utc(hold['timeout_at'])}",
            status=409,
            field="pending_id",
            index=index,
        )
    debit = _account(accounts, hold["debit_account_id"], "debit_account", index)
    credit = _account(accounts, hold["credit_account_id"], "credit_account", index)
    amount = hold["amount"]
    if isinstance(op, PostPending):
        posted = amount if op.amount is None else op.amount
        if posted > amount:
            raise LedgerError(
                "exceeds_pending_transfer_amount",
                f"cannot post {posted}: the hold is for {amount}",
                field="amount",
                index=index,
            )
        debit.debits_pending -= amount
        credit.credits_pending -= amount
        debit.debits_posted += posted
        credit.credits_posted += posted
        hold["status"], hold["posted_amount"] = "posted", posted
        kind, posted_delta = "post_pending", posted
    else:
        debit.debits_pending -= amount
        credit.credits_pending -= amount
        hold["status"] = "voided"
        kind, posted, posted_delta = "void_pending", amount, 0
    hold["resolved_at"] = now
    debit.changed = credit.changed = True
    _check_overflow(debit, index)
    _check_overflow(credit, index)
    transfer_id = new_id("tr")
    values = {
        "id": transfer_id,
        "scope": scope,
        "client_id": client_id,
        "kind": kind,
        "status": "posted" if kind == "post_pending" else "voided",
        "debit_account_id": hold["debit_account_id"],
        "credit_account_id": hold["credit_account_id"],
        "amount": posted,
        "book": hold["book"],
        "currency": hold["currency"],
        "code": hold["code"],
        "pending_id": hold["id"],
        "posted_amount": None,
        "timeout_at": None,
        "timeout_seconds": None,
        "batch_id": batch_id,
        "metadata": op.metadata,
        "created_at": now,
        "resolved_at": None,
    }
    return _Planned(
        values,
        [
            _entry(transfer_id, hold["debit_account_id"], "D", posted_delta, -amount, now),
            _entry(transfer_id, hold["credit_account_id"], "C", posted_delta, -amount, now),
        ],
    )


def _check_debit(t: _Totals, amount: int, index: int) -> None:
    if t.row["debits_must_not_exceed_credits"] and (
        t.debits_posted + t.debits_pending + amount > t.credits_posted
    ):
        raise LedgerError(
            "insufficient_funds",
            f"account {t.row['id']} has {t.credits_posted - t.debits_posted - t.debits_pending} "
            f"available, {amount} needed",
            status=402,
            field="debit_account",
            index=index,
        )


def _check_credit(t: _Totals, amount: int, index: int) -> None:
    if t.row["credits_must_not_exceed_debits"] and (
        t.credits_posted + t.credits_pending + amount > t.debits_posted
    ):
        raise LedgerError(
            "credit_limit_exceeded",
            f"account {t.row['id']} may not be credited beyond its debits",
            status=402,
            field="credit_account",
            index=index,
        )


def _check_overflow(t: _Totals, index: int) -> None:
    if max(t.debits_posted + t.debits_pending, t.credits_posted + t.credits_pending) > MAX_TOTAL:
        raise LedgerError(
            "overflow", f"account {t.row['id']} would overflow", field="amount", index=index
        )


def _entry(
    transfer_id: str, account_id: str, side: str, posted: int, pending: int, now: datetime
) -> dict[str, Any]:
    return {
        "transfer_id": transfer_id,
        "account_id": account_id,
        "side": side,
        "posted_delta": posted,
        "pending_delta": pending,
        "created_at": now,
    }


_COMPARED = (
    ("debit_account_id", "debit_account"),
    ("credit_account_id", "credit_account"),
    ("amount", "amount"),
    ("currency", "currency"),
    ("code", "code"),
    ("pending", "pending"),
    ("timeout_seconds", "timeout_seconds"),
    ("metadata", "metadata"),
)


def _replay(
    session: Session,
    ops: Sequence[Operation],
    client_ids: list[str],
    existing: dict[str, Any],
    pendings: dict[str, dict[str, Any]],
) -> list[TransferResult]:
    rows = []
    for index, (op, client_id) in enumerate(zip(ops, client_ids, strict=True)):
        row = existing.get(client_id)
        if row is None:
            raise LedgerError(
                "batch_partially_exists",
                "some transfers of this batch exist and others do not; "
                "retry with exactly the original batch",
                status=409,
                field="id",
                index=index,
            )
        differing = _first_difference(op, row, pendings)
        if differing:
            raise LedgerError(
                "transfer_exists_with_different_fields",
                f"transfer {client_id} exists with a different {differing}",
                status=409,
                field=differing,
                index=index,
            )
        rows.append(row)
    return [TransferResult(v, False) for v in _transfer_views(session, rows)]


def _first_difference(op: Operation, row: Any, pendings: dict[str, dict[str, Any]]) -> str | None:
    if isinstance(op, NewTransfer):
        wanted = {
            "kind": "pending" if op.pending else "posted",
            "debit_account_id": op.debit_account_id,
            "credit_account_id": op.credit_account_id,
            "amount": op.amount,
            "currency": op.currency or row["currency"],
            "code": op.code,
            "timeout_seconds": op.timeout_seconds,
            "metadata": op.metadata,
        }
        names = {
            "kind": "pending",
            "debit_account_id": "debit_account",
            "credit_account_id": "credit_account",
        }
    else:
        hold = pendings.get(op.pending_client_id)
        wanted = {
            "kind": "post_pending" if isinstance(op, PostPending) else "void_pending",
            "pending_id": hold["id"] if hold else None,
            "metadata": op.metadata,
        }
        if isinstance(op, PostPending) and op.amount is not None:
            wanted["amount"] = op.amount
        elif isinstance(op, PostPending) and hold is not None:
            wanted["amount"] = hold["amount"]
        names = {"kind": "kind", "pending_id": "pending_id"}
    for key, value in wanted.items():
        if row[key] != value:
            return names.get(key, key)
    return None


def _account_view(r: Any) -> AccountView:
    return AccountView(
        id=r["id"],
        book=r["book"],
        currency=r["currency"],
        code=r["code"],
        scope=r["scope"],
        owner=r["owner"],
        flags=AccountFlags(
            bool(r["debits_must_not_exceed_credits"]), bool(r["credits_must_not_exceed_debits"])
        ),
        debits_posted=r["debits_posted"],
        credits_posted=r["credits_posted"],
        debits_pending=r["debits_pending"],
        credits_pending=r["credits_pending"],
        metadata=r["metadata"],
        created_at=utc(r["created_at"]),
    )


def _views_from_values(session: Session, planned: list[_Planned]) -> list[TransferView]:
    return _transfer_views(session, [p.values for p in planned])


def _transfer_views(session: Session, rows: Sequence[Any]) -> list[TransferView]:
    pending_ids = {r["pending_id"] for r in rows if r["pending_id"]}
    names: dict[str, str] = {}
    if pending_ids:
        names = dict(
            session.execute(
                select(_TRANSFERS.c.id, _TRANSFERS.c.client_id).where(
                    _TRANSFERS.c.id.in_(pending_ids)
                )
            ).all()
        )
    return [
        TransferView(
            id=r["id"],
            client_id=r["client_id"],
            scope=r["scope"],
            kind=r["kind"],
            status=r["status"],
            debit_account_id=r["debit_account_id"],
            credit_account_id=r["credit_account_id"],
            amount=r["amount"],
            book=r["book"],
            currency=r["currency"],
            code=r["code"],
            pending_id=r["pending_id"],
            pending_client_id=names.get(r["pending_id"]) if r["pending_id"] else None,
            posted_amount=r["posted_amount"],
            timeout_seconds=r["timeout_seconds"],
            timeout_at=utc(r["timeout_at"]) if r["timeout_at"] else None,
            batch_id=r["batch_id"],
            metadata=r["metadata"],
            created_at=utc(r["created_at"]),
            resolved_at=utc(r["resolved_at"]) if r["resolved_at"] else None,
        )
        for r in rows
    ]
