"""Wallet payments per second over HTTP, with risk scoring, on a real server.

``potluck serve --workers N`` runs in a subprocess on a fresh database; ``people`` people
(inserted directly, a year old, no password hashing) are funded from a funding account; then
``clients`` threads, each with its own httpx client, ``POST /v1/wallet/transfers`` (with an
Idempotency-Key) from a random person to another. Every payment goes through validation, risk
scoring (decision stored, history read), one ledger batch and its event. Reported: payments
per second from the first request to the last reply, p50/p99 latency, and the outcomes.

The server gets permissive velocity settings: a benchmark's few people pay far more often
than anyone would, and the velocity rules would hold most payments for review (the scoring
work is the same either way).

Afterwards: money conserved (wallets hold people × start), nobody below zero, the ledger audit
passes. ``bench/run_wallets.sh`` runs it; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from potluck.benchmarks.ledger import (
    Figure,
    Progress,
    SilentProgress,
    free_port,
    fresh_database,
    machine_info,
    postgres_reachable,
    run_threads,
    summarise,
)

CURRENCY = "EUR"
START = 1_000_000
TARGET_PER_SECOND = 300
TARGET_P99_MS = 100.0
PERMISSIVE_RISK = {
    "POTLUCK_RISK_VELOCITY_10M_COUNT": "1000000",
    "POTLUCK_RISK_VELOCITY_24H_COUNT": "1000000",
    "POTLUCK_RISK_VELOCITY_24H_AMOUNT": "1000000000000",
    "POTLUCK_RISK_FAN_IN_SENDERS": "1000000",
}


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["postgresql"])
    people: int = 200
    payments: int = 3000
    clients: int = 16
    workers: int = 2

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        return cls(**{"people": 10, "payments": 40, "clients": 2, "workers": 1, **overrides})


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "target": {"per_second": TARGET_PER_SECOND, "p99_ms": TARGET_P99_MS},
            "figures": [asdict(f) for f in self.figures],
            "outcomes": self.outcomes,
            "checks": self.checks,
            "skipped": self.skipped,
        }


def _app(url: str) -> Any:
    from potluck.bootstrap import bootstrap
    from potluck.config import Settings

    return bootstrap(Settings(database_url=url, log_json=False))


def setup(url: str, people: int) -> tuple[list[str], list[str]]:
    """``people`` funded people; returns their ids and bearer tokens."""
    from potluck.identity import tokens
    from potluck.identity.models import User
    from potluck.identity.service import signing_key
    from potluck.ids import new_id
    from potluck.ledger import service as ledger
    from potluck.wallets import service as wallets

    app = _app(url)
    try:
        now = datetime.now(UTC)
        ids = [new_id("usr") for _ in range(people)]
        with app.db.transaction() as s:
            s.execute(
                insert(User),
                [
                    {
                        "id": user_id,
                        "email": f"payer{i}@bench.example",
                        "name": f"Payer {i}",
                        "password_hash": "!",  # never signs in: a token is issued below
                        "role": "user",
                        "created_at": now - timedelta(days=365),
                    }
                    for i, user_id in enumerate(ids)
                ],
            )
            source = ledger.create_account(s, currency=CURRENCY, code="bench_funding", now=now)
            ops = [
                ledger.NewTransfer(
                    debit_account_id=source.id,
                    credit_account_id=wallets.wallet_account(
                        s, user_id=user_id, currency=CURRENCY, now=now
                    ),
                    amount=START,
                )
                for user_id in ids
            ]
            for start in range(0, len(ops), 1000):
                ledger.create_transfers(s, ops[start : start + 1000], now=now)
        key = signing_key(app)
        bearer = [
            tokens.encode_access_token(key=key, user_id=u, now=now, ttl_seconds=6 * 3600)
            for u in ids
        ]
    finally:
        app.db.dispose()
    return ids, bearer


def _check(url: str, people: int) -> str:
    from potluck.ledger import service as ledger
    from potluck.wallets.models import WalletAccount

    app = _app(url)
    try:
        with app.db.read() as s:
            accounts = s.execute(select(WalletAccount.account_id)).scalars().all()
            views = [ledger.get_account(s, a) for a in accounts]
            report = ledger.audit(s)
    finally:
        app.db.dispose()
    total = sum(v.total for v in views)
    if total != people * START:
        raise RuntimeError(f"wallets hold {total}, want {people * START}")
    if min(v.available for v in views) < 0:
        raise RuntimeError("a wallet is below zero")
    if not report.ok:
        raise RuntimeError("ledger audit failed: " + "; ".join(report.problems[:5]))
    return "money conserved, nobody below zero, audit ok"


def bench_payments(
    backend: str, url: str, opts: Options, progress: Progress
) -> tuple[Figure, dict[str, int], str]:
    import httpx

    from potluck.benchmarks.sharing import potluck_server

    ids, bearer = setup(url, opts.people)
    rng = random.Random(11)
    plan = []
    for n in range(opts.payments):
        payer, payee = rng.sample(range(opts.people), 2)
        plan.append((n, payer, ids[payee], rng.randint(1, 2_000)))
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    local = threading.local()
    server = potluck_server(url, port=free_port(), workers=opts.workers, settings=PERMISSIVE_RISK)
    with server as base:

        def client() -> httpx.Client:
            c = getattr(local, "client", None)
            if c is None:
                c = local.client = httpx.Client(base_url=base, timeout=30)
            return c

        def pay(op: tuple[int, int, str, int]) -> str:
            n, payer, to, amount = op
            r = client().post(
                "/v1/wallet/transfers",
                json={"to": to, "amount": amount, "currency": CURRENCY},
                headers={
                    "Authorization": f"Bearer {bearer[payer]}",
                    "Idempotency-Key": f"bench-{n}",
                },
            )
            with lock:
                statuses[r.status_code] += 1
            if r.status_code in (201, 202):
                return "ok"
            if r.status_code in (402, 403):
                return "refused"
            return "error"

        # A few requests first: connections, caches and the first wallets' pages are warm.
        for op in plan[: min(10, len(plan))]:
            pay((op[0] + opts.payments, op[1], op[2], 1))
        statuses.clear()
        advance = progress.start(f"{backend}: wallet payments over HTTP", opts.payments)
        seconds, latencies, counts = run_threads(plan, opts.clients, pay, advance)
    check = _check(url, opts.people)
    figure = summarise(
        system="potluck",
        backend=backend,
        scenario="http-wallet-payments",
        clients=opts.clients,
        operations=opts.payments,
        seconds=seconds,
        latencies=latencies,
        refused=counts["refused"],
        errors=counts["error"],
        note=f"{opts.people} people, serve --workers {opts.workers}, risk scoring on, "
        "Idempotency-Key on every request",
    )
    return figure, {str(k): v for k, v in sorted(statuses.items())}, check


def run(opts: Options, progress: Progress | None = None) -> Report:
    progress = progress or SilentProgress()
    report = Report(machine=machine_info())
    report.machine["load_average_at_start"] = _load()
    for backend in opts.backends:
        if backend == "postgresql" and (why := postgres_reachable()):
            report.skipped.append(why)
            continue
        with fresh_database(backend) as url:
            figure, outcomes, check = bench_payments(backend, url, opts, progress)
        report.figures.append(figure)
        report.outcomes[backend] = outcomes
        report.checks.append(f"{backend}: {check}")
    report.machine["load_average_at_end"] = _load()
    return report


def _load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "?"


def ok(figure: Figure) -> bool:
    return (
        figure.per_second >= TARGET_PER_SECOND
        and figure.p99_ms is not None
        and figure.p99_ms < TARGET_P99_MS
    )
