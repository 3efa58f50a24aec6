"""Payouts benchmark: payouts created (held) per second, and processed (sent to the simulated
bank and recorded) per second, on a fresh SQLite file or PostgreSQL database.

``python -m potluck.benchmarks.payouts [--backend sqlite|postgresql] [--payouts N] [--workers W]``
prints one JSON object. Nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from potluck.benchmarks.ledger import fresh_database
from potluck.bootstrap import Potluck, bootstrap
from potluck.config import Settings
from potluck.db import Database, make_engine
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.payouts import service, states, worker
from potluck.payouts.models import Payout

IBAN = "DE89370400440532013000"


def _app(url: str, **overrides: Any) -> Potluck:
    settings = Settings(
        database_url=url,
        secret_key=secrets.token_urlsafe(48),
        log_json=False,
        log_level="WARNING",
        **overrides,
    )
    return bootstrap(settings, db=Database(make_engine(url, pool_size=32)))


def _setup(app: Potluck, parties: int, funds: int) -> tuple[str, list[tuple[str, str]]]:
    platform, _ = create_platform(app, name="Bench")
    scope = f"platform:{platform.id}"
    out = []
    now = app.clock.now()
    with app.db.transaction() as s:
        funding = ledger.create_account(
            s, currency="EUR", code="bench_funding", now=now, book=scope, scope=scope
        )
        for i in range(parties):
            party = marketplace.create_party(
                s, platform_id=platform.id, name=f"P{i}", kind="merchant", currency="EUR", now=now
            )
            ledger.create_transfer(
                s,
                ledger.NewTransfer(funding.id, party.wallet_account_id, funds),
                now=now,
                scope=scope,
            )
            account = service.add_bank_account(
                s,
                platform_id=platform.id,
                party_id=party.id,
                holder_name=f"P{i}",
                account_number=IBAN,
                routing_type="iban",
                routing_value=None,
                now=now,
            )
            out.append((party.id, account.id))
    return platform.id, out


def bench(
    backend: str = "sqlite", *, payouts: int = 500, workers: int = 2, clients: int = 4
) -> dict[str, Any]:
    with fresh_database(backend) as url:
        app = _app(url, payout_batch_size=50)
        parties = max(clients, 10)
        platform_id, targets = _setup(app, parties, funds=payouts * 100)

        def create(i: int) -> None:
            party_id, account_id = targets[i % len(targets)]
            with app.db.transaction() as s:
                service.create_payout(
                    s,
                    platform_id=platform_id,
                    party_id=party_id,
                    bank_account_id=account_id,
                    amount=50 + i % 50,
                    currency="EUR",
                    now=app.clock.now(),
                )

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(create, range(payouts)))
        create_seconds = time.perf_counter() - started

        stop = threading.Event()

        def work() -> None:
            while not stop.is_set():
                if worker.send_due_payouts(app) == 0:
                    stop.wait(0.01)

        def completed() -> int:
            with app.db.read() as s:
                return int(
                    s.scalar(
                        select(func.count())
                        .select_from(Payout)
                        .where(Payout.status == states.COMPLETED)
                    )
                    or 0
                )

        started = time.perf_counter()
        threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 600
        while completed() < payouts and time.monotonic() < deadline:
            time.sleep(0.05)
        process_seconds = time.perf_counter() - started
        stop.set()
        for t in threads:
            t.join()
        done = completed()
        with app.db.read() as s:
            audit_ok = ledger.audit(s).ok
        app.db.dispose()
    return {
        "backend": backend,
        "payouts": payouts,
        "clients": clients,
        "workers": workers,
        "created_per_second": round(payouts / create_seconds, 1),
        "processed_per_second": round(done / process_seconds, 1),
        "completed": done,
        "ledger_audit_ok": audit_ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--payouts", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    result = bench(args.backend, payouts=args.payouts, workers=args.workers, clients=args.clients)
    print(json.dumps(result))
    return 0 if result["completed"] == args.payouts and result["ledger_audit_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
