"""Distributed mode: does adding workers help? Orders fully split per second on PostgreSQL +
RabbitMQ with 1 and with 2 worker processes per service, and the same load in embedded mode.

Each configuration gets a fresh PostgreSQL database (and, for RabbitMQ, its own broker
namespace, deleted afterwards). The processes are real ``potluck`` processes:

- ``rabbitmq-1x``: ``potluck relay`` + one ``potluck worker --service S`` per service;
- ``rabbitmq-2x``: the same with two replicas of every worker (still one relay);
- ``embedded``: one ``potluck serve`` process running the relay and the workers in threads
  (in-process transport: the queue is a table of the same database).

Once every process is up (heartbeats, ``potluck status``), ``clients`` threads of this process
record ``orders`` paid orders (``marketplace.record_order``, one transaction each, as
``POST /v1/orders`` does behind HTTP), each split among 3 parties. The figures:

- **orders split per second**: orders recorded *and fully split* (every wallet credited,
  ``split.completed`` published) per second, from the first order recorded to the last
  completion;
- **outbox-to-effect latency** p50/p99: per order, from its ``order.recorded`` event's
  ``occurred_at`` (written with the order) to the order's ``completed_at`` (the last credit
  applied): relay, broker, splitter, wallets and their transactions.

Afterwards the wallets must hold every minor unit of every order and the ledger audit must
pass. ``bench/run_scaling.sh`` runs it; figures in docs/benchmarks.md ("Scaling").
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select

from potluck.benchmarks.ledger import (
    PG_ADMIN_URL,
    Progress,
    SilentProgress,
    fresh_postgres,
    machine_info,
    percentile,
    postgres_reachable,
    run_threads,
)
from potluck.bootstrap import Potluck, bootstrap
from potluck.bus.models import OutboxEvent
from potluck.bus.status import check_broker, collect_status
from potluck.config import Settings
from potluck.db import Database, make_engine
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.marketplace import service as market
from potluck.marketplace.models import Order
from potluck.splits.rules import SplitRule, SplitRules

log = structlog.get_logger()

CURRENCY = "EUR"
BROKER_URL = os.environ.get("POTLUCK_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
CONFIGS = ("embedded", "rabbitmq-1x", "rabbitmq-2x")


@dataclass
class Options:
    configs: list[str] = field(default_factory=lambda: list(CONFIGS))
    orders: int = 2000
    clients: int = 4
    seed: int = 11
    start_timeout: float = 300.0
    settle_timeout: float = 900.0

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        return cls(**{"orders": 150, **overrides})


@dataclass
class ScalingFigure:
    config: str
    scenario: str  # backlog | live
    processes: int  # potluck processes running the bus (relays + workers, or 1 embedded)
    workers_per_service: int
    orders: int
    clients: int
    seconds: float
    orders_per_second: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    record_p50_ms: float | None
    record_p99_ms: float | None
    note: str = ""


@dataclass
class Report:
    figures: list[ScalingFigure] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    # rabbitmq-2x / rabbitmq-1x orders per second, per scenario
    ratios: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "note": self.note,
            "figures": [asdict(f) for f in self.figures],
            "ratio_2x_over_1x": self.ratios,
            "checks": self.checks,
            "skipped": self.skipped,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _services() -> list[str]:
    from potluck.bootstrap import register_handlers
    from potluck.bus.registry import HandlerRegistry

    registry = HandlerRegistry()
    register_handlers(registry)
    return registry.services()


class Processes:
    """``potluck`` subprocesses with one environment; SIGTERM (then SIGKILL) on exit."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs.append(
                subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                    [sys.executable, "-m", "potluck.cli", *args],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    def check_alive(self) -> None:
        dead = [p.args for p in self.procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a process exited: {dead[0]!r} (logs in {self.logs})")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def _app(url: str, **overrides: Any) -> Potluck:
    settings = Settings(
        database_url=url,
        secret_key=secrets.token_urlsafe(48),
        log_json=False,
        log_level="WARNING",
        **overrides,
    )
    return bootstrap(settings, db=Database(make_engine(url, pool_size=16)))


def _setup(app: Potluck) -> tuple[str, list[str]]:
    platform, _ = create_platform(app, name="Bench scaling")
    now = app.clock.now()
    with app.db.transaction() as s:
        parties = [
            market.create_party(
                s, platform_id=platform.id, name=f"S{i}", kind="merchant", currency=CURRENCY,
                now=now,
            ).id
            for i in range(3)
        ]  # fmt: skip
        market.put_split_rules(
            s,
            platform_id=platform.id,
            currency=CURRENCY,
            split=SplitRules(
                (SplitRule(parties[0], "percent", 5000), SplitRule(parties[1], "percent", 3000)),
                remainder_to=parties[2],
            ),
            now=now,
        )
    return platform.id, parties


def _wait(check: Any, timeout: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        procs.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)  # a benchmark polling other processes, not a test hiding a race


@contextlib.contextmanager
def _running(config: str, url: str, app: Potluck, namespace: str) -> Iterator[int]:
    """Start ``config``'s processes, wait until every one reports; yields how many."""
    logs = Path(tempfile.mkdtemp(prefix=f"potluck-scaling-{config}-"))
    env = os.environ | {
        "POTLUCK_DATABASE_URL": url,
        "POTLUCK_SECRET_KEY": app.settings.secret_key or "",
        "POTLUCK_LOG_JSON": "true",
        "POTLUCK_LOG_LEVEL": "WARNING",
        "POTLUCK_HEARTBEAT_INTERVAL_SECONDS": "1",
        "POTLUCK_BUS_POLL_INTERVAL_SECONDS": "0.02",
        "POTLUCK_DB_POOL_SIZE": "8",
    }
    procs = Processes(env, logs)
    services = _services()
    try:
        if config == "embedded":
            procs.env |= {"POTLUCK_TRANSPORT": "inprocess", "POTLUCK_EMBEDDED_WORKERS": "true"}
            procs.spawn("serve", "serve", "--port", str(_free_port()), "--embedded-workers")
            expected = {"embedded": 1}
            count = 1
        else:
            replicas = 2 if config.endswith("2x") else 1
            procs.env |= {
                "POTLUCK_TRANSPORT": "rabbitmq",
                "POTLUCK_BROKER_URL": BROKER_URL,
                "POTLUCK_BROKER_NAMESPACE": namespace,
            }
            for service in services:
                for i in range(replicas):
                    procs.spawn(f"worker-{service}-{i}", "worker", "--service", service)
            expected = {"worker": replicas * len(services)}
            count = 1 + replicas * len(services)

        def up() -> bool:
            seen: dict[str, int] = {}
            for p in collect_status(app, stale_after=10)["processes"]:
                if not p["stale"]:
                    seen[p["kind"]] = seen.get(p["kind"], 0) + 1
            return all(seen.get(k, 0) >= n for k, n in expected.items())

        # The workers first, the relay last: a backlog recorded before is then relayed to
        # workers that are all consuming already.
        _wait(up, 300, f"{config}: {count} processes to start", procs)
        if config != "embedded":
            procs.spawn("relay", "relay")
            expected["relay"] = 1
            _wait(up, 300, f"{config}: the relay to start", procs)
        yield count
        procs.check_alive()
    finally:
        procs.stop()


def _delete_namespace(namespace: str, app: Potluck) -> None:
    import pika

    from potluck.bus.rabbitmq import RabbitMQTransport

    transport = app.bus.transport
    if not isinstance(transport, RabbitMQTransport):
        return
    transport.close()
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    channel = connection.channel()
    for name in transport.queue_names():
        channel.queue_delete(name)
    for name in (f"{namespace}.events", f"{namespace}.retry"):
        channel.exchange_delete(name)
    connection.close()


def bench_config(config: str, opts: Options, progress: Progress) -> list[ScalingFigure]:
    namespace = f"bench{os.getpid()}_{secrets.token_hex(3)}"
    with fresh_postgres(PG_ADMIN_URL) as url:
        overrides: dict[str, Any] = {}
        if config != "embedded":
            overrides = {
                "transport": "rabbitmq",
                "broker_url": BROKER_URL,
                "broker_namespace": namespace,
            }
        app = _app(url, **overrides)
        platform_id, _ = _setup(app)
        rng = random.Random(opts.seed)
        amounts = [rng.randint(1_000, 500_000) for _ in range(opts.orders)]
        backlog = [rng.randint(1_000, 500_000) for _ in range(opts.orders)]
        figures: list[ScalingFigure] = []
        try:
            progress.log(f"{config}: {len(backlog)} orders recorded before the bus starts")
            run_threads(
                list(enumerate(backlog)), opts.clients, _recorder(app, platform_id, "backlog"),
                progress.start(f"{config}: backlog recorded", len(backlog)),
            )  # fmt: skip
            with _running(config, url, app, namespace) as count:
                progress.log(f"{config}: {count} process(es) up; draining the backlog")
                figures.append(_drain(config, count, app, platform_id, len(backlog), opts))
                progress.log(f"{config}: {opts.orders} orders while the bus runs")
                figures.append(_measure(config, count, app, platform_id, amounts, opts, progress))
            _check(app, platform_id, sum(amounts) + sum(backlog))
        finally:
            if config != "embedded":
                with contextlib.suppress(Exception):
                    _delete_namespace(namespace, app)
            app.db.engine.dispose()
    return figures


def _recorder(app: Potluck, platform_id: str, prefix: str) -> Any:
    def record(item: tuple[int, int]) -> str:
        index, amount = item
        with app.db.transaction() as s:
            market.record_order(
                s,
                platform_id=platform_id,
                order_id=f"{prefix}-{index}",
                amount=amount,
                currency=CURRENCY,
                now=app.clock.now(),
            )
        return "ok"

    return record


def _completed(app: Potluck, platform_id: str, prefix: str) -> int:
    with app.db.read() as s:
        return int(
            s.execute(
                select(func.count()).where(
                    Order.platform_id == platform_id,
                    Order.split_status == "completed",
                    Order.order_id.like(f"{prefix}-%"),
                )
            ).scalar_one()
        )


def _drain(
    config: str, count: int, app: Potluck, platform_id: str, n: int, opts: Options
) -> ScalingFigure:
    """The backlog: from the first of its events relayed to the last order completed (the
    database's timestamps, so the processes' start-up is not counted)."""
    deadline = time.monotonic() + opts.settle_timeout
    while _completed(app, platform_id, "backlog") < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{config}: the backlog was not split in time")
        time.sleep(0.05)  # a benchmark polling other processes
    with app.db.read() as s:
        orders = dict(
            s.execute(
                select(Order.id, Order.completed_at).where(
                    Order.platform_id == platform_id, Order.order_id.like("backlog-%")
                )
            ).all()
        )
        sent = [
            sent_at
            for data, sent_at in s.execute(
                select(OutboxEvent.data, OutboxEvent.sent_at).where(
                    OutboxEvent.type == "order.recorded"
                )
            ).all()
            if data.get("order") in orders and sent_at is not None
        ]
    last = max(t for t in orders.values() if t is not None)
    seconds = (last - min(sent)).total_seconds()
    workers = 0 if config == "embedded" else (2 if config.endswith("2x") else 1)
    return ScalingFigure(
        config=config,
        scenario="backlog",
        processes=count,
        workers_per_service=workers,
        orders=n,
        clients=0,
        seconds=round(seconds, 3),
        orders_per_second=round(n / seconds, 1),
        latency_p50_ms=None,
        latency_p99_ms=None,
        record_p50_ms=None,
        record_p99_ms=None,
        note="recorded first; first event relayed -> last order split",
    )


def _measure(
    config: str,
    count: int,
    app: Potluck,
    platform_id: str,
    amounts: list[int],
    opts: Options,
    progress: Progress,
) -> ScalingFigure:
    record = _recorder(app, platform_id, "scale")

    def completed() -> int:
        return _completed(app, platform_id, "scale")

    advance = progress.start(f"{config}: orders recorded", len(amounts))
    started = time.perf_counter()
    _, record_latencies, counts = run_threads(
        list(enumerate(amounts)), opts.clients, record, advance
    )
    deadline = time.monotonic() + opts.settle_timeout
    while completed() < len(amounts):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{config}: only {completed()} of {len(amounts)} orders split")
        time.sleep(0.02)  # the benchmark's clock stops at the first poll that sees them all
    elapsed = time.perf_counter() - started
    if counts["error"] or counts["refused"]:
        raise RuntimeError(f"{config}: {counts} while recording orders")
    latencies = _latencies(app, platform_id)
    record_latencies.sort()
    workers = 0 if config == "embedded" else (2 if config.endswith("2x") else 1)
    return ScalingFigure(
        config=config,
        scenario="live",
        processes=count,
        workers_per_service=workers,
        orders=len(amounts),
        clients=opts.clients,
        seconds=round(elapsed, 3),
        orders_per_second=round(len(amounts) / elapsed, 1),
        latency_p50_ms=_ms(percentile(latencies, 50)),
        latency_p99_ms=_ms(percentile(latencies, 99)),
        record_p50_ms=_ms(percentile(record_latencies, 50)),
        record_p99_ms=_ms(percentile(record_latencies, 99)),
        note="recorded while the bus runs; 1 relay"
        if config != "embedded"
        else "recorded while the bus runs; relay + workers in the serve process",
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _latencies(app: Potluck, platform_id: str) -> list[float]:
    """Per order: ``order.recorded`` written → order completed (seconds, sorted)."""
    with app.db.read() as s:
        done = dict(
            s.execute(
                select(Order.id, Order.completed_at).where(
                    Order.platform_id == platform_id, Order.order_id.like("scale-%")
                )
            ).all()
        )
        written = {
            data["order"]: occurred
            for data, occurred in s.execute(
                select(OutboxEvent.data, OutboxEvent.occurred_at).where(
                    OutboxEvent.type == "order.recorded"
                )
            ).all()
            if data.get("order") in done
        }
    return sorted(
        (done[order] - occurred).total_seconds()
        for order, occurred in written.items()
        if done[order] is not None
    )


def _check(app: Potluck, platform_id: str, total: int) -> None:
    with app.db.read() as s:
        wallets, _ = ledger.list_accounts(s, scope=market.platform_scope(platform_id), limit=100)
        credited = sum(a.total for a in wallets if a.code == market.WALLET_CODE)
        report = ledger.audit(s)
    if credited != total:
        raise RuntimeError(f"wallets hold {credited}, orders were {total}")
    if not report.ok:
        raise RuntimeError("ledger audit failed: " + "; ".join(report.problems[:5]))


def broker_reachable() -> str | None:
    try:
        check_broker(BROKER_URL)
    except Exception as exc:
        return f"RabbitMQ is not answering at {BROKER_URL} ({type(exc).__name__})"
    return None


def run(opts: Options, progress: Progress | None = None) -> Report:
    progress = progress or SilentProgress()
    report = Report(machine=machine_info())
    if why := postgres_reachable():
        report.skipped.append(why)
        return report
    for config in opts.configs:
        if config != "embedded" and (why := broker_reachable()):
            report.skipped.append(f"{config}: {why}")
            continue
        report.figures += bench_config(config, opts, progress)
        report.checks.append(f"{config}: wallets == orders to the minor unit, audit ok")
    by_config = {(f.config, f.scenario): f for f in report.figures}
    for scenario in ("backlog", "live"):
        one = by_config.get(("rabbitmq-1x", scenario))
        two = by_config.get(("rabbitmq-2x", scenario))
        if one and two:
            report.ratios[scenario] = round(two.orders_per_second / one.orders_per_second, 2)
    # The machine may be shared: the load around the run says how much of it we had.
    report.machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report
