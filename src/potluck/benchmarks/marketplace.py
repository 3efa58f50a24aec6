"""Marketplace and payouts throughput, embedded bus, on SQLite and PostgreSQL.

- **orders**: client threads record paid orders (``marketplace.service.record_order``, one
  transaction each, as ``POST /v1/orders`` does behind HTTP) while bus threads relay and work;
  the figure is orders recorded *and fully split* (every party's wallet credited,
  ``split.completed`` published) per second, from the first order to the last completion.
  Each order is split among 10 parties (one fixed part, eight percentages, the remainder).
- **payouts**: payouts are created (a hold each) and the payouts worker sends them through the
  simulated bank (no latency, no failures); the figure is payouts taken from ``pending`` to
  ``completed`` per second.

After each scenario the books are audited and the credits are checked against the orders to
the minor unit. ``bench/run_marketplace.sh`` runs it; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from potluck.bootstrap import Potluck, bootstrap
from potluck.config import Settings
from potluck.db import Database, make_engine
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.marketplace import service as market
from potluck.marketplace.models import Order
from potluck.splits.rules import SplitRule, SplitRules

CURRENCY = "EUR"


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgresql"])
    orders: int = 3000
    parties: int = 10
    clients: int = 4  # threads recording orders
    bus_threads: int = 2  # threads relaying and working (PostgreSQL; SQLite uses 1)
    bus_processes: int = 0  # PostgreSQL: worker processes instead of threads (0: threads)
    payouts: int = 2000
    seed: int = 7

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        return cls(**{"orders": 60, "payouts": 40, **overrides})


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
            "checks": self.checks,
            "skipped": self.skipped,
        }


def _app(url: str, *, pool_size: int = 32, **overrides: Any) -> Potluck:
    """A Potluck app on ``url`` for a benchmark (``overrides``: settings), quiet logs."""
    settings = Settings(
        database_url=url,
        secret_key=secrets.token_urlsafe(48),
        log_json=False,
        log_level="WARNING",
        **overrides,
    )
    db = Database(make_engine(url, pool_size=pool_size))
    return bootstrap(settings, db=db)


def setup_marketplace(app: Potluck, parties: int) -> tuple[str, list[str]]:
    """A platform with ``parties`` parties and its split rules: one fixed part, percentages
    for the others but the last, and the remainder to the last."""
    platform, _ = create_platform(app, name="Bench marketplace")
    now = app.clock.now()
    with app.db.transaction() as s:
        ids = [
            market.create_party(
                s,
                platform_id=platform.id,
                name=f"party {i}",
                kind="merchant" if i == 0 else "partner",
                currency=CURRENCY,
                now=now,
            ).id
            for i in range(parties)
        ]
        rules = [SplitRule(ids[0], "fixed", 50)]
        rules += [SplitRule(p, "percent", 1037) for p in ids[1:-1]]  # 10.37 % each
        market.put_split_rules(
            s,
            platform_id=platform.id,
            currency=CURRENCY,
            split=SplitRules(rules=tuple(rules), remainder_to=ids[-1]),
            now=now,
        )
    return platform.id, ids


class BusThreads:
    """``n`` threads relaying and working until stopped (SQLite: one is enough, as there is
    one writer)."""

    def __init__(self, app: Potluck, n: int) -> None:
        self.app = app
        self.stop_flag = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]

    def _loop(self) -> None:
        bus = self.app.bus
        while not self.stop_flag.is_set():
            try:
                if bus.relay_once(limit=200) + bus.work_once(limit=200) == 0:
                    self.stop_flag.wait(0.002)
            except Exception as exc:  # shown at the end; the loop keeps going like the real one
                if not self.errors:
                    self.errors.append(exc)

    def __enter__(self) -> BusThreads:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join()


def _bus_process(url: str, stop: Any, errors: Any) -> None:
    """A worker process: relay and work until ``stop`` is set (PostgreSQL: the queue tables
    are shared, ``SKIP LOCKED`` keeps the processes off each other's rows)."""
    app = _app(url)
    bus = app.bus
    while not stop.is_set():
        try:
            if bus.relay_once(limit=200) + bus.work_once(limit=200) == 0:
                stop.wait(0.002)
        except Exception as exc:
            errors.put(repr(exc))
    app.db.engine.dispose()


class BusProcesses:
    """``n`` worker processes (each a Python interpreter: the work is not held to one core by
    the GIL), the way ``potluck worker`` processes share a PostgreSQL database."""

    def __init__(self, url: str, n: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.stop_flag = ctx.Event()
        self.error_queue = ctx.Queue()
        self.processes = [
            ctx.Process(target=_bus_process, args=(url, self.stop_flag, self.error_queue))
            for _ in range(n)
        ]
        self.errors: list[str] = []

    def __enter__(self) -> BusProcesses:
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for process in self.processes:
            process.join(30)
        while not self.error_queue.empty():
            self.errors.append(self.error_queue.get())


def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return True
        time.sleep(0.01)  # a benchmark polling for the end, not a test hiding a race
    return check()


def bench_orders(backend: str, url: str, opts: Options, progress: Progress) -> Figure:
    app = _app(url)
    platform_id, _ = setup_marketplace(app, opts.parties)
    rng = random.Random(opts.seed)
    amounts = [rng.randint(1_000, 500_000) for _ in range(opts.orders)]
    orders = list(enumerate(amounts))

    def record(item: tuple[int, int]) -> str:
        index, amount = item
        with app.db.transaction() as s:
            market.record_order(
                s,
                platform_id=platform_id,
                order_id=f"bench-{index}",
                amount=amount,
                currency=CURRENCY,
                now=app.clock.now(),
            )
        return "ok"

    def completed() -> int:
        with app.db.read() as s:
            return int(
                s.execute(
                    select(func.count()).where(
                        Order.platform_id == platform_id, Order.split_status == "completed"
                    )
                ).scalar_one()
            )

    bus_threads = 1 if backend == "sqlite" else opts.bus_threads
    processes = opts.bus_processes if backend == "postgresql" else 0
    advance = progress.start(f"{backend}: orders recorded", opts.orders)
    runner: BusThreads | BusProcesses = (
        BusProcesses(url, processes) if processes else BusThreads(app, bus_threads)
    )
    started = time.perf_counter()
    with runner as bus:
        _, latencies, counts = run_threads(orders, opts.clients, record, advance)
        done = _wait_until(lambda: completed() == opts.orders, timeout=600)
    elapsed = time.perf_counter() - started
    if bus.errors:
        progress.log(f"bus error: {bus.errors[0]!r}")
    if not done:
        raise RuntimeError(f"only {completed()} of {opts.orders} orders were split in time")
    _check_orders(app, platform_id, sum(amounts))
    app.db.engine.dispose()
    return summarise(
        system="potluck",
        backend=backend,
        scenario="orders-split",
        clients=opts.clients,
        operations=opts.orders,
        seconds=elapsed,
        latencies=latencies,
        refused=counts["refused"],
        errors=counts["error"],
        note=f"{opts.parties} parties/order, "
        + (f"{processes} bus processes" if processes else f"{bus_threads} bus thread(s)")
        + "; p50/p99: recording",
    )


def _check_orders(app: Potluck, platform_id: str, total: int) -> None:
    """Every minor unit of every order landed in a wallet, and the books balance."""
    with app.db.read() as s:
        wallets, _ = ledger.list_accounts(s, scope=market.platform_scope(platform_id), limit=100)
        credited = sum(a.total for a in wallets if a.code == market.WALLET_CODE)
        report = ledger.audit(s)
    if credited != total:
        raise RuntimeError(f"wallets hold {credited}, orders were {total}")
    if not report.ok:
        raise RuntimeError("ledger audit failed: " + "; ".join(report.problems[:5]))


def run(opts: Options, progress: Progress | None = None) -> Report:
    progress = progress or SilentProgress()
    report = Report(machine=machine_info())
    for backend in opts.backends:
        if backend == "postgresql" and (why := postgres_reachable()):
            report.skipped.append(why)
            continue
        with fresh_database(backend) as url:
            figure = bench_orders(backend, url, opts, progress)
            report.figures.append(figure)
            report.checks.append(f"{backend}: credits == orders, audit ok")
        if opts.payouts:
            report.figures += bench_payouts(backend, opts, progress)
            report.checks.append(f"{backend}: every payout completed, audit ok")
    return report


def bench_payouts(backend: str, opts: Options, progress: Progress) -> list[Figure]:
    """Payouts created (a hold each) per second, then processed through the simulated bank."""
    from potluck.benchmarks.payouts import bench

    progress.log(f"{backend}: {opts.payouts} payouts")
    result = bench(backend, payouts=opts.payouts, workers=opts.bus_threads, clients=opts.clients)
    if result["completed"] != opts.payouts or not result["ledger_audit_ok"]:
        raise RuntimeError(f"payouts benchmark did not settle: {result}")
    figures = []
    for scenario, key in (("payouts-created", "created"), ("payouts-processed", "processed")):
        rate = result[f"{key}_per_second"]
        figures.append(
            Figure(
                system="potluck",
                backend=backend,
                scenario=scenario,
                clients=opts.clients if key == "created" else opts.bus_threads,
                operations=opts.payouts,
                seconds=round(opts.payouts / rate, 3) if rate else 0.0,
                per_second=rate,
                p50_ms=None,
                p99_ms=None,
                note="simulated bank, no latency" if key == "processed" else "hold per payout",
            )
        )
    return figures
