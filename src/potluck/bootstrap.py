"""Wire everything in one place: settings, database, clock, event bus, handlers.

Nothing connects to anything at import time; tests pass their own database and clock here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from potluck.bus.registry import HandlerRegistry
from potluck.bus.runtime import Bus
from potluck.clock import Clock, SystemClock
from potluck.config import Settings, get_settings
from potluck.db import Database, make_engine
from potluck.identity.cache import PrincipalCache
from potluck.payments.providers import make_providers
from potluck.payouts.bank import BankAdapter, make_bank_adapter


@dataclass
class Potluck:
    """The running application's parts, passed to services, handlers and routes."""

    settings: Settings
    db: Database
    clock: Clock
    registry: HandlerRegistry
    bus: Bus = field(init=False)
    principals: PrincipalCache = field(init=False)
    # The bank payouts are sent through (payouts/bank.py, POTLUCK_BANK_ADAPTER); tests
    # assign their own.
    bank: BankAdapter = field(init=False)
    # The HTTP transport outbound webhooks are sent through (None: the network); tests
    # pass an httpx.MockTransport here.
    webhook_transport: httpx.BaseTransport | None = None
    # Payment providers by name (payments/providers, POTLUCK_PAYMENT_PROVIDER picks the
    # default); tests replace or script them.
    providers: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.bus = Bus(self)
        self.principals = PrincipalCache(self.settings.auth_cache_seconds)
        self.bank = make_bank_adapter(self.settings, self.db, self.clock)
        self.providers = make_providers(self.settings, self.db, self.clock)


def register_handlers(registry: HandlerRegistry) -> None:
    """Every product registers its event handlers here."""
    from potluck import maintenance
    from potluck.checkout import handlers as checkout_handlers
    from potluck.ledger import handlers as ledger_handlers
    from potluck.marketplace import handlers as marketplace_handlers
    from potluck.notify import handlers as notify_handlers
    from potluck.payments import handlers as payments_handlers
    from potluck.payouts import handlers as payouts_handlers
    from potluck.risk import handlers as risk_handlers
    from potluck.sharing import handlers as sharing_handlers
    from potluck.wallets import handlers as wallets_handlers
    from potluck.wallets import settlement as merchant_settlement

    ledger_handlers.register(registry)
    maintenance.register(registry)
    marketplace_handlers.register(registry)
    payouts_handlers.register(registry)
    notify_handlers.register(registry)
    sharing_handlers.register(registry)
    payments_handlers.register(registry)
    checkout_handlers.register(registry)
    wallets_handlers.register(registry)
    merchant_settlement.register(registry)
    risk_handlers.register(registry)


def bootstrap(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
) -> Potluck:
    settings = settings or get_settings()
    if db is None:
        db = Database(make_engine(settings.database_url, pool_size=settings.db_pool_size))
    registry = HandlerRegistry()
    register_handlers(registry)
    return Potluck(settings=settings, db=db, clock=clock or SystemClock(), registry=registry)
