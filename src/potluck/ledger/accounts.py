"""Ledger accounts: open, read and list them, and list an account's entries."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.ids import new_id
from potluck.ledger.tables import _ACCOUNTS, _ENTRIES, _TRANSFERS
from potluck.ledger.types import SYSTEM_SCOPE, AccountFlags, AccountView, LedgerError
from potluck.money import check_currency


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
    if starting_after is not None:
        known = session.scalar(
            select(_ACCOUNTS.c.id).where(
                _ACCOUNTS.c.scope == scope, _ACCOUNTS.c.id == starting_after
            )
        )
        if known is None:
            raise LedgerError(
                "invalid_cursor",
                f"starting_after: no account {starting_after}",
                field="starting_after",
            )
        query = query.where(_ACCOUNTS.c.id > starting_after)
    rows = session.execute(query.order_by(_ACCOUNTS.c.id).limit(limit + 1)).mappings().all()
    return [_account_view(r) for r in rows[:limit]], len(rows) > limit


_ENTRY_ID = re.compile(r"[0-9]{1,18}")  # an entry id fits a signed 64-bit integer


def entry_cursor(session: Session, account_id: str, starting_after: int | str) -> int:
    """``starting_after`` as an entry id of ``account_id``, else 422 ``invalid_cursor``.

    An id that is not a number, no entry, or another account's entry is refused like an
    unknown cursor of every other list (rather than read as "nothing after it").
    """
    raw = str(starting_after)
    known = None
    if _ENTRY_ID.fullmatch(raw):
        known = session.scalar(
            select(_ENTRIES.c.id).where(
                _ENTRIES.c.id == int(raw), _ENTRIES.c.account_id == account_id
            )
        )
    if known is None:
        raise LedgerError(
            "invalid_cursor",
            f"starting_after: {raw[:40]} is not an entry of account {account_id}",
            field="starting_after",
        )
    return int(known)


def list_entries(
    session: Session, account_id: str, *, limit: int, starting_after: int | str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Entries of one account, oldest first, with the client id of their transfer.

    ``starting_after`` is an entry id of this account (422 ``invalid_cursor`` otherwise).
    """
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
        query = query.where(_ENTRIES.c.id > entry_cursor(session, account_id, starting_after))
    rows = session.execute(query.order_by(_ENTRIES.c.id).limit(limit + 1)).mappings().all()
    return [dict(r) for r in rows[:limit]], len(rows) > limit


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
