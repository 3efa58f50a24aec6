"""Demo data for ``potluck demo`` / ``make run``: safe to load twice.

The demo platform gets two ledger wallets (Alice, Bob) with a few transfers, and a
marketplace: a restaurant, a courier and the platform itself as parties, split rules
(restaurant 80 %, courier a fixed 3.00, the rest to the platform), two orders split through
the event bus, a bank account for the restaurant and one payout, completed by the simulated
bank. Balances are final when ``load_demo`` returns (it drains the bus).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from potluck.bootstrap import Potluck
from potluck.identity.models import Platform, User
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.marketplace.models import Party
from potluck.payouts import service as payouts
from potluck.payouts.models import BankAccount, Payout
from potluck.splits import SplitRule, SplitRules

DEMO_EMAIL = "demo@potluck.test"
DEMO_PASSWORD = "potluck-demo-password"  # noqa: S105 - a published demo credential
DEMO_PLATFORM = "Demo Marketplace"

# The marketplace part of the demo (all in EUR).
CURRENCY = "EUR"
RESTAURANT = "Trattoria Roma"
COURIER = "Speedy Couriers"
PLATFORM_PARTY = "Demo Marketplace"
DEMO_PARTIES = ((RESTAURANT, "merchant"), (COURIER, "partner"), (PLATFORM_PARTY, "platform"))
DEMO_ORDERS = (("demo-order-1", 2_590), ("demo-order-2", 4_200))  # 25.90 and 42.00 EUR
DEMO_IBAN = "DE89 3704 0044 0532 0130 00"  # the standard example IBAN
DEMO_PAYOUT = 4_000  # 40.00 EUR from the restaurant's wallet to its bank


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
        out.update(load_marketplace_demo(app, platform_id))
        out.update(load_checkout_demo(app, platform_id, user_id))
        out.update(load_people_demo(app, user_id))
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
    out.update(load_marketplace_demo(app, platform.id))
    out.update(load_checkout_demo(app, platform.id, user_id))
    out.update(load_people_demo(app, user_id))
    return out


def load_marketplace_demo(app: Potluck, platform_id: str) -> dict[str, str]:
    """Parties, split rules, two split orders, a bank account and a completed payout.

    Loaded once per platform (a demo database from before the marketplace gets it on the
    next ``potluck demo``); later runs only show what is there.
    """
    with app.db.read() as s:
        loaded = s.execute(
            select(Party.id).where(Party.platform_id == platform_id, Party.name == RESTAURANT)
        ).scalar_one_or_none()
    if loaded is None:
        _create_marketplace(app, platform_id)
    return _describe_marketplace(app, platform_id)


def _create_marketplace(app: Potluck, platform_id: str) -> None:
    now = app.clock.now()
    with app.db.transaction() as s:
        restaurant, courier, platform_party = (
            marketplace.create_party(
                s, platform_id=platform_id, name=name, kind=kind, currency=CURRENCY, now=now
            )
            for name, kind in DEMO_PARTIES
        )
        marketplace.put_split_rules(
            s,
            platform_id=platform_id,
            currency=CURRENCY,
            split=SplitRules(
                rules=(
                    SplitRule(restaurant.id, "percent", 8_000),  # 80 % (basis points)
                    SplitRule(courier.id, "fixed", 300),  # 3.00 EUR per order
                ),
                remainder_to=platform_party.id,
            ),
            now=now,
        )
        for order_id, amount in DEMO_ORDERS:
            marketplace.record_order(
                s,
                platform_id=platform_id,
                order_id=order_id,
                amount=amount,
                currency=CURRENCY,
                now=now,
            )
        bank_account = payouts.add_bank_account(
            s,
            platform_id=platform_id,
            party_id=restaurant.id,
            holder_name=RESTAURANT,
            account_number=DEMO_IBAN,
            routing_type="iban",
            routing_value=None,
            now=now,
        )
    app.bus.drain()  # the splitter and the wallet credits: the restaurant now has its share
    with app.db.transaction() as s:
        payouts.create_payout(
            s,
            platform_id=platform_id,
            party_id=restaurant.id,
            bank_account_id=bank_account.id,
            amount=DEMO_PAYOUT,
            currency=CURRENCY,
            now=app.clock.now(),
        )
    app.bus.drain()  # the payouts worker sends it to the simulated bank: completed


def _describe_marketplace(app: Potluck, platform_id: str) -> dict[str, str]:
    def money(amount: int) -> str:
        units, cents = divmod(amount, 100)  # EUR: two decimals, as the ledger lines above
        return f"{units}.{cents:02d} {CURRENCY}"

    out: dict[str, str] = {}
    with app.db.read() as s:
        parties = [
            marketplace.get_party(s, pid, platform_id=platform_id)
            for pid in s.execute(
                select(Party.id).where(Party.platform_id == platform_id).order_by(Party.id)
            ).scalars()
        ]
        out["parties"] = ", ".join(f"{p.name} {p.id} ({p.kind})" for p in parties)
        out["split rules"] = (
            f"{CURRENCY}: {RESTAURANT} 80 %, {COURIER} {money(300)} per order, "
            f"the rest to {PLATFORM_PARTY}"
        )
        orders, _ = marketplace.list_orders(s, platform_id=platform_id, limit=10)
        out["orders"] = ", ".join(
            f"{o.order_id} {money(o.amount)} ({o.id}, split {o.split_status})" for o in orders
        )
        bank = s.execute(
            select(BankAccount.id, BankAccount.account_number)
            .where(BankAccount.platform_id == platform_id)
            .order_by(BankAccount.id)
        ).first()
        if bank is not None:
            out["bank account"] = f"{RESTAURANT} {bank.id} (IBAN ••••{bank.account_number[-4:]})"
        payout = s.execute(
            select(Payout.id, Payout.amount, Payout.status)
            .where(Payout.platform_id == platform_id)
            .order_by(Payout.id)
        ).first()
        if payout is not None:
            out["payout"] = f"{payout.id} {money(payout.amount)} to {RESTAURANT}: {payout.status}"
        wallets = [(p.name, marketplace.wallet_balance(s, p)) for p in parties]
        out["wallets"] = ", ".join(
            f"{name} {money(w.total)}" + (f" ({money(w.held)} held)" if w.held else "")
            for name, w in wallets
        )
    return out


# ---------------------------------------------------------------- checkout

DEMO_MENU = (("margherita", "Pizza Margherita", 900), ("tiramisu", "Tiramisù", 550))
DEMO_GUESTS = ("ana@potluck.test", "ben@potluck.test")


def load_checkout_demo(app: Potluck, platform_id: str, host_user_id: str) -> dict[str, str]:
    """The restaurant's menu and one open group order hosted by the demo person: 3 shares,
    the host's paid, the two guests' payment links waiting (sandbox hosted page). Loaded
    once; later runs only show it."""
    from potluck.checkout import catalog
    from potluck.checkout import service as checkout
    from potluck.checkout.models import GroupOrder
    from potluck.payments import sandbox_control

    with app.db.read() as s:
        restaurant = s.execute(
            select(Party.id).where(Party.platform_id == platform_id, Party.name == RESTAURANT)
        ).scalar_one()
        group_id = s.execute(
            select(GroupOrder.id)
            .where(GroupOrder.host_user_id == host_user_id, GroupOrder.merchant_id == restaurant)
            .order_by(GroupOrder.id)
        ).scalar()
    if group_id is None:
        now = app.clock.now()
        with app.db.transaction() as s:
            for sku, name, price in DEMO_MENU:
                catalog.put_item(
                    s,
                    platform_id=platform_id,
                    merchant_id=restaurant,
                    sku=sku,
                    name=name,
                    unit_price=price,
                    stock=100,
                    now=now,
                )
            group_id = checkout.create_group_order(
                s,
                host_user_id=host_user_id,
                merchant_id=restaurant,
                items=[("margherita", 3), ("tiramisu", 2)],
                currency=CURRENCY,
                split="equal",
                expires_in_seconds=7 * 24 * 3600,
                fallback="host_pays",
                now=now,
            ).id
            for email in DEMO_GUESTS:
                checkout.add_member(
                    s, group_id=group_id, host_user_id=host_user_id, email=email, now=now
                )
            group = checkout.open_group_order(
                s, app, group_id=group_id, host_user_id=host_user_id, now=now
            )
        host_intent = group.members[0].payment_intent
        if host_intent is not None:
            sandbox_control.pay(app, host_intent)
        app.bus.drain()
    with app.db.read() as s:
        view = checkout.get_group_order(s, group_id, user_id=host_user_id)
    from potluck.money import format_money

    shares = ", ".join(
        f"{m.email} {format_money(m.share or 0, view.currency)} ({m.status}"
        + (f": {m.payment_url}" if m.status == "due" else "")
        + ")"
        for m in view.members
    )
    total = format_money(view.total, view.currency)
    return {"group order": f"{view.id} {total}, {view.status}: {shares}"}


DEMO_FRIENDS = (("ana@potluck.test", "Ana"), ("ben@potluck.test", "Ben"))
DEMO_TRIP = "Lisbon trip"
DEMO_TRIP_EXPENSES = (
    ("Dinner at the harbour", 9_600, "food", 0),
    ("Tram tickets", 2_250, "transport", 1),
    ("Apartment", 36_000, "lodging", 2),
)


def load_people_demo(app: Potluck, user_id: str) -> dict[str, str]:
    """What a person sees on the web app: friends Ana and Ben (same password), a sharing group
    with three expenses paid by each of them, and a wallet topped up through the sandbox from
    which the demo person paid Ana. Loaded once; later runs only show it."""
    from potluck.identity.service import register_user
    from potluck.money import format_money
    from potluck.payments import sandbox_control
    from potluck.sharing import service as sharing
    from potluck.sharing.models import SharingGroup
    from potluck.wallets import service as wallets

    with app.db.read() as s:
        known = set(
            s.execute(
                select(User.email).where(User.email.in_([e for e, _ in DEMO_FRIENDS]))
            ).scalars()
        )
        group_id = s.execute(
            select(SharingGroup.id).where(
                SharingGroup.created_by == user_id, SharingGroup.name == DEMO_TRIP
            )
        ).scalar()
    for email, name in DEMO_FRIENDS:
        if email not in known:
            register_user(app, email=email, password=DEMO_PASSWORD, name=name)
    if group_id is None:
        now = app.clock.now()
        with app.db.transaction() as s:
            group = sharing.create_group(
                s,
                user_id=user_id,
                name=DEMO_TRIP,
                currency=CURRENCY,
                emails=[e for e, _ in DEMO_FRIENDS],
                now=now,
            )
            group_id = group.id
            members = sorted(group.members, key=lambda m: m.email != DEMO_EMAIL)
            for description, amount, category, payer in DEMO_TRIP_EXPENSES:
                sharing.create_expense(
                    s,
                    user_id=user_id,
                    group_id=group.id,
                    description=description,
                    amount=amount,
                    category=category,
                    paid_by=[(members[payer].id, amount)],
                    now=now,
                )
            top_up = wallets.create_top_up(
                s, app, user_id=user_id, amount=10_000, currency=CURRENCY, now=now
            )
        sandbox_control.pay(app, top_up.intent_id)
        app.bus.drain()
        with app.db.transaction() as s:
            wallets.send(
                s,
                app,
                payer_user_id=user_id,
                to=DEMO_FRIENDS[0][0],
                amount=1_250,
                currency=CURRENCY,
                note="Coffee and pastéis",
                client_id="demo-pays-ana",
                now=app.clock.now(),
            )
        app.bus.drain()
    with app.db.read() as s:
        balances = sharing.group_balances(s, group_id, user_id=user_id)
        wallet = wallets.balances(s, user_id=user_id)
    owed = ", ".join(f"{b.member.name} {format_money(b.balance, CURRENCY)}" for b in balances)
    held = ", ".join(format_money(b.total, b.currency) for b in wallet) or "empty"
    friends = ", ".join(e for e, _ in DEMO_FRIENDS)
    return {
        "friends": f"{friends} (password: the demo person's)",
        "sharing group": f"{DEMO_TRIP} ({group_id}): {owed}",
        "wallet": f"{DEMO_EMAIL}: {held} (topped up 100.00, paid Ana 12.50)",
    }
