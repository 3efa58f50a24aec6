"""Demo data for ``potluck demo`` / ``make run``: safe to load twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from potluck.bootstrap import Potluck
from potluck.identity.models import Platform, User
from potluck.ledger import service as ledger

DEMO_EMAIL = "demo@potluck.test"
DEMO_PASSWORD = "potluck-demo-password"  # noqa: S105 - a published demo credential
DEMO_PLATFORM = "Demo Marketplace"


def load_demo(app: Potluck) -> dict[str, Any]:
    from potluck.identity.service import create_platform, register_user

    out: dict[str, Any] = {"person": f"{DEMO_EMAIL} / {DEMO_PASSWORD}"}
    with app.db.read() as s:
        user_id = s.execute(select(User.id).where(User.email == DEMO_EMAIL)).scalar_one_or_none()
        platform_id = s.execute(
            select(Platform.id).where(Platform.name == DEMO_PLATFORM)
        ).scalar_one_or_none()
    if user_id is None:
        user = register_user(app, email=DEMO_EMAIL, password=DEMO_PASSWORD, name="Demo Person")
        user_id = user.id
    if platform_id is not None:
        out["platform"] = f"{DEMO_PLATFORM} ({platform_id}) already exists"
        out["secret_key"] = "shown once at creation; `potluck platforms create` makes another"  # noqa: S105
        return out
    platform, secret = create_platform(app, name=DEMO_PLATFORM, owner_user_id=user_id)
    out["platform"] = f"{platform.name} ({platform.id})"
    out["secret_key"] = f"{secret}  (shown once)"
    scope = f"platform:{platform.id}"
    book = f"platform:{platform.id}"
    now = app.clock.now()
    wallet = ledger.AccountFlags(debits_must_not_exceed_credits=True)
    with app.db.transaction() as s:
        clearing = ledger.create_account(
            s, currency="EUR", code="clearing", book=book, scope=scope, owner=scope, now=now
        )
        alice, bob = (
            ledger.create_account(
                s,
                currency="EUR",
                code="wallet",
                book=book,
                scope=scope,
                owner=scope,
                flags=wallet,
                metadata={"holder": holder},
                now=now,
            )
            for holder in ("Alice", "Bob")
        )
        ledger.create_transfers(
            s,
            [
                ledger.NewTransfer(clearing.id, alice.id, 10_000, client_id="demo-top-up-alice"),
                ledger.NewTransfer(alice.id, bob.id, 2_500, client_id="demo-alice-pays-bob"),
                ledger.NewTransfer(
                    alice.id,
                    bob.id,
                    1_000,
                    client_id="demo-hold",
                    pending=True,
                    timeout_seconds=7 * 24 * 3600,
                ),
            ],
            now=now,
            scope=scope,
        )
    out["accounts"] = f"clearing {clearing.id}, Alice {alice.id}, Bob {bob.id}"
    out["balances"] = "Alice 75.00 EUR (10.00 held), Bob 25.00 EUR"
    return out
