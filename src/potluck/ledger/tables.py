"""What the ledger's SQL shares: SQLAlchemy Core table handles, statements built once,
running totals and entry rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select

from potluck.ledger.models import Account, Entry, Transfer

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


@dataclass(slots=True)
class _Totals:
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    row: Any
    changed: bool = False


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
