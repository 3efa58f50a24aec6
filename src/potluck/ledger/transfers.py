"""Transfers: create them (posted, pending, post and void of a hold), read and list them.

``create_transfers`` locks, checks idempotency, plans the batch (``planning``) and writes it
(``bulk``); the semantics of each kind of transfer are described in the package docstring
(``potluck.ledger``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from potluck.bus.outbox import publish
from potluck.clock import utc
from potluck.ids import new_id
from potluck.ledger import bulk
from potluck.ledger.accounts import get_account
from potluck.ledger.planning import _check_shapes, _plan_new, _plan_resolution, _Planned
from potluck.ledger.tables import (
    _ENTRIES,
    _TRANSFERS,
    _Totals,
    existing_transfers_statement,
    lock_accounts_statement,
)
from potluck.ledger.types import (
    HOLD_TIMEOUT_EVENT,
    SYSTEM_SCOPE,
    LedgerError,
    NewTransfer,
    Operation,
    PostPending,
    TransferResult,
    TransferView,
    VoidPending,
)


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

    Every query walks an index and stops after ``limit + 1`` rows: (scope, id) without an
    account; with one, the account's entries (account_id, id), which hold exactly one entry
    per transfer that touched it, in the order they were written. Indexing transfers by debit
    and by credit account instead would cost every transfer two more random B-tree writes.
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
        e = _ENTRIES.c
        query = (
            select(_TRANSFERS)
            .join(_ENTRIES, e.transfer_id == _TRANSFERS.c.id)
            .where(e.account_id == account_id, _TRANSFERS.c.scope == scope)
        )
        if after is not None:
            after_entry = session.scalar(
                select(e.id).where(e.account_id == account_id, e.transfer_id == after)
            )
            if after_entry is None:
                raise LedgerError(
                    "invalid_cursor",
                    f"starting_after: transfer {starting_after} does not touch {account_id}",
                    field="starting_after",
                )
            query = query.where(e.id > after_entry)
        if status is not None:
            query = query.where(_TRANSFERS.c.status == status)
        rows = list(session.execute(query.order_by(e.id).limit(limit + 1)).mappings().all())
    return _transfer_views(session, rows[:limit]), len(rows) > limit


def create_transfer(
    session: Session, op: Operation, *, now: datetime, scope: str = SYSTEM_SCOPE
) -> TransferResult:
    try:
        return create_transfers(session, [op], now=now, scope=scope)[0]
    except LedgerError as exc:
        exc.index = None  # one transfer, not a batch: its errors name its own fields
        raise


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
        # Core statements on the session's connection skip the ORM execution layer.
        rows = (
            session.connection()
            .execute(lock_accounts_statement(session), {"ids": sorted(account_ids)})
            .mappings()
        )
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
            for r in session.connection()
            .execute(existing_transfers_statement(session), {"scope": scope, "client_ids": chosen})
            .mappings()
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
            generated = isinstance(op, NewTransfer) and op.client_id is None
            raise LedgerError(
                "batch_partially_exists",
                "this transfer has no id, so a retry of its batch cannot be recognised; give "
                "every transfer of a batch an id (or send an Idempotency-Key)"
                if generated
                else "some transfers of this batch exist and others do not; "
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
