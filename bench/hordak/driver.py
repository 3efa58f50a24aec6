"""django-hordak doing the benchmark's single transfers (run in bench/.venv-hordak).

Reads the plan written by potluck.benchmarks.ledger (accounts and (debit, credit, amount)
transfers), migrates a fresh database, creates the accounts, funds the wallets, then runs the
transfers with 1 and N client threads, one transaction per transfer. Prints "+N" lines as it
goes and writes [{clients, operations, seconds, latencies, refused, errors}] to --out.

Modes:
- checked (default): the same rules as Potluck: lock both accounts (SELECT ... FOR UPDATE, in
  ascending id order) and refuse a debit that would take a flagged wallet below zero, using
  hordak's own balance (Account.get_simple_balance()), then Account.transfer_to().
- plain: Account.transfer_to() alone (no lock, no balance check): hordak's fastest path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--mode", choices=["checked", "plain"], default="checked")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ["BENCH_DATABASE_URL"] = args.database_url

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from djmoney.money import Money
    from hordak.models import Account

    call_command("migrate", verbosity=0)
    plan = json.loads(Path(args.plan).read_text())

    def money(minor: int) -> Money:
        return Money(Decimal(minor) / 100, "EUR")

    # Liability-type accounts: credit raises the balance, debit lowers it, as for a wallet
    # that the platform owes to its owner (the same convention as Potluck's ledger).
    accounts = []
    with transaction.atomic():
        for spec in plan["accounts"]:
            accounts.append(
                Account.objects.create(
                    name=spec["key"], type=Account.TYPES.liability, currencies=["EUR"]
                )
            )
    clearing = accounts[0]
    with transaction.atomic():
        for account, spec in zip(accounts, plan["accounts"], strict=True):
            if spec["funding"]:
                # transfer_to credits self and debits to_account: credit the wallet.
                account.transfer_to(clearing, money(spec["funding"]))
    flagged = {a.pk for a, spec in zip(accounts, plan["accounts"], strict=True) if spec["flagged"]}
    connection.close()

    class Refused(Exception):
        pass

    def transfer(debit: Account, credit: Account, amount: int) -> None:
        if args.mode == "plain":
            credit.transfer_to(debit, money(amount))
            return
        with transaction.atomic():
            ids = sorted({debit.pk, credit.pk})
            list(Account.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
            if debit.pk in flagged:
                balance = debit.get_simple_balance()
                if balance["EUR"].amount < money(amount).amount:
                    raise Refused
            credit.transfer_to(debit, money(amount))

    rows = []
    for clients in [int(c) for c in args.clients.split(",")]:
        row = measure(
            plan["transfers"],
            clients,
            lambda d, c, a: transfer(accounts[d], accounts[c], a),
            Refused,
        )
        row["note"] = f"django-hordak 2.0.0, mode {args.mode}"
        rows.append(row)
    Path(args.out).write_text(json.dumps(rows))


def measure(ops: list, clients: int, transfer, refused_error: type[Exception]) -> dict:
    """Run ``ops`` from ``clients`` threads, one transaction per transfer."""
    from django.db import connections

    latencies: list[list[float]] = [[] for _ in range(clients)]
    outcome = [{"refused": 0, "errors": 0} for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    first_error: list[str] = []

    def client(index: int) -> None:
        mine = ops[index::clients]
        lat, out = latencies[index], outcome[index]
        barrier.wait()
        for n, (d, c, amount) in enumerate(mine, 1):
            t0 = time.perf_counter()
            try:
                transfer(d, c, amount)
            except refused_error:
                out["refused"] += 1
            except Exception as exc:
                out["errors"] += 1
                if not first_error:
                    first_error.append(repr(exc))
                    print(f"first error: {exc!r}", file=sys.stderr, flush=True)
            lat.append(time.perf_counter() - t0)
            if n % 25 == 0:
                with lock:
                    print("+25", flush=True)
        with lock:
            print(f"+{len(mine) % 25}", flush=True)
        connections.close_all()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "operations": len(ops),
        "seconds": elapsed,
        "latencies": [x for lat in latencies for x in lat],
        "refused": sum(o["refused"] for o in outcome),
        "errors": sum(o["errors"] for o in outcome),
    }


if __name__ == "__main__":
    main()
