"""Hold timeouts: release pending transfers whose timeout has passed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.ids import new_id
from potluck.ledger.tables import (
    _ACCOUNTS,
    _ENTRIES,
    _TRANSFERS,
    _entry,
    _Totals,
    lock_accounts_statement,
)


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
            # The literal (not a bound parameter) lets both databases use the partial index
            # of pending holds.
            .where(text("ledger_transfers.status = 'pending'"), _TRANSFERS.c.timeout_at <= now)
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
    rows = session.execute(lock_accounts_statement(session), {"ids": ids}).mappings()
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
