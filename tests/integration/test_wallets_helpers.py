"""Factories shared by the wallets tests (no tests here, named to sit with them)."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from potluck.bus.models import OutboxEvent
from potluck.ledger import service as ledger
from potluck.wallets import service as wallets
from tests.integration.test_checkout_helpers import person

__all__ = ["available", "count", "events", "fund", "person"]


def fund(potluck, user_id, amount, currency="EUR"):
    """Credit ``user_id``'s wallet with ``amount`` from a funding account."""
    now = potluck.clock.now()
    with potluck.db.transaction() as s:
        source = ledger.create_account(s, currency=currency, code="test_funding", now=now).id
        wallet = wallets.wallet_account(s, user_id=user_id, currency=currency, now=now)
        ledger.create_transfer(
            s,
            ledger.NewTransfer(debit_account_id=source, credit_account_id=wallet, amount=amount),
            now=now,
        )
    return wallet


def available(potluck, user_id, currency="EUR"):
    with potluck.db.read() as s:
        for b in wallets.balances(s, user_id=user_id):
            if b.currency == currency:
                return b
    return wallets.Balance(currency=currency, total=0, available=0, held=0)


def events(potluck, event_type):
    with potluck.db.read() as s:
        rows = s.execute(
            select(OutboxEvent.data).where(OutboxEvent.type == event_type).order_by(OutboxEvent.id)
        ).scalars()
        return list(rows)


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def quick_people(potluck, n, prefix="q"):
    """``n`` users inserted directly (no password hashing: they never sign in), a year old."""
    from datetime import timedelta

    from potluck.identity.models import User
    from potluck.ids import new_id

    now = potluck.clock.now() - timedelta(days=365)
    ids = [new_id("usr") for _ in range(n)]
    with potluck.db.transaction() as s:
        s.execute(
            insert(User),
            [
                {
                    "id": user_id,
                    "email": f"{prefix}{i}@example.com",
                    "name": f"{prefix}{i}",
                    "password_hash": "!",
                    "role": "user",
                    "created_at": now,
                }
                for i, user_id in enumerate(ids)
            ],
        )
    return ids
