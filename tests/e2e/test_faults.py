"""Fault tests across real processes: PostgreSQL + RabbitMQ, several API processes, relays and
worker pools, a bounded load from 16 clients, and faults injected while it runs.

The servers are PRIVATE: a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a free
port, in a temporary directory) and a private RabbitMQ node (its own node name, ports, data
and log directories), because two of these tests restart them and the machine's shared
servers (5432, 5672) belong to everybody else. Each test states its seed and bounds:

- seed ``POTLUCK_FAULTS_SEED`` (default 20261122): order amounts, payout amounts, the order in
  which clients send them, and the simulated bank's declines and transient failures;
- bounds per test: ``ORDERS`` marketplace orders and ``PAYOUTS`` payouts from ``CLIENTS`` = 16
  client threads, each request retried (same Idempotency-Key) until acknowledged, for at most
  ``LOAD_DEADLINE`` seconds; then at most ``SETTLE_DEADLINE`` seconds for the bus to finish.
  CI size: 240 orders and 60 payouts per test; ``POTLUCK_FAULTS_FULL=1`` runs the issue's
  2,000 orders and 500 payouts, and one worker process per service (2 replicas each) instead
  of grouping the quiet services into one pool.

The processes: 2 × ``potluck serve --no-embedded-workers`` (one port each), 2 × ``potluck
relay`` and 2 replicas of every worker pool (``potluck worker --service …``). Every process
connects with its own ``application_name`` so that the test can see, in
``pg_stat_activity``, when a worker is inside its batch transaction or a relay between
publishing and marking sent, and kill it exactly then.

Afterwards, every test checks the same things: every acknowledged order is fully split
exactly once (one ``split.completed`` per order, credits sum to the amount, one ledger
transfer per credit), every payout reached a terminal state exactly once (one terminal
transition, paid by the bank at most once and only if completed), no event is left in the
outbox or in a service queue (nothing outside the dead-letter queues, which are empty too),
no request was answered 500, and the ledger audit passes.

Marked ``faults``: ``make test`` runs them after the parallel suite, serially. Without
PostgreSQL's ``initdb`` or ``rabbitmq-server`` on the machine they are skipped with a hint
(with ``CI=true`` they fail).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from potluck.bootstrap import Potluck, bootstrap
from potluck.bus.models import OutboxEvent
from potluck.bus.status import collect_status
from potluck.config import Settings
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.ledger.models import Transfer
from potluck.marketplace import service as market
from potluck.marketplace.models import Allocation, Order, SplitCredit
from potluck.migrate import upgrade
from potluck.payouts import service as payouts
from potluck.payouts.models import Payout, PayoutTransition, SimulatedBankPayment
from potluck.payouts.states import TERMINAL
from potluck.splits.rules import SplitRule, SplitRules
from tests.conftest import IN_CI

pytestmark = pytest.mark.faults

FULL = os.environ.get("POTLUCK_FAULTS_FULL", "") == "1"
SEED = int(os.environ.get("POTLUCK_FAULTS_SEED", "20261122"))
ORDERS = 2000 if FULL else 240
PAYOUTS = 500 if FULL else 60
CLIENTS = 16
LOAD_DEADLINE = 600.0 if FULL else 150.0
SETTLE_DEADLINE = 300.0 if FULL else 120.0
HOT_SERVICES = ("splitter", "wallets", "payouts", "webhooks")
SECRET = "faults-secret-key-that-is-long-enough-0123456789"
IBAN = "DE89 3704 0044 0532 0130 00"
HINT = (
    "the fault tests start a private PostgreSQL (initdb/pg_ctl from postgresql-15 or later) "
    "and a private RabbitMQ node (rabbitmq-server, rabbitmqctl); install them "
    "(apt-get install postgresql rabbitmq-server) — the shared servers are never touched"
)


def _missing(reason: str) -> None:
    message = f"{reason}; {HINT}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    """Wait for other processes' work (not a race): fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- private servers


class PrivatePostgres:
    """A throwaway cluster in ``base``, run as the ``postgres`` user when we are root."""

    def __init__(self, base: Path) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        initdb = bins[-1] if bins else shutil.which("initdb")
        if initdb is None:
            _missing("PostgreSQL's initdb was not found")
        self.bin = Path(str(initdb)).parent
        self.base = base
        self.data = base / "pgdata"
        self.port = free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            runuser = shutil.which("runuser")
            if runuser is None:
                _missing("running as root without runuser to become postgres")
            self.as_postgres = [str(runuser), "-u", "postgres", "--"]
            shutil.chown(base, "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync",
        )  # fmt: skip
        self.start()

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self.as_postgres, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400 "
            "-c shared_buffers=64MB"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.base / "postgres.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str, application: str | None = None) -> str:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"
        return f"{url}?application_name={application}" if application else url


class PrivateRabbitMQ:
    """A RabbitMQ node of our own: node name, ports, data, logs and cookie in ``base``."""

    def __init__(self, base: Path) -> None:
        server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        if not server.exists():
            found = shutil.which("rabbitmq-server")
            if found is None:
                _missing("rabbitmq-server was not found")
            server = Path(str(found))
        self.server = server
        self.ctl = server.parent / "rabbitmqctl"
        self.base = base
        self.node = f"potluck-fault-{os.getpid()}-{secrets.token_hex(2)}@localhost"
        self.port = free_port()
        (base / "enabled_plugins").write_text("")
        (base / "rabbitmq-env.conf").write_text("")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        self.env = os.environ | {
            "HOME": str(base),  # the Erlang cookie is created here, not in the real home
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }
        subprocess.run(
            [str(server), "-detached"], env=self.env, capture_output=True, timeout=60, check=True
        )
        self.ctl_run("wait", str(base / "rabbitmq.pid"), "--timeout", "120")

    def ctl_run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.ctl), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} failed: {result.stdout}\n{result.stderr}")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def stop_node(self) -> None:
        with contextlib.suppress(Exception):
            self.ctl_run("stop")


# ---------------------------------------------------------------- the processes


@dataclass
class Proc:
    role: str  # api-0, relay-1, worker-splitter-0, …
    args: list[str]
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    pg: PrivatePostgres
    rabbit: PrivateRabbitMQ
    base: Path
    database: str
    app: Potluck
    env: dict[str, str]
    api_ports: list[int]
    pools: list[list[str]]
    procs: dict[str, Proc] = field(default_factory=dict)
    platform_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    parties: list[str] = field(default_factory=list)
    payees: list[tuple[str, str]] = field(default_factory=list)  # (party, bank account)

    def spawn(self, role: str, *args: str) -> Proc:
        log = self.base / f"{role}.log"
        env = self.env | {"POTLUCK_DATABASE_URL": self.pg.url(self.database, role)}
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "potluck.cli", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(role, list(args), popen, log)
        self.procs[role] = proc
        return proc

    def respawn(self, role: str) -> Proc:
        """What a supervisor does after a crash: the same role, a new process."""
        old = self.procs[role]
        return self.spawn(role, *old.args)

    def kill9(self, role: str) -> None:
        proc = self.procs[role]
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(30)

    def alive(self) -> list[str]:
        return [role for role, p in self.procs.items() if p.popen.poll() is None]

    def dead(self) -> list[str]:
        return [role for role, p in self.procs.items() if p.popen.poll() is not None]

    def report(self) -> dict[str, Any]:
        return collect_status(self.app, stale_after=10)

    def backend(self, role: str, where: str) -> bool:
        """Whether ``role``'s process has a database session matching ``where`` right now."""
        with self.app.db.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = :role "
                        f"AND {where} LIMIT 1"
                    ),
                    {"role": role},
                ).first()
            )

    def log_tail(self, role: str, lines: int = 30) -> str:
        return "\n".join(self.procs[role].log.read_text(errors="replace").splitlines()[-lines:])


def _pools() -> list[list[str]]:
    from potluck.bootstrap import register_handlers
    from potluck.bus.registry import HandlerRegistry

    registry = HandlerRegistry()
    register_handlers(registry)
    services = registry.services()
    if FULL:
        return [[s] for s in services]
    quiet = [s for s in services if s not in HOT_SERVICES]
    return [[s] for s in HOT_SERVICES if s in services] + ([quiet] if quiet else [])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="potluck-faults-"))
    os.chmod(base, 0o755)  # noqa: S103 - the postgres user must reach its subdirectory
    (base / "pg").mkdir()
    (base / "rabbit").mkdir()
    pg: PrivatePostgres | None = None
    rabbit: PrivateRabbitMQ | None = None
    stack: Stack | None = None
    try:
        pg = PrivatePostgres(base / "pg")
        rabbit = PrivateRabbitMQ(base / "rabbit")
        database = "potluck_faults"
        admin = pg.url("postgres")
        from potluck.db import make_engine

        engine = make_engine(admin, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        engine.dispose()
        upgrade(pg.url(database))
        settings = Settings(
            database_url=pg.url(database, "test"),
            transport="rabbitmq",
            broker_url=rabbit.url,
            broker_namespace="faults",
            secret_key=SECRET,
            log_json=False,
            db_pool_size=4,
        )
        app = bootstrap(settings)
        env = os.environ | {
            "POTLUCK_TRANSPORT": "rabbitmq",
            "POTLUCK_BROKER_URL": rabbit.url,
            "POTLUCK_BROKER_NAMESPACE": "faults",
            "POTLUCK_SECRET_KEY": SECRET,
            "POTLUCK_EMBEDDED_WORKERS": "false",
            "POTLUCK_LOG_JSON": "true",
            "POTLUCK_LOG_LEVEL": "WARNING",
            "POTLUCK_DB_POOL_SIZE": "8",
            "POTLUCK_HEARTBEAT_INTERVAL_SECONDS": "1",
            "POTLUCK_BUS_POLL_INTERVAL_SECONDS": "0.05",
            "POTLUCK_BUS_BACKOFF_BASE_SECONDS": "0.2",
            "POTLUCK_BUS_BACKOFF_MAX_SECONDS": "1",
            "POTLUCK_BUS_MAX_ATTEMPTS": "30",
            "POTLUCK_BROKER_RECONNECT_MAX_DELAY_SECONDS": "1",
            "POTLUCK_BROKER_CONSUME_WAIT_SECONDS": "0.5",
            "POTLUCK_PAYOUT_RETRY_BASE_SECONDS": "0.2",
            "POTLUCK_PAYOUT_MAX_ATTEMPTS": "5",
            "POTLUCK_PAYOUT_PROCESSING_TIMEOUT_SECONDS": "3",
            "POTLUCK_PAYOUT_RECOVERY_INTERVAL_SECONDS": "1",
            "POTLUCK_BANK_SIM_SEED": str(SEED),
            "POTLUCK_BANK_SIM_DECLINE_RATE": "0.05",
            "POTLUCK_BANK_SIM_TRANSIENT_FAILURE_RATE": "0.1",
        }
        stack = Stack(pg, rabbit, base, database, app, env, [free_port(), free_port()], _pools())
        _seed_data(stack)
        for i, port in enumerate(stack.api_ports):
            stack.spawn(
                f"api-{i}", "serve", "--host", "127.0.0.1", "--port", str(port),
                "--no-embedded-workers",
            )  # fmt: skip
        for i in range(2):
            stack.spawn(f"relay-{i}", "relay")
        for pool in stack.pools:
            name = pool[0] if len(pool) == 1 else "others"
            args = [a for s in pool for a in ("--service", s)]
            for i in range(2):
                stack.spawn(f"worker-{name}-{i}", "worker", *args)

        def up() -> bool:
            assert not stack.dead(), {r: stack.log_tail(r) for r in stack.dead()}
            report = stack.report()
            return bool(
                report["api_seen"] == 2
                and report["relays_seen"] == 2
                and report["workers_seen"] == 2 * len(stack.pools)
                and not report["unconsumed_services"]
                and all(_ready(port) for port in stack.api_ports)
            )

        log(f"starting {len(stack.procs)} processes")
        wait_for(up, 180, "every process to start (heartbeats and /readyz)", 0.5)
        log("every process is up")
        yield stack
    finally:
        if stack is not None:
            for proc in stack.procs.values():
                if proc.popen.poll() is None:
                    proc.popen.send_signal(signal.SIGTERM)
            for proc in stack.procs.values():
                try:
                    proc.popen.wait(30)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
            stack.app.db.engine.dispose()
        if rabbit is not None:
            rabbit.stop_node()
        if pg is not None:
            with contextlib.suppress(Exception):
                pg.stop()
        if os.environ.get("POTLUCK_FAULTS_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _seed_data(stack: Stack) -> None:
    """A platform with 3 parties splitting orders, and 4 funded payees with bank accounts."""
    app = stack.app
    platform, secret = create_platform(app, name="Faults")
    stack.platform_id, stack.headers = platform.id, {"Authorization": f"Bearer {secret}"}
    now = app.clock.now()
    with app.db.transaction() as s:
        stack.parties = [
            market.create_party(
                s, platform_id=platform.id, name=f"S{i}", kind="merchant", currency="EUR", now=now
            ).id
            for i in range(3)
        ]
        market.put_split_rules(
            s,
            platform_id=platform.id,
            currency="EUR",
            split=SplitRules(
                (
                    SplitRule(stack.parties[0], "percent", 5000),
                    SplitRule(stack.parties[1], "percent", 3000),
                ),
                remainder_to=stack.parties[2],
            ),
            now=now,
        )
        funding = ledger.create_account(
            s, currency="EUR", code="faults_funding", now=now,
            book=f"platform:{platform.id}", scope=f"platform:{platform.id}",
        )  # fmt: skip
        for i in range(4):
            party = market.create_party(
                s, platform_id=platform.id, name=f"P{i}", kind="merchant", currency="EUR", now=now
            )
            ledger.create_transfer(
                s,
                ledger.NewTransfer(funding.id, party.wallet_account_id, 10**12),
                now=now,
                scope=f"platform:{platform.id}",
            )
            account = payouts.add_bank_account(
                s, platform_id=platform.id, party_id=party.id, holder_name=f"P{i}",
                account_number=IBAN, routing_type="iban", routing_value=None, now=now,
            )  # fmt: skip
            stack.payees.append((party.id, account.id))
    # The seed's outbox events go out through the relays like everything else.


# ---------------------------------------------------------------- the load


@dataclass
class Load:
    """Jobs (orders and payouts) sent by CLIENTS threads; what was acknowledged, and how."""

    stack: Stack
    tag: str
    rng: random.Random
    jobs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    acked_orders: dict[str, int] = field(default_factory=dict)  # order_id -> amount
    acked_payouts: dict[str, int] = field(default_factory=dict)  # payout id -> amount
    statuses: Counter[int] = field(default_factory=Counter)
    problems_503: int = 0
    not_problem: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Jobs from index `gate_after` on wait until `gate` is set (a fault between two halves).
    gate: threading.Event = field(default_factory=threading.Event)
    gate_after: int | None = None

    @classmethod
    def make(cls, stack: Stack, tag: str, seed: int) -> Load:
        load = cls(stack, tag, random.Random(seed))
        for i in range(ORDERS):
            amount = load.rng.randint(100, 500_000)
            body = {"order_id": f"{tag}-o{i}", "amount": amount, "currency": "EUR"}
            load.jobs.append(("/v1/orders", body))
        for i in range(PAYOUTS):
            party, account = stack.payees[i % len(stack.payees)]
            body = {
                "party": party,
                "bank_account": account,
                "amount": load.rng.randint(100, 50_000),
                "currency": "EUR",
            }
            load.jobs.append(("/v1/payouts", body))
        load.rng.shuffle(load.jobs)
        return load

    def run(self) -> threading.Thread:
        queue = list(enumerate(self.jobs))
        queue.reverse()

        def client(n: int) -> None:
            port = self.stack.api_ports[n % len(self.stack.api_ports)]
            other = self.stack.api_ports[(n + 1) % len(self.stack.api_ports)]
            with httpx.Client(timeout=15) as http:
                while True:
                    with self.lock:
                        if not queue:
                            return
                        index, (path, body) = queue.pop()
                    if self.gate_after is not None and index >= self.gate_after:
                        self.gate.wait()
                    self._send(http, (port, other), index, path, body)

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()

        def join() -> None:
            for t in threads:
                t.join()

        runner = threading.Thread(target=join, daemon=True)
        runner.start()
        return runner

    def _send(
        self, http: httpx.Client, ports: tuple[int, int], index: int, path: str, body: dict
    ) -> None:
        headers = self.stack.headers | {"Idempotency-Key": f"{self.tag}-{index}"}
        deadline = time.monotonic() + LOAD_DEADLINE
        attempt = 0
        while time.monotonic() < deadline:
            port = ports[attempt % 2]  # a client whose API is away tries the other one
            attempt += 1
            try:
                r = http.post(f"http://127.0.0.1:{port}{path}", json=body, headers=headers)
            except httpx.HTTPError:
                time.sleep(0.1)  # back off: the server is not answering
                continue
            with self.lock:
                self.statuses[r.status_code] += 1
            code = _code(r)
            # 409 order_exists: an earlier attempt recorded it and its answer was lost (the
            # database went away before the key's response was stored): acknowledged.
            if r.status_code in (200, 201) or (r.status_code, code) == (409, "order_exists"):
                with self.lock:
                    if path == "/v1/orders":
                        self.acked_orders[body["order_id"]] = body["amount"]
                    else:
                        self.acked_payouts[r.json()["id"]] = body["amount"]
                    self.done += 1
                return
            if r.status_code == 503 or code in RETRYABLE:
                with self.lock:
                    if r.status_code == 503:
                        self.problems_503 += 1
                        if not r.headers.get("content-type", "").startswith(
                            "application/problem+json"
                        ):
                            self.not_problem.append(r.text[:200])
                time.sleep(0.1)  # back off, as Retry-After asks
                continue
            with self.lock:
                self.errors.append(f"{path} {r.status_code} {r.text[:300]}")
                self.done += 1
            return
        with self.lock:
            self.errors.append(f"{path} not acknowledged within {LOAD_DEADLINE:g} s")
            self.done += 1

    def progress(self) -> float:
        with self.lock:
            return self.done / len(self.jobs)


RETRYABLE = {"concurrent_conflict", "idempotency_key_in_use"}


def _code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def run_load(
    stack: Stack, tag: str, seed: int, fault: Any, *, gate_after: int | None = None
) -> Load:
    """Send the load, call ``fault(load)`` while it runs, then wait for both."""
    load = Load.make(stack, tag, seed)
    load.gate_after = gate_after
    runner = load.run()
    fault(load)
    runner.join(LOAD_DEADLINE + 60)
    assert not runner.is_alive(), "the clients did not finish"
    log(f"load {tag} sent: {dict(load.statuses)}, {len(load.errors)} errors")
    return load


# ---------------------------------------------------------------- the checks


def settle_and_check(stack: Stack, load: Load) -> dict[str, Any]:
    """Wait until the bus is idle, then check every invariant of the module docstring."""
    assert load.errors == [], load.errors[:10]
    assert load.statuses[500] == 0, load.statuses
    assert load.not_problem == [], load.not_problem[:3]
    assert len(load.acked_orders) == ORDERS
    assert len(load.acked_payouts) == PAYOUTS
    db = stack.app.db

    def idle() -> bool:
        assert not [r for r in stack.dead() if not r.endswith("-killed")], stack.dead()
        with db.read() as s:
            open_orders = s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.platform_id == stack.platform_id, Order.split_status != "completed")
            )
            open_payouts = s.scalar(
                select(func.count()).select_from(Payout).where(Payout.status.not_in(TERMINAL))
            )
        if open_orders or open_payouts:
            return False
        report = stack.report()
        queues = report["queues"] or {}
        return report["outbox"]["due"] == 0 and not any(queues.values())

    try:
        wait_for(idle, SETTLE_DEADLINE, "every order split and every payout terminal", 0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {_diagnose(stack)}") from None
    log("settled")
    report = stack.report()
    with db.read() as s:
        orders = {
            row.order_id: row
            for row in s.execute(
                select(Order.id, Order.order_id, Order.amount, Order.split_status).where(
                    Order.platform_id == stack.platform_id, Order.order_id.like(f"{load.tag}-%")
                )
            )
        }
        assert set(orders) == set(load.acked_orders)  # nothing more, nothing less
        pks = [o.id for o in orders.values()]
        credited = dict(
            s.execute(
                select(SplitCredit.order_pk, func.sum(SplitCredit.amount))
                .where(SplitCredit.order_pk.in_(pks))
                .group_by(SplitCredit.order_pk)
            ).all()
        )
        credits = dict(
            s.execute(
                select(SplitCredit.order_pk, func.count())
                .where(SplitCredit.order_pk.in_(pks))
                .group_by(SplitCredit.order_pk)
            ).all()
        )
        allocations = dict(
            s.execute(
                select(Allocation.order_pk, func.count())
                .where(Allocation.order_pk.in_(pks))
                .group_by(Allocation.order_pk)
            ).all()
        )
        completed = Counter(
            data["order"]
            for data in s.execute(
                select(OutboxEvent.data).where(OutboxEvent.type == "split.completed")
            ).scalars()
        )
        for order_id, amount in load.acked_orders.items():
            row = orders[order_id]
            assert row.amount == amount
            assert row.split_status == "completed", order_id
            assert credited.get(row.id) == amount, order_id  # fully split, nothing twice
            assert credits.get(row.id) == allocations.get(row.id), order_id
            assert completed[row.id] == 1, order_id  # split.completed exactly once
        # One ledger transfer per credit, in the whole database (all tests so far).
        all_credits = s.scalar(select(func.count()).select_from(SplitCredit))
        assert (
            s.scalar(
                select(func.count()).select_from(Transfer).where(Transfer.code == "split_credit")
            )
            == all_credits
        )

        rows = s.execute(
            select(Payout.id, Payout.status, Payout.amount).where(
                Payout.id.in_(list(load.acked_payouts))
            )
        ).all()
        assert len(rows) == PAYOUTS
        terminal = Counter(
            s.execute(
                select(PayoutTransition.payout_id).where(
                    PayoutTransition.payout_id.in_(list(load.acked_payouts)),
                    PayoutTransition.status.in_(TERMINAL),
                )
            ).scalars()
        )
        paid = dict(
            s.execute(
                select(SimulatedBankPayment.payout_id, SimulatedBankPayment.paid).where(
                    SimulatedBankPayment.payout_id.in_(list(load.acked_payouts))
                )
            ).all()
        )
        outcomes = Counter()
        for payout_id, status, amount in rows:
            assert amount == load.acked_payouts[payout_id]
            assert status in TERMINAL, payout_id
            assert terminal[payout_id] == 1, payout_id  # terminal exactly once
            assert paid.get(payout_id, 0) == (1 if status == "completed" else 0), payout_id
            outcomes[status] += 1
        audit = ledger.audit(s)
    assert audit.ok, audit.problems[:5]
    # (The outbox and the queues were empty when `idle` returned; the self-renewing timers
    # keep adding a due event every second, so they are not checked again here.)
    assert report["dead_letters"] == 0, report
    return {"payouts": dict(outcomes), "statuses": dict(load.statuses), "503": load.problems_503}


def _diagnose(stack: Stack) -> dict[str, Any]:
    with stack.app.db.read() as s:
        orders = dict(
            s.execute(select(Order.split_status, func.count()).group_by(Order.split_status)).all()
        )
        payout_states = dict(
            s.execute(select(Payout.status, func.count()).group_by(Payout.status)).all()
        )
    report = stack.report()
    return {
        "orders": orders,
        "payouts": payout_states,
        "outbox": report["outbox"],
        "queues": report["queues"],
        "broker_queues": report.get("broker_queues"),
        "dead": report["dead_letters"],
        "processes": [(p["kind"], p["services"], p["stale"]) for p in report["processes"]],
        "dead_processes": stack.dead(),
    }


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} faults: {message}", flush=True)


def when_progress(load: Load, fraction: float) -> None:
    wait_for(lambda: load.progress() >= fraction, LOAD_DEADLINE, f"{fraction:.0%} of the load")


def kill_inside(stack: Stack, role: str, where: str, what: str) -> None:
    """kill -9 ``role`` at the moment its database session matches ``where``."""
    deadline = time.monotonic() + 60
    with stack.app.db.engine.connect() as conn:
        query = text(
            f"SELECT 1 FROM pg_stat_activity WHERE application_name = :role AND {where} LIMIT 1"
        )
        while True:
            assert time.monotonic() < deadline, f"{role} was never seen {what}"
            if conn.execute(query, {"role": role}).first():
                stack.procs[role].popen.send_signal(signal.SIGKILL)
                break
            conn.rollback()
    stack.procs[role].popen.wait(30)
    log(f"killed {role} {what}")
    stack.procs[f"{role}-killed"] = stack.procs[role]
    stack.respawn(role)


# ---------------------------------------------------------------- the tests


def test_kill_9_a_worker_mid_batch_and_a_relay_between_publish_and_mark_sent(stack: Stack):
    """Seed SEED, ORDERS orders + PAYOUTS payouts from 16 clients: a splitter worker is
    killed inside its batch transaction, a wallets worker too, and a relay while it holds its
    outbox rows (selected FOR UPDATE, published or publishing, not yet marked sent)."""

    def fault(load: Load) -> None:
        when_progress(load, 0.2)
        in_batch = (
            "xact_start IS NOT NULL AND query NOT ILIKE '%bus_heartbeats%' "
            "AND state IN ('active', 'idle in transaction')"
        )
        kill_inside(stack, "worker-splitter-0", in_batch, "inside a batch")
        kill_inside(stack, "worker-wallets-1", in_batch, "inside a batch")
        when_progress(load, 0.5)
        kill_inside(
            stack,
            "relay-0",
            "state = 'idle in transaction' AND query ILIKE '%FROM bus_outbox%FOR UPDATE%'",
            "between publish and mark-sent",
        )

    load = run_load(stack, "kill", SEED, fault)
    result = settle_and_check(stack, load)
    assert result["payouts"].get("completed", 0) > 0


def test_restart_rabbitmq_under_load(stack: Stack):
    """Seed SEED + 1, the same bounds: the private broker is stopped (``rabbitmqctl stop_app``)
    after a third of the load, the rest is sent while it is away (at least 3 s), then it is
    started again; the relays and workers reconnect and catch up."""

    def fault(load: Load) -> None:
        # The API does not need the broker, the bus does: the first third of the jobs is sent,
        # the broker stopped, and the other two thirds are sent while it is away (the relays
        # cannot publish, the workers have nothing to consume), then it is started again.
        when_progress(load, (load.gate_after or 0) / len(load.jobs))
        stack.rabbit.ctl_run("stop_app")
        split_at_stop.append(_split(stack, "rabbit"))
        log(f"broker stopped at {load.progress():.0%} of the load, {split_at_stop[0]} split")
        load.gate.set()
        time.sleep(3)  # the outage itself, not a wait for a result
        acked_while_down.append(len(load.acked_orders))
        stack.rabbit.ctl_run("start_app")
        log(f"broker started; {acked_while_down[0]} orders acknowledged by then")

    split_at_stop: list[int] = []
    acked_while_down: list[int] = []
    load = run_load(stack, "rabbit", SEED + 1, fault, gate_after=(ORDERS + PAYOUTS) // 3)
    assert split_at_stop[0] < ORDERS, "every order was split before the broker stopped"
    assert acked_while_down[0] > split_at_stop[0], "no order arrived while the broker was away"
    settle_and_check(stack, load)


def _split(stack: Stack, tag: str) -> int:
    with stack.app.db.read() as s:
        return int(
            s.scalar(
                select(func.count()).where(
                    Order.platform_id == stack.platform_id,
                    Order.order_id.like(f"{tag}-%"),
                    Order.split_status == "completed",
                )
            )
            or 0
        )


def test_restart_postgresql_under_load(stack: Stack):
    """Seed SEED + 2, the same bounds: the private PostgreSQL is stopped (fast: connections are
    cut) for 3 s while the load runs, then started; the API answers 503 problem+json while it
    is away (never 500) and every process recovers by itself."""

    def fault(load: Load) -> None:
        when_progress(load, 0.3)
        stack.pg.stop()
        at_stop.append(load.progress())
        log(f"PostgreSQL stopped at {at_stop[0]:.0%} of the load")
        time.sleep(3)  # the outage itself, not a wait for a result
        stack.pg.start()
        log("PostgreSQL started")

    at_stop: list[float] = []
    load = run_load(stack, "pg", SEED + 2, fault)
    assert at_stop[0] < 1, "the load was over before the database stopped"
    result = settle_and_check(stack, load)
    assert result["503"] > 0, "no request saw the database away"
