"""Group orders of 4 members completed end to end per second, with the sandbox provider and
the embedded bus, on SQLite and PostgreSQL.

One group order: the host creates it (prices from the catalogue), adds 3 members, opens it
(4 payment intents at the sandbox, 4 invitations), the 4 members pay (``sandbox_control.pay``:
the payer acts and the signed webhooks go through the webhook path), and the bus does the rest
(``payment.succeeded`` → member paid → ``group.fully_paid`` → finalize: stock taken, the
marketplace order recorded from the escrow → split among merchant and courier). A group order
counts when its marketplace order is fully split (both wallets credited). Client threads run
group orders one after the other, each step its own transaction as behind HTTP, while bus
threads relay and work; the figure is group orders completed per second from the first
``create`` to the last split.

Afterwards: every group order confirmed, wallets hold exactly N × total, escrows empty, the
ledger audit passes. ``bench/run_checkout.sh`` runs it; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from potluck.benchmarks.ledger import (
    Figure,
    Progress,
    SilentProgress,
    fresh_database,
    machine_info,
    postgres_reachable,
    run_threads,
    summarise,
)
from potluck.benchmarks.marketplace import BusThreads, _app, _wait_until
from potluck.bootstrap import Potluck
from potluck.checkout import catalog, states
from potluck.checkout import service as checkout
from potluck.checkout.models import GroupOrder
from potluck.identity.service import create_platform, register_user
from potluck.ledger import service as ledger
from potluck.marketplace import service as market
from potluck.marketplace.models import Order
from potluck.splits.rules import SplitRule, SplitRules

CURRENCY = "EUR"
ITEMS = [("pizza", 3), ("soda", 1)]
TOTAL = 3 * 1250 + 300


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgresql"])
    orders: int = 300
    clients: int = 4
    bus_threads: int = 2  # PostgreSQL; SQLite uses 1

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        return cls(**{"orders": 12, **overrides})


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
            "checks": self.checks,
            "skipped": self.skipped,
        }


@dataclass
class Setup:
    platform_id: str
    merchant: str
    courier: str
    host: str
    emails: list[str]


def setup(app: Potluck, orders: int) -> Setup:
    platform, _ = create_platform(app, name="Bench eats")
    users = [
        register_user(
            app,
            email=f"{name}@bench.example",
            password="bench password 123",  # noqa: S106 (a benchmark person)
            name=name,
        )
        for name in ("host", "bob", "carol", "dave")
    ]
    now = app.clock.now()
    with app.db.transaction() as s:
        merchant = market.create_party(
            s,
            platform_id=platform.id,
            name="Pizzeria",
            kind="merchant",
            currency=CURRENCY,
            now=now,
        ).id
        courier = market.create_party(
            s,
            platform_id=platform.id,
            name="Courier",
            kind="partner",
            currency=CURRENCY,
            now=now,
        ).id
        market.put_split_rules(
            s,
            platform_id=platform.id,
            currency=CURRENCY,
            split=SplitRules(rules=(SplitRule(courier, "percent", 1000),), remainder_to=merchant),
            now=now,
        )
        for sku, price in (("pizza", 1250), ("soda", 300)):
            catalog.put_item(
                s,
                platform_id=platform.id,
                merchant_id=merchant,
                sku=sku,
                name=sku,
                unit_price=price,
                stock=orders * 10,
                now=now,
            )
    return Setup(platform.id, merchant, courier, users[0].id, [u.email for u in users[1:]])


def one_group_order(app: Potluck, st: Setup) -> str:
    """Create, add 3 members, open, and have the 4 members pay; the bus finishes it."""
    from potluck.payments import sandbox_control

    with app.db.transaction() as s:
        gid = checkout.create_group_order(
            s,
            host_user_id=st.host,
            merchant_id=st.merchant,
            items=ITEMS,
            currency=CURRENCY,
            split="equal",
            expires_in_seconds=3600,
            fallback="cancel",
            now=app.clock.now(),
        ).id
    for email in st.emails:
        with app.db.transaction() as s:
            checkout.add_member(
                s, group_id=gid, host_user_id=st.host, email=email, now=app.clock.now()
            )
    with app.db.transaction() as s:
        group = checkout.open_group_order(
            s, app, group_id=gid, host_user_id=st.host, now=app.clock.now()
        )
    for member in group.members:
        assert member.payment_intent is not None
        sandbox_control.pay(app, member.payment_intent)
    return "ok"


def _split_done(app: Potluck, platform_id: str) -> int:
    with app.db.read() as s:
        return int(
            s.execute(
                select(func.count()).where(
                    Order.platform_id == platform_id, Order.split_status == "completed"
                )
            ).scalar_one()
        )


def _check(app: Potluck, st: Setup, orders: int) -> None:
    with app.db.read() as s:
        confirmed = s.scalar(select(func.count()).where(GroupOrder.status == states.CONFIRMED))
        wallets, _ = ledger.list_accounts(s, scope=market.platform_scope(st.platform_id), limit=100)
        credited = sum(a.total for a in wallets if a.code == market.WALLET_CODE)
        escrowed = sum(a.total for a in wallets if a.code == checkout.ESCROW_CODE)
        report = ledger.audit(s)
    if confirmed != orders:
        raise RuntimeError(f"{confirmed} of {orders} group orders confirmed")
    if credited != orders * TOTAL or escrowed != 0:
        raise RuntimeError(f"wallets hold {credited}, escrows {escrowed}; want {orders * TOTAL}")
    if not report.ok:
        raise RuntimeError("ledger audit failed: " + "; ".join(report.problems[:5]))


def bench_group_orders(backend: str, url: str, opts: Options, progress: Progress) -> Figure:
    app = _app(url)
    st = setup(app, opts.orders)
    bus_threads = 1 if backend == "sqlite" else opts.bus_threads
    advance = progress.start(f"{backend}: group orders paid", opts.orders)
    started = time.perf_counter()
    with BusThreads(app, bus_threads) as bus:
        _, latencies, counts = run_threads(
            list(range(opts.orders)), opts.clients, lambda _: one_group_order(app, st), advance
        )
        done = _wait_until(lambda: _split_done(app, st.platform_id) == opts.orders, timeout=600)
    elapsed = time.perf_counter() - started
    if bus.errors:
        progress.log(f"bus error: {bus.errors[0]!r}")
    if not done:
        raise RuntimeError(
            f"only {_split_done(app, st.platform_id)} of {opts.orders} group orders completed"
        )
    _check(app, st, opts.orders)
    app.db.engine.dispose()
    return summarise(
        system="potluck",
        backend=backend,
        scenario="group-orders-4",
        clients=opts.clients,
        operations=opts.orders,
        seconds=elapsed,
        latencies=latencies,
        errors=counts["error"],
        note=f"4 members, sandbox provider, {bus_threads} bus thread(s); "
        "p50/p99: create → last member paid",
    )


def run(opts: Options, progress: Progress | None = None) -> Report:
    progress = progress or SilentProgress()
    report = Report(machine=machine_info())
    for backend in opts.backends:
        if backend == "postgresql" and (why := postgres_reachable()):
            report.skipped.append(why)
            continue
        with fresh_database(backend) as url:
            report.figures.append(bench_group_orders(backend, url, opts, progress))
            report.checks.append(
                f"{backend}: every group order confirmed, wallets == orders, escrows empty, "
                "audit ok"
            )
    return report
