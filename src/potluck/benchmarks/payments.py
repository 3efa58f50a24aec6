"""Payments benchmark: provider webhooks handled per second, on SQLite and PostgreSQL.

Setup (not timed): ``intents`` payment intents on the sandbox provider, all paying into one
escrow account. Then ``clients`` threads each take their share and, per intent:

- **webhook**: sign a ``payment.succeeded`` event the way the sandbox does (HMAC-SHA256,
  ``Sandbox-Signature``), then the whole receiving path of ``POST /v1/webhooks/sandbox``
  (``receive_webhook``): verify the signature on the raw body, store the event once, lock
  the intent, apply the transition, post the ledger transfer (clearing → escrow) and publish
  ``payment.succeeded`` — one transaction per webhook;
- **webhook-duplicate**: the same signed events again (a provider retrying): verify, find the
  event already stored, do nothing.

Checked after each run: every intent succeeded, the escrow holds the sum of the amounts, one
ledger transfer and one event per intent, and the ledger audit passes. In-process (no HTTP):
the figure is the webhook path itself. ``bench/run_payments.sh`` runs it; figures in
docs/benchmarks.md (target ≥ 500 webhooks/s).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from potluck.api.observability import configure_logging
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
from potluck.bus.models import OutboxEvent
from potluck.config import Settings
from potluck.db import Database, make_engine
from potluck.ledger import service as ledger
from potluck.payments import service as payments
from potluck.payments.providers.sandbox import sandbox_of
from potluck.payments.webhooks import receive_webhook

CURRENCY = "EUR"
TARGET_PER_SECOND = 500


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgresql"])
    intents: int = 2000
    clients: int = 4
    seed: int = 11

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        return cls(**{"intents": 40, **overrides})


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "target_per_second": TARGET_PER_SECOND,
            "figures": [asdict(f) for f in self.figures],
            "checks": self.checks,
            "skipped": self.skipped,
        }


def _app(url: str) -> Potluck:
    settings = Settings(
        database_url=url,
        secret_key=secrets.token_urlsafe(48),
        log_json=False,
        log_level="WARNING",
    )
    # Production logs one line per webhook at INFO; the figure is the handling, not a terminal.
    configure_logging(settings)
    return bootstrap(settings, db=Database(make_engine(url, pool_size=32)))


def _setup(app: Potluck, opts: Options) -> tuple[str, list[tuple[str, str, int]]]:
    """The escrow and ``(intent id, sandbox ref, amount)`` per intent."""
    rng = random.Random(opts.seed)
    now = app.clock.now()
    with app.db.transaction() as s:
        escrow = ledger.create_account(
            s,
            currency=CURRENCY,
            code="escrow",
            now=now,
            flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
        ).id
    intents: list[tuple[str, str, int]] = []
    for start in range(0, opts.intents, 200):
        with app.db.transaction() as s:
            for _ in range(start, min(start + 200, opts.intents)):
                view = payments.create_intent(
                    s,
                    app,
                    amount=rng.randint(100, 50_000),
                    currency=CURRENCY,
                    purpose="group_order",
                    destination_account_id=escrow,
                    now=now,
                )
                assert view.provider_ref is not None
                intents.append((view.id, view.provider_ref, view.amount))
    return escrow, intents


def _body(event_id: str, ref: str, amount: int, created: int) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "created": created,
            "data": {"intent": ref, "amount": amount, "currency": CURRENCY},
        },
        separators=(",", ":"),
    ).encode()


def bench_webhooks(backend: str, url: str, opts: Options, progress: Progress) -> list[Figure]:
    app = _app(url)
    escrow, intents = _setup(app, opts)
    sandbox = sandbox_of(app)
    created = int(app.clock.now().timestamp())
    bodies = [
        _body(f"sbxevt_bench_{i}", ref, amt, created) for i, (_, ref, amt) in enumerate(intents)
    ]
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def deliver(body: bytes) -> str:
        headers = sandbox.sign(body, now=app.clock.now())
        result = receive_webhook(app, "sandbox", body, headers)
        with lock:
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        return "ok"

    figures = []
    for scenario in ("webhook", "webhook-duplicate"):
        advance = progress.start(f"{backend}: {scenario}", len(bodies))
        started, cpu_started = time.perf_counter(), time.process_time()
        _, latencies, counts = run_threads(bodies, opts.clients, deliver, advance)
        elapsed = time.perf_counter() - started
        # CPU seconds of this process (Python, and SQLite itself; not the PostgreSQL server):
        # what one free core would do, whatever else the machine is running.
        cpu = time.process_time() - cpu_started
        per_cpu_second = f"{len(bodies) / cpu:,.0f}" if cpu > 0 else "-"
        what = (
            "sign + verify + store + transition + ledger + outbox"
            if scenario == "webhook"
            else "sign + verify + already stored"
        )
        figures.append(
            summarise(
                system="potluck",
                backend=backend,
                scenario=scenario,
                clients=opts.clients,
                operations=len(bodies),
                seconds=elapsed,
                latencies=latencies,
                refused=counts["refused"],
                errors=counts["error"],
                note=f"{what}; {per_cpu_second} per CPU-second of the benchmark process",
            )
        )
    _check(app, escrow, intents, outcomes)
    app.db.engine.dispose()
    return figures


def _check(
    app: Potluck, escrow: str, intents: list[tuple[str, str, int]], outcomes: dict[str, int]
) -> None:
    n = len(intents)
    if outcomes.get("applied") != n or outcomes.get("duplicate") != n:
        raise RuntimeError(f"unexpected webhook outcomes: {outcomes}")
    with app.db.read() as s:
        held = ledger.get_account(s, escrow).total
        events = s.scalar(select(func.count()).where(OutboxEvent.type == "payment.succeeded"))
        report = ledger.audit(s)
    if held != sum(amount for _, _, amount in intents):
        raise RuntimeError(f"escrow holds {held}, intents were {sum(a for _, _, a in intents)}")
    if events != n:
        raise RuntimeError(f"{events} payment.succeeded events for {n} intents")
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
            report.figures += bench_webhooks(backend, url, opts, progress)
        report.checks.append(
            f"{backend}: every intent succeeded once (one transfer, one event), escrow == "
            "sum of amounts, duplicates did nothing, audit ok"
        )
    report.machine["load_average_at_end"] = os.getloadavg()
    return report
