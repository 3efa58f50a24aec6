"""The platform's own accounts per currency: PSP receivable and clearing, opened on first use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.ledger import service as ledger
from potluck.marketplace.models import (
    PlatformAccount,
)
from potluck.marketplace.parties import platform_book, platform_scope

# ---------------------------------------------------------------- platform accounts

PSP_RECEIVABLE_CODE = "psp_receivable"
CLEARING_CODE = "clearing"
# (platform_id, currency) -> {code: account_id}. Only rows read back from the database are
# cached; accounts are never deleted or changed, so an entry never goes stale.
_platform_accounts_cache: dict[tuple[str, str], dict[str, str]] = {}


def platform_accounts(
    session: Session, *, platform_id: str, currency: str, now: datetime
) -> dict[str, str]:
    """The platform's ``psp_receivable`` and ``clearing`` account ids for ``currency``,
    opened on first use.

    ``psp_receivable`` is what the PSP owes the platform (it goes negative as orders come
    in); ``clearing`` holds an order's money until the split credits the parties.
    """
    key = (platform_id, currency)
    cached = _platform_accounts_cache.get(key)
    if cached is not None:
        return cached
    query = select(PlatformAccount.code, PlatformAccount.account_id).where(
        PlatformAccount.platform_id == platform_id, PlatformAccount.currency == currency
    )
    found: dict[str, str] = {code: acc for code, acc in session.execute(query).all()}
    opened = False
    for code in (PSP_RECEIVABLE_CODE, CLEARING_CODE):
        if code not in found:
            found[code] = _open_platform_account(
                session, platform_id=platform_id, currency=currency, code=code, now=now
            )
            opened = True
    if opened:
        return found  # possibly opened in this transaction: cached once read back committed
    _platform_accounts_cache[key] = found
    return found


def _open_platform_account(
    session: Session, *, platform_id: str, currency: str, code: str, now: datetime
) -> str:
    postgres = session.get_bind().dialect.name == "postgresql"
    savepoint = session.begin_nested() if postgres else None
    try:
        account = ledger.create_account(
            session,
            currency=currency,
            code=code,
            now=now,
            book=platform_book(platform_id),
            scope=platform_scope(platform_id),
            owner=platform_scope(platform_id),
            flags=ledger.AccountFlags(),
        )
        session.execute(
            insert(PlatformAccount),
            [
                {
                    "platform_id": platform_id,
                    "currency": currency,
                    "code": code,
                    "account_id": account.id,
                }
            ],
        )
    except IntegrityError:
        # A concurrent first order opened it (PostgreSQL: we waited for its commit).
        if savepoint is None:
            raise
        savepoint.rollback()
        return session.execute(
            select(PlatformAccount.account_id).where(
                PlatformAccount.platform_id == platform_id,
                PlatformAccount.currency == currency,
                PlatformAccount.code == code,
            )
        ).scalar_one()
    if savepoint is not None:
        savepoint.commit()
    return account.id
