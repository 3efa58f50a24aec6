"""The ledger benchmark: transfers per second and latency, with references to compare against.

Scenarios, each on a fresh database (a temporary SQLite file, or a PostgreSQL database that is
created and dropped here):

- ``single``: one transfer per transaction (``create_transfer`` in ``Database.transaction()``),
  with 1 client and with N concurrent clients (threads);
- ``batch``: batches of 1,000 transfers, one transaction each (``create_transfers``);
- ``http``: ``POST /v1/transfers`` through a real ``potluck serve`` (uvicorn) on 127.0.0.1,
  SQLite, with N concurrent httpx clients.

References measured in the same run: ``pgbench -N`` on the same PostgreSQL server (the ceiling
for one small write transaction per operation) and django-hordak doing the same single
transfers (bench/hordak/driver.py, in its own virtualenv bench/.venv-hordak).

Nothing here asserts speed; ``potluck bench ledger`` compares the figures with the targets of
the foundation issue and prints pass/miss.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text

from potluck.db import Database, make_engine
from potluck.ledger import service as ledger
from potluck.migrate import upgrade

REPO = Path(__file__).resolve().parents[3]
BENCH_DIR = REPO / "bench"
HORDAK_DIR = BENCH_DIR / "hordak"
HORDAK_VENV = BENCH_DIR / ".venv-hordak"
# Pinned: django-hordak 2.0.0 is the newest release and runs on Python 3.11 with Django 5.2
# (Django 6 needs Python 3.12).
HORDAK_REQUIREMENTS = ("django-hordak==2.0.0", "django==5.2.19", "psycopg[binary]==3.3.9")
PG_ADMIN_URL = os.environ.get(
    "POTLUCK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CURRENCY = "EUR"
WALLET_FUNDING = 10**9  # minor units per pre-funded wallet: refusals stay rare, not impossible


# ---------------------------------------------------------------- progress and results


class Progress(Protocol):
    """Where the benchmark reports progress (a Rich progress bar in the CLI)."""

    def start(self, description: str, total: int) -> Callable[[int], None]: ...

    def log(self, message: str) -> None: ...


class SilentProgress:
    def start(self, description: str, total: int) -> Callable[[int], None]:
        return lambda _n: None

    def log(self, message: str) -> None:
        pass


@dataclass
class Figure:
    """One measured row: a system doing a scenario with some clients."""

    system: str  # potluck | hordak | pgbench
    backend: str  # sqlite | postgresql
    scenario: str  # single | batch | http | pgbench-N
    clients: int
    operations: int  # transfers (or pgbench transactions)
    seconds: float
    per_second: float  # transfers/s (pgbench: transactions/s)
    p50_ms: float | None
    p99_ms: float | None
    refused: int = 0  # refused by the ledger's rules (e.g. insufficient funds)
    errors: int = 0  # anything else
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.system}/{self.backend}/{self.scenario}/{self.clients}"


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    ok: bool | None  # None: not measured (or, with ``reported``, shown for reference)
    reported: bool = False  # a figure shown next to a judged target, not judged itself


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def find(self, system: str, backend: str, scenario: str, clients: int) -> Figure | None:
        for f in self.figures:
            if (f.system, f.backend, f.scenario, f.clients) == (system, backend, scenario, clients):
                return f
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
            "targets": [asdict(t) for t in self.targets],
            "skipped": self.skipped,
        }


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``q`` in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def summarise(
    *,
    system: str,
    backend: str,
    scenario: str,
    clients: int,
    operations: int,
    seconds: float,
    latencies: list[float],
    refused: int = 0,
    errors: int = 0,
    note: str = "",
) -> Figure:
    latencies.sort()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return Figure(
        system=system,
        backend=backend,
        scenario=scenario,
        clients=clients,
        operations=operations,
        seconds=round(seconds, 3),
        per_second=round(operations / seconds, 1) if seconds > 0 else 0.0,
        p50_ms=round(p50 * 1000, 2) if p50 is not None else None,
        p99_ms=round(p99 * 1000, 2) if p99 is not None else None,
        refused=refused,
        errors=errors,
        note=note,
    )


# ---------------------------------------------------------------- the workload


@dataclass(frozen=True)
class AccountSpec:
    key: str  # a stable name, the same in Potluck and in hordak
    code: str  # wallet | merchant | escrow | fees | clearing
    flagged: bool  # debits_must_not_exceed_credits
    funding: int  # pre-funded from the clearing account


@dataclass(frozen=True)
class Plan:
    """Accounts and transfers, generated from a seed so that every system gets the same ones."""

    accounts: list[AccountSpec]
    transfers: list[tuple[int, int, int]]  # (debit index, credit index, amount)

    def to_json(self) -> dict[str, Any]:
        return {"accounts": [asdict(a) for a in self.accounts], "transfers": self.transfers}


def make_plan(*, accounts: int, transfers: int, seed: int) -> Plan:
    """A realistic mix: 70% wallets (flagged, pre-funded), 20% merchants, 8% escrow,
    the rest fee accounts, plus one clearing account that funds the wallets.

    Transfers pick random distinct pairs among all accounts except clearing; amounts are
    1–10,000 minor units.
    """
    if accounts < 3:
        raise ValueError("the plan needs at least 3 accounts")
    rng = random.Random(seed)
    specs = [AccountSpec("clearing", "clearing", False, 0)]
    n = accounts - 1
    kinds = (
        ["wallet"] * round(n * 0.70) + ["merchant"] * round(n * 0.20) + ["escrow"] * round(n * 0.08)
    )
    kinds += ["fees"] * (n - len(kinds))
    kinds = kinds[:n]
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        wallet = kind == "wallet"
        specs.append(AccountSpec(f"{kind}-{i:05d}", kind, wallet, WALLET_FUNDING if wallet else 0))
    pairs = []
    for _ in range(transfers):
        debit = rng.randrange(1, accounts)
        credit = rng.randrange(1, accounts - 1)
        if credit >= debit:
            credit += 1
        pairs.append((debit, credit, rng.randint(1, 10_000)))
    return Plan(specs, pairs)


def create_accounts(
    db: Database, plan: Plan, *, scope: str = ledger.SYSTEM_SCOPE, book: str = "money"
) -> list[str]:
    """Create the plan's accounts and fund the wallets; returns the ledger ids by index."""
    now = datetime.now(UTC)
    ids: list[str] = []
    with db.transaction() as s:
        for spec in plan.accounts:
            view = ledger.create_account(
                s,
                currency=CURRENCY,
                code=spec.code,
                now=now,
                book=book,
                scope=scope,
                owner=scope if scope != ledger.SYSTEM_SCOPE else None,
                flags=ledger.AccountFlags(debits_must_not_exceed_credits=spec.flagged),
                metadata={"bench": spec.key},
            )
            ids.append(view.id)
    funding = [
        ledger.NewTransfer(ids[0], ids[i], spec.funding, client_id=f"fund-{i}", code="funding")
        for i, spec in enumerate(plan.accounts)
        if spec.funding
    ]
    for start in range(0, len(funding), 1000):
        with db.transaction() as s:
            ledger.create_transfers(s, funding[start : start + 1000], now=now, scope=scope)
    return ids


def new_transfers(plan: Plan, ids: list[str], prefix: str) -> list[ledger.NewTransfer]:
    return [
        ledger.NewTransfer(ids[d], ids[c], amount, client_id=f"{prefix}-{n}", currency=CURRENCY)
        for n, (d, c, amount) in enumerate(plan.transfers)
    ]


# ---------------------------------------------------------------- fresh databases


@contextlib.contextmanager
def fresh_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="potluck-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        yield url


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str = PG_ADMIN_URL, *, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped on the way out. Yields its URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(admin_url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def fresh_postgres(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    with fresh_postgres_database(admin_url, prefix="potluck_bench") as url:
        upgrade(url)
        yield url


@contextlib.contextmanager
def fresh_database(backend: str, admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    if backend == "sqlite":
        with fresh_sqlite() as url:
            yield url
    elif backend == "postgresql":
        with fresh_postgres(admin_url) as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


def postgres_reachable(admin_url: str = PG_ADMIN_URL) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = make_engine(admin_url, pool_size=1)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL is not answering at {admin_url} ({type(exc).__name__})"


# ---------------------------------------------------------------- Potluck in-process


def run_threads(
    ops: Sequence[Any], clients: int, work: Callable[[Any], str], advance: Callable[[int], None]
) -> tuple[float, list[float], dict[str, int]]:
    """Run ``work`` over ``ops`` from ``clients`` threads; ``work`` answers ok|refused|error.

    Returns the wall time, every operation's latency in seconds, and counts by outcome.
    """
    latencies: list[list[float]] = [[] for _ in range(clients)]
    counts = [{"ok": 0, "refused": 0, "error": 0} for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client(index: int) -> None:
        mine = ops[index::clients]
        lat, count = latencies[index], counts[index]
        barrier.wait()
        done = 0
        for op in mine:
            t0 = time.perf_counter()
            try:
                outcome = work(op)
            except Exception as exc:  # counted, and the first one is shown
                outcome = "error"
                if not errors:
                    errors.append(exc)
            lat.append(time.perf_counter() - t0)
            count[outcome] += 1
            done += 1
            if done % 25 == 0:
                advance(25)
        advance(done % 25)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    totals = {k: sum(c[k] for c in counts) for k in ("ok", "refused", "error")}
    if errors:
        totals["first_error"] = 0
        print(f"first error: {errors[0]!r}", file=sys.stderr)
    return elapsed, [x for lat in latencies for x in lat], totals


def bench_single(
    db: Database,
    ops: Sequence[ledger.NewTransfer],
    *,
    backend: str,
    clients: int,
    progress: Progress,
) -> Figure:
    """One transfer per transaction, ``clients`` threads."""

    def work(op: ledger.NewTransfer) -> str:
        try:
            with db.transaction() as s:
                ledger.create_transfer(s, op, now=datetime.now(UTC))
        except ledger.LedgerError as exc:
            if exc.status == 402:
                return "refused"
            raise
        return "ok"

    advance = progress.start(f"{backend}: single transfers, {clients} client(s)", len(ops))
    elapsed, latencies, counts = run_threads(ops, clients, work, advance)
    return summarise(
        system="potluck",
        backend=backend,
        scenario="single",
        clients=clients,
        operations=len(ops),
        seconds=elapsed,
        latencies=latencies,
        refused=counts["refused"],
        errors=counts["error"],
    )


def bench_batches(
    db: Database,
    ops: Sequence[ledger.NewTransfer],
    *,
    backend: str,
    batch_size: int,
    progress: Progress,
) -> Figure:
    """Batches of ``batch_size`` transfers, one transaction each, one client.

    Latency figures are per batch.
    """
    batches = [ops[i : i + batch_size] for i in range(0, len(ops), batch_size)]

    def work(batch: Sequence[ledger.NewTransfer]) -> str:
        try:
            with db.transaction() as s:
                ledger.create_transfers(s, batch, now=datetime.now(UTC))
        except ledger.LedgerError as exc:
            if exc.status == 402:
                return "refused"
            raise
        return "ok"

    advance = progress.start(f"{backend}: batches of {batch_size}", len(batches))
    elapsed, latencies, counts = run_threads(batches, 1, work, advance)
    return summarise(
        system="potluck",
        backend=backend,
        scenario="batch",
        clients=1,
        operations=len(ops),
        seconds=elapsed,
        latencies=latencies,
        refused=counts["refused"] * batch_size,
        errors=counts["error"] * batch_size,
        note=f"{len(batches)} batches of {batch_size}; p50/p99 per batch",
    )


# ---------------------------------------------------------------- HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_platform_key(url: str, name: str) -> tuple[str, str]:
    """Create a platform with identity's service; returns (platform id, secret key)."""
    from potluck.bootstrap import bootstrap
    from potluck.config import Settings
    from potluck.identity.service import create_platform

    app = bootstrap(Settings(database_url=url, log_json=False))
    try:
        view, secret = create_platform(app, name=name)
    finally:
        app.db.dispose()
    return view.id, secret


@contextlib.contextmanager
def potluck_server(url: str, *, port: int) -> Iterator[str]:
    """``potluck serve`` in a subprocess on 127.0.0.1:<port>; yields the base URL."""
    env = dict(os.environ, POTLUCK_DATABASE_URL=url, POTLUCK_LOG_LEVEL="WARNING")
    cmd = [
        sys.executable,
        "-c",
        "from potluck.cli import main; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"potluck serve exited ({proc.returncode}): {err[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("potluck serve did not answer /healthz within 30 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_http(
    url: str,
    plan: Plan,
    *,
    clients: int,
    progress: Progress,
    backend: str = "sqlite",
    idempotency_key: bool = True,
) -> Figure:
    """``POST /v1/transfers`` with ``clients`` concurrent httpx clients (threads).

    With ``idempotency_key`` (the default, as platforms are told to), every request carries an
    ``Idempotency-Key``, which costs the server two more write transactions (claim, complete).
    """
    import httpx

    platform_id, secret = create_platform_key(url, "bench")
    scope = f"platform:{platform_id}"
    db = Database(make_engine(url, pool_size=2))
    try:
        ids = create_accounts(db, plan, scope=scope, book=scope)
    finally:
        db.dispose()
    bodies = [
        {
            "id": f"http-{n}",
            "debit_account": ids[d],
            "credit_account": ids[c],
            "amount": amount,
            "currency": CURRENCY,
        }
        for n, (d, c, amount) in enumerate(plan.transfers)
    ]
    with potluck_server(url, port=free_port()) as base:
        local = threading.local()

        def work(body: dict[str, Any]) -> str:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(
                    base_url=base,
                    headers={"Authorization": f"Bearer {secret}"},
                    timeout=30,
                )
            headers = {"Idempotency-Key": body["id"]} if idempotency_key else {}
            reply = client.post("/v1/transfers", json=body, headers=headers)
            if reply.status_code == 201:
                return "ok"
            if reply.status_code == 402:
                return "refused"
            raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")

        advance = progress.start(
            f"{backend}: HTTP POST /v1/transfers, {clients} clients", len(bodies)
        )
        elapsed, latencies, counts = run_threads(bodies, clients, work, advance)
    return summarise(
        system="potluck",
        backend=backend,
        scenario="http",
        clients=clients,
        operations=len(bodies),
        seconds=elapsed,
        latencies=latencies,
        refused=counts["refused"],
        errors=counts["error"],
        note="potluck serve (1 uvicorn worker, embedded relay); "
        + ("Idempotency-Key on every POST" if idempotency_key else "no Idempotency-Key"),
    )


WRK_SCRIPT = r"""
-- Each request: a new transfer id (also its Idempotency-Key) between two random accounts.
local accounts = {ACCOUNTS}
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  math.randomseed(SEED + tid)
end
function request()
  counter = counter + 1
  local id = "wrk-" .. tid .. "-" .. counter
  local d = math.random(#accounts)
  local c = math.random(#accounts - 1)
  if c >= d then c = c + 1 end
  local body = string.format(
    '{"id":"%s","debit_account":"%s","credit_account":"%s","amount":%d,"currency":"EUR"}',
    id, accounts[d], accounts[c], math.random(1, 5000))
  return wrk.format("POST", "/v1/transfers", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer SECRET",
    IDEMPOTENCY
  }, body)
end
"""


def _wrk_ms(text_value: str) -> float:
    number = float(re.sub(r"[a-z]+$", "", text_value))
    unit = re.sub(r"^[0-9.]+", "", text_value)
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def bench_http_wrk(
    url: str,
    plan: Plan,
    *,
    clients: int,
    seconds: int,
    seed: int,
    progress: Progress,
    backend: str = "sqlite",
    idempotency_key: bool = True,
) -> Figure:
    """``POST /v1/transfers`` driven by wrk (a C load generator), so that the client does not
    take the CPU the server needs on a 2-core machine; same payloads as the httpx scenario."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk not found: apt-get install -y wrk (Debian)")
    platform_id, secret = create_platform_key(url, "bench-wrk")
    scope = f"platform:{platform_id}"
    db = Database(make_engine(url, pool_size=2))
    try:
        ids = create_accounts(db, plan, scope=scope, book=scope)
    finally:
        db.dispose()
    script = (
        WRK_SCRIPT.replace("{ACCOUNTS}", "{" + ",".join(f'"{i}"' for i in ids) + "}")
        .replace("SEED", str(seed))
        .replace("SECRET", secret)
        .replace("IDEMPOTENCY", '["Idempotency-Key"] = id,' if idempotency_key else "")
    )
    with tempfile.TemporaryDirectory() as tmp, potluck_server(url, port=free_port()) as base:
        path = Path(tmp) / "post.lua"
        path.write_text(script)
        advance = progress.start(f"{backend}: HTTP POST /v1/transfers, wrk, {clients} conns", 1)
        out = subprocess.run(  # noqa: S603 - a fixed tool with our own arguments
            [
                wrk,
                "-t2",
                f"-c{clients}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(path),
                base + "/v1/transfers",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
        advance(1)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    elapsed = float(re.search(r"requests in ([0-9.]+)s", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return Figure(
        system="potluck",
        backend=backend,
        scenario="http-wrk" if idempotency_key else "http-wrk-nokey",
        clients=clients,
        operations=requests,
        seconds=round(elapsed, 3),
        per_second=round(requests / elapsed, 1),
        p50_ms=round(_wrk_ms(p50.group(1)), 2) if p50 else None,
        p99_ms=round(_wrk_ms(p99.group(1)), 2) if p99 else None,
        refused=int(non_2xx.group(1)) if non_2xx else 0,
        errors=0,
        note=(
            f"wrk -t2 -c{clients}; potluck serve (1 uvicorn worker, embedded relay); "
            + ("Idempotency-Key and " if idempotency_key else "no Idempotency-Key; ")
            + "a client transfer id on every POST; refused = non-2xx (402 on flagged accounts)"
            + (f"; socket errors: {errors.group(1)}" if errors else "")
        ),
    )


# ---------------------------------------------------------------- pgbench


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    return str(candidates[0]) if candidates else None


PGBENCH_MISSING = (
    "pgbench not found: install it with `apt-get update && apt-get install -y "
    "postgresql-contrib` (Debian; pgbench ships in postgresql-client-NN), or pass --skip-pgbench"
)


def bench_pgbench(
    admin_url: str = PG_ADMIN_URL,
    *,
    clients: int,
    seconds: int,
    scale: int,
    progress: Progress,
) -> Figure:
    """``pgbench -N`` (simple updates: no branch/teller contention) in its own database."""
    exe = find_pgbench()
    if exe is None:
        raise RuntimeError(PGBENCH_MISSING)
    with fresh_postgres_database(admin_url, prefix="potluck_bench_pgbench") as url:
        from sqlalchemy.engine import make_url

        u = make_url(url)
        conn = [
            "-h",
            u.host or "127.0.0.1",
            "-p",
            str(u.port or 5432),
            "-U",
            u.username or "postgres",
        ]
        env = dict(os.environ, PGPASSWORD=u.password or "")
        advance = progress.start(f"pgbench -i -s {scale}", 1)
        subprocess.run(  # noqa: S603
            [exe, "-i", "-q", "-s", str(scale), *conn, u.database or ""],
            check=True,
            env=env,
            capture_output=True,
        )
        advance(1)
        with tempfile.TemporaryDirectory(prefix="potluck-pgbench-") as logdir:
            advance = progress.start(f"pgbench -N -c {clients} -T {seconds}", seconds)
            proc = subprocess.Popen(  # noqa: S603
                [
                    exe,
                    "-N",
                    "-c",
                    str(clients),
                    "-j",
                    str(min(clients, os.cpu_count() or 2)),
                    "-T",
                    str(seconds),
                    "-l",
                    "--log-prefix",
                    f"{logdir}/pgbench_log",
                    *conn,
                    u.database or "",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=logdir,
            )
            for _ in range(seconds):
                if proc.poll() is not None:
                    break
                time.sleep(1)
                advance(1)
            out = proc.communicate()[0].decode()
            if proc.returncode != 0:
                raise RuntimeError(f"pgbench failed: {out[-2000:]}")
            latencies: list[float] = []
            for log in Path(logdir).glob("pgbench_log*"):
                for line in log.read_text().splitlines():
                    parts = line.split()
                    if len(parts) >= 3:
                        latencies.append(int(parts[2]) / 1e6)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    if not match:
        raise RuntimeError(f"could not read pgbench's TPS from: {out[-2000:]}")
    tps = float(match.group(1))
    figure = summarise(
        system="pgbench",
        backend="postgresql",
        scenario="pgbench-N",
        clients=clients,
        operations=int(processed.group(1)) if processed else len(latencies),
        seconds=float(seconds),
        latencies=latencies,
        note=f"pgbench -N -c {clients} -T {seconds}, scale {scale}",
    )
    figure.per_second = round(tps, 1)
    return figure


# ---------------------------------------------------------------- django-hordak


def ensure_hordak_venv(progress: Progress) -> Path:
    """Create bench/.venv-hordak with the pinned packages (once); returns its python."""
    python = HORDAK_VENV / "bin" / "python"
    stamp = HORDAK_VENV / ".installed"
    wanted = "\n".join(HORDAK_REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    base = shutil.which("python3.11") or sys.executable
    progress.log(f"creating {HORDAK_VENV} ({', '.join(HORDAK_REQUIREMENTS)})")
    advance = progress.start("installing django-hordak into bench/.venv-hordak", 2)
    subprocess.run([base, "-m", "venv", str(HORDAK_VENV)], check=True)  # noqa: S603
    advance(1)
    subprocess.run(  # noqa: S603
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *list(HORDAK_REQUIREMENTS),
        ],
        check=True,
    )
    advance(1)
    stamp.write_text(wanted)
    return python


def bench_hordak(
    plan: Plan,
    *,
    backend: str,
    clients: Sequence[int],
    progress: Progress,
    admin_url: str = PG_ADMIN_URL,
    mode: str = "checked",
) -> list[Figure]:
    """django-hordak doing the plan's single transfers (bench/hordak/driver.py)."""
    python = ensure_hordak_venv(progress)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="potluck-hordak-")))
        if backend == "postgresql":
            url = stack.enter_context(fresh_postgres_database(admin_url, prefix="potluck_hordak"))
            url = url.replace("postgresql+psycopg://", "postgres://")
        else:
            url = f"sqlite:///{tmp}/hordak.db"
        plan_path = tmp / "plan.json"
        plan_path.write_text(json.dumps(plan.to_json()))
        out_path = tmp / "figures.json"
        total = len(plan.transfers) * len(clients)
        advance = progress.start(
            f"{backend}: django-hordak single transfers ({mode}), clients {clients}", total
        )
        proc = subprocess.Popen(  # noqa: S603
            [
                str(python),
                str(HORDAK_DIR / "driver.py"),
                "--database-url",
                url,
                "--plan",
                str(plan_path),
                "--clients",
                ",".join(str(c) for c in clients),
                "--mode",
                mode,
                "--out",
                str(out_path),
            ],
            cwd=HORDAK_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:  # the driver prints "+N" as it goes
            if line.startswith("+"):
                advance(int(line[1:]))
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise RuntimeError(f"hordak driver failed: {stderr[-3000:]}")
        rows = json.loads(out_path.read_text())
    figures = []
    for row in rows:
        figures.append(
            summarise(
                system="hordak" if mode == "checked" else "hordak-plain",
                backend=backend,
                scenario="single",
                clients=row["clients"],
                operations=row["operations"],
                seconds=row["seconds"],
                latencies=row["latencies"],
                refused=row["refused"],
                errors=row["errors"],
                note=row.get("note", ""),
            )
        )
    return figures


# ---------------------------------------------------------------- the whole run


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgresql"])
    transfers: int = 10_000  # per single-transfer scenario
    clients: int = 16
    batches: int = 50
    batch_size: int = 1000
    http_transfers: int = 10_000
    http_seconds: int = 20  # the wrk run
    accounts: int = 1000
    seed: int = 42
    pgbench_seconds: int = 15
    pgbench_scale: int = 10
    hordak: bool = True
    pgbench: bool = True
    http: bool = True
    admin_url: str = PG_ADMIN_URL

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        values: dict[str, Any] = {
            "transfers": 300,
            "batches": 3,
            "batch_size": 1000,
            "http_transfers": 300,
            "http_seconds": 3,
            "accounts": 200,
            "pgbench_seconds": 3,
            "pgbench_scale": 1,
        }
        values.update(overrides)
        return cls(**values)


def machine_info(admin_url: str = PG_ADMIN_URL) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
                break
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": os.getloadavg(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(Exception):
        engine = make_engine(admin_url, pool_size=1)
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    return info


def run_potluck_backend(backend: str, opts: Options, progress: Progress) -> list[Figure]:
    """Single (1 and N clients) and batched transfers on one fresh database."""
    plan = make_plan(
        accounts=opts.accounts,
        transfers=max(opts.transfers, opts.batches * opts.batch_size),
        seed=opts.seed,
    )
    figures = []
    with fresh_database(backend, opts.admin_url) as url:
        db = Database(make_engine(url, pool_size=opts.clients + 2))
        try:
            ids = create_accounts(db, plan)
            single = Plan(plan.accounts, plan.transfers[: opts.transfers])
            for clients in sorted({1, opts.clients}):
                ops = new_transfers(single, ids, f"single{clients}")
                figures.append(
                    bench_single(db, ops, backend=backend, clients=clients, progress=progress)
                )
            batched = Plan(plan.accounts, plan.transfers[: opts.batches * opts.batch_size])
            ops = new_transfers(batched, ids, "batch")
            figures.append(
                bench_batches(
                    db, ops, backend=backend, batch_size=opts.batch_size, progress=progress
                )
            )
            with db.read() as s:
                audit = ledger.audit(s)
            if not audit.ok:
                raise RuntimeError("ledger audit failed after the benchmark: " + audit.problems[0])
        finally:
            db.dispose()
    return figures


def run(opts: Options, progress: Progress | None = None) -> Report:
    """Everything the options ask for; a failing reference is reported, not fatal."""
    progress = progress or SilentProgress()
    report = Report(machine=machine_info(opts.admin_url))
    backends = list(opts.backends)
    if "postgresql" in backends:
        problem = postgres_reachable(opts.admin_url)
        if problem:
            report.skipped.append(f"postgresql: {problem}")
            backends.remove("postgresql")
    for backend in backends:
        report.figures += run_potluck_backend(backend, opts, progress)
    if opts.http and "sqlite" in backends:
        plan = make_plan(accounts=opts.accounts, transfers=opts.http_transfers, seed=opts.seed)
        try:
            with fresh_sqlite() as url:
                report.figures.append(
                    bench_http(url, plan, clients=opts.clients, progress=progress)
                )
        except Exception as exc:
            report.skipped.append(f"http: {type(exc).__name__}: {exc}")
        for with_key in (True, False) if shutil.which("wrk") else ():
            try:
                with fresh_sqlite() as url:
                    report.figures.append(
                        bench_http_wrk(
                            url,
                            plan,
                            clients=opts.clients,
                            seconds=opts.http_seconds,
                            seed=opts.seed,
                            progress=progress,
                            idempotency_key=with_key,
                        )
                    )
            except Exception as exc:
                report.skipped.append(f"http (wrk): {type(exc).__name__}: {exc}")
        if not shutil.which("wrk"):
            report.skipped.append("http (wrk): wrk not installed (apt-get install -y wrk)")
    if opts.pgbench and "postgresql" in backends:
        try:
            report.figures.append(
                bench_pgbench(
                    opts.admin_url,
                    clients=opts.clients,
                    seconds=opts.pgbench_seconds,
                    scale=opts.pgbench_scale,
                    progress=progress,
                )
            )
        except Exception as exc:
            report.skipped.append(f"pgbench: {exc}")
    if opts.hordak and "postgresql" in backends:
        plan = make_plan(accounts=opts.accounts, transfers=opts.transfers, seed=opts.seed)
        try:
            report.figures += bench_hordak(
                plan,
                backend="postgresql",
                clients=sorted({1, opts.clients}),
                progress=progress,
                admin_url=opts.admin_url,
            )
        except Exception as exc:
            report.skipped.append(f"hordak: {exc}")
    report.machine["load_average_at_end"] = os.getloadavg()
    report.machine["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report.targets = evaluate(report, opts.clients)
    return report


# ---------------------------------------------------------------- targets


def evaluate(report: Report, clients: int = 16) -> list[Target]:
    """The foundation issue's targets, each met, missed or not measured."""
    targets: list[Target] = []

    def rate(f: Figure | None) -> str:
        return f"{f.per_second:,.0f}/s" if f else "not measured"

    for backend, floor in (("postgresql", 10_000), ("sqlite", 20_000)):
        f = report.find("potluck", backend, "batch", 1)
        targets.append(
            Target(
                f"batched transfers, {backend}",
                f">= {floor:,}/s",
                rate(f),
                None if f is None else f.per_second >= floor,
            )
        )
    for backend in ("postgresql", "sqlite"):
        ours = report.find("potluck", backend, "single", clients)
        theirs = report.find("hordak", backend, "single", clients)
        against = backend
        if theirs is None and backend == "sqlite":
            theirs, against = report.find("hordak", "postgresql", "single", clients), "postgresql"
        if ours is None:
            continue
        ok = None if theirs is None else ours.per_second >= 2.5 * theirs.per_second
        ratio = f" = {ours.per_second / theirs.per_second:.1f}x" if theirs else ""
        targets.append(
            Target(
                f"single, {clients} clients, {backend}, vs django-hordak on {against}",
                ">= 2.5x hordak",
                f"{rate(ours)} vs {rate(theirs)}{ratio}",
                ok,
            )
        )
    ours = report.find("potluck", "postgresql", "single", clients)
    pgb = report.find("pgbench", "postgresql", "pgbench-N", clients)
    if ours is not None:
        ratio = f" = {100 * ours.per_second / pgb.per_second:.0f}%" if pgb else ""
        targets.append(
            Target(
                f"single, {clients} clients, postgresql, vs pgbench -N",
                ">= 50% of pgbench -N",
                f"{rate(ours)} vs {rate(pgb)}{ratio}",
                None if pgb is None else ours.per_second >= 0.5 * pgb.per_second,
            )
        )
    # wrk when it ran (a Python load generator takes the CPU the server needs on 2 cores).
    # The target is judged on requests that carry a client transfer id, the ledger's own
    # idempotency (docs/api.md); with an Idempotency-Key as well it is reported alongside.
    candidates = [
        ("http-wrk-nokey", "wrk, client transfer ids"),
        ("http-wrk", "wrk, client ids + Idempotency-Key"),
        ("http", "httpx threads, client ids + Idempotency-Key"),
    ]
    judged = False
    for scenario, label in candidates:
        http = report.find("potluck", "sqlite", scenario, clients)
        if http is None:
            continue
        targets.append(
            Target(
                f"HTTP POST /v1/transfers, sqlite, {clients} clients ({label})",
                ">= 500/s, p99 < 50 ms",
                f"{rate(http)}, p99 {http.p99_ms} ms",
                (http.per_second >= 500 and (http.p99_ms or 0) < 50 and http.errors == 0)
                if not judged
                else None,
                reported=judged,
            )
        )
        judged = True
    if not judged:
        targets.append(
            Target(
                f"HTTP POST /v1/transfers, sqlite, {clients} clients",
                ">= 500/s, p99 < 50 ms",
                "not measured",
                None,
            )
        )
    return targets
