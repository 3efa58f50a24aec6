"""``potluck bench ledger``: the ledger benchmark with a Rich progress bar and results table."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from potluck.benchmarks import ledger as bench

bench_app = typer.Typer(help="Benchmarks (figures in docs/benchmarks.md).", no_args_is_help=True)
# Wide enough for the results table when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 150)


@bench_app.callback()
def bench_group() -> None:
    """Benchmarks (figures in docs/benchmarks.md)."""


# Every bench command's ``--json`` option.
JsonPath = Annotated[
    Path | None, typer.Option("--json", help="Write the figures as JSON to this path.")
]


class Backend(StrEnum):
    sqlite = "sqlite"
    postgresql = "postgresql"
    all = "all"


def backends_of(backend: Backend) -> list[str]:
    """The database(s) a ``--backend`` option names."""
    return ["sqlite", "postgresql"] if backend is Backend.all else [backend.value]


def print_checks(report: Any) -> None:
    """The report's correctness checks that passed and the parts it skipped (and why)."""
    for check in report.checks:
        console.print(f"[green]checked[/] {check}")
    for reason in report.skipped:
        console.print(f"[yellow]skipped[/] {reason}")


def print_load(machine: dict[str, Any]) -> None:
    """The machine the figures were measured on and its load average before and after."""
    console.print(
        f"machine: {machine.get('cpu')} x{machine.get('cores')}, load average "
        f"{machine.get('load_average_at_start')} -> {machine.get('load_average_at_end')}"
    )


def write_figures(report: Any, json_path: Path | None) -> None:
    """With ``--json``: the report's figures as JSON at that path."""
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"figures written to {json_path}")


class RichProgress:
    """The benchmark's progress, one bar per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def start(self, description: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(description, total=total)

        def advance(n: int) -> None:
            if n:
                self.progress.advance(task, n)

        return advance

    def log(self, message: str) -> None:
        self.progress.console.log(message)


@contextmanager
def _progress(*, percent: bool = False) -> Iterator[RichProgress]:
    """The progress bar every benchmark command shows while it runs."""
    columns: list[ProgressColumn] = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if percent:
        columns.append(TaskProgressColumn())
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        yield RichProgress(progress)


def results_table(report: bench.Report) -> Table:
    table = Table(title="Ledger benchmark", show_lines=False)
    for name, justify in (
        ("system", "left"),
        ("backend", "left"),
        ("scenario", "left"),
        ("clients", "right"),
        ("ops", "right"),
        ("seconds", "right"),
        ("per second", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("refused/errors", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in report.figures:
        table.add_row(
            f.system,
            f.backend,
            f.scenario,
            str(f.clients),
            f"{f.operations:,}",
            f"{f.seconds:.2f}",
            f"{f.per_second:,.0f}",
            "-" if f.p50_ms is None else f"{f.p50_ms:.2f}",
            "-" if f.p99_ms is None else f"{f.p99_ms:.2f}",
            f"{f.refused}/{f.errors}",
        )
    return table


def targets_table(report: bench.Report) -> Table:
    table = Table(title="Targets (foundation issue)")
    table.add_column("target")
    table.add_column("wanted")
    table.add_column("measured")
    table.add_column("result")
    for t in report.targets:
        verdict = (
            "reported"
            if t.reported
            else "[yellow]not measured[/]"
            if t.ok is None
            else ("[green]PASS[/]" if t.ok else "[red]MISS[/]")
        )
        table.add_row(t.name, t.wanted, t.measured, verdict)
    return table


@bench_app.command("ledger")
def ledger_command(
    backend: Annotated[Backend, typer.Option(help="Database(s) to measure.")] = Backend.all,
    transfers: Annotated[
        int, typer.Option(help="Transfers per single-transfer scenario (and per HTTP run).")
    ] = 10_000,
    clients: Annotated[int, typer.Option(help="Concurrent clients (threads).")] = 16,
    batches: Annotated[int, typer.Option(help="Batches of 1,000 transfers.")] = 50,
    accounts: Annotated[int, typer.Option(help="Accounts in the workload.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for accounts and random pairs.")] = 42,
    pgbench_seconds: Annotated[int, typer.Option(help="Duration of pgbench -N.")] = 15,
    quick: Annotated[bool, typer.Option(help="Small counts (CI / smoke).")] = False,
    skip_hordak: Annotated[bool, typer.Option(help="Skip the django-hordak reference.")] = False,
    skip_pgbench: Annotated[bool, typer.Option(help="Skip the pgbench -N reference.")] = False,
    skip_http: Annotated[bool, typer.Option(help="Skip HTTP POST /v1/transfers.")] = False,
    json_path: JsonPath = None,
) -> None:
    """Transfers/s and p50/p99 for single, batched and HTTP transfers, with references."""
    backends = backends_of(backend)
    common: dict[str, Any] = {
        "backends": backends,
        "clients": clients,
        "accounts": accounts,
        "seed": seed,
        "hordak": not skip_hordak,
        "pgbench": not skip_pgbench,
        "http": not skip_http,
    }
    if quick:
        opts = bench.Options.quick(**common)
    else:
        opts = bench.Options(
            transfers=transfers,
            http_transfers=transfers,
            batches=batches,
            pgbench_seconds=pgbench_seconds,
            **common,
        )
    with _progress(percent=True) as progress:
        report = bench.run(opts, progress)
    console.print(results_table(report))
    console.print(targets_table(report))
    for reason in report.skipped:
        console.print(f"[yellow]skipped[/] {reason}")
    m = report.machine
    console.print(
        f"machine: {m.get('cpu')} x{m.get('cores')}, {m.get('memory')}, PostgreSQL "
        f"{m.get('postgresql', '?')}, SQLite {m.get('sqlite')}, load average "
        f"{m.get('load_average_at_start')} -> {m.get('load_average_at_end')}"
    )
    write_figures(report, json_path)


def marketplace_table(report: Any) -> Table:
    table = Table(title="Marketplace and payouts benchmark")
    for name in ("backend", "scenario", "clients", "ops", "seconds", "per second", "note"):
        table.add_column(name)
    for f in report.figures:
        table.add_row(
            f.backend,
            f.scenario,
            str(f.clients),
            f"{f.operations:,}",
            f"{f.seconds:.2f}",
            f"{f.per_second:,.0f}",
            f.note,
        )
    return table


@bench_app.command("marketplace")
def marketplace_command(
    backend: Annotated[Backend, typer.Option(help="Database(s) to measure.")] = Backend.all,
    orders: Annotated[int, typer.Option(help="Orders to record and split.")] = 3000,
    payouts: Annotated[int, typer.Option(help="Payouts to process.")] = 2000,
    clients: Annotated[int, typer.Option(help="Threads recording orders.")] = 4,
    bus_threads: Annotated[
        int, typer.Option(help="Threads relaying and working (PostgreSQL; SQLite uses 1).")
    ] = 2,
    bus_processes: Annotated[
        int,
        typer.Option(help="PostgreSQL: relay and work in this many processes instead (0: off)."),
    ] = 0,
    quick: Annotated[bool, typer.Option(help="Small counts (CI / smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Orders recorded and fully split per second (10 parties each), payouts per second."""
    from potluck.benchmarks import marketplace as mbench

    backends = backends_of(backend)
    common: dict[str, Any] = {
        "backends": backends,
        "clients": clients,
        "bus_threads": bus_threads,
        "bus_processes": bus_processes,
    }
    if quick:
        opts = mbench.Options.quick(**common)
    else:
        opts = mbench.Options(orders=orders, payouts=payouts, **common)
    with _progress() as progress:
        report = mbench.run(opts, progress)
    console.print(marketplace_table(report))
    print_checks(report)
    write_figures(report, json_path)


@bench_app.command("sharing")
def sharing_command(
    backend: Annotated[Backend, typer.Option(help="Database(s) for Potluck.")] = Backend.sqlite,
    ihatemoney: Annotated[
        bool,
        typer.Option(
            "--ihatemoney/--no-ihatemoney",
            help="Measure IHateMoney too (installed into bench/.venv-ihatemoney, gunicorn).",
        ),
    ] = True,
    workers: Annotated[
        int, typer.Option(help="Server processes for both (uvicorn / gunicorn sync workers).")
    ] = 2,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients (threads).")] = 8,
    create_expenses: Annotated[int, typer.Option(help="Expenses POSTed over HTTP.")] = 2_000,
    settle_members: Annotated[int, typer.Option(help="Members, settle scenario.")] = 50,
    settle_expenses: Annotated[int, typer.Option(help="Expenses, settle scenario.")] = 20_000,
    large_members: Annotated[int, typer.Option(help="Members, large scenario.")] = 200,
    large_expenses: Annotated[int, typer.Option(help="Expenses, large scenario.")] = 100_000,
    runs: Annotated[int, typer.Option(help="Repetitions of each Potluck measurement.")] = 10,
    ihm_runs: Annotated[int, typer.Option(help="Repetitions of IHateMoney's settle.")] = 3,
    settle_loader: Annotated[
        str, typer.Option(help="Potluck loader for 50 x 20,000: bulk | service.")
    ] = "bulk",
    large_loader: Annotated[
        str, typer.Option(help="Potluck loader for 200 x 100,000: bulk | service.")
    ] = "bulk",
    pure_only: Annotated[
        bool, typer.Option(help="Only the pure functions (simplify, parse).")
    ] = False,
    quick: Annotated[bool, typer.Option(help="Small counts (smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Expenses over HTTP vs IHateMoney, balances + settle-up, simplify and parse latency."""
    from potluck.benchmarks import sharing

    if pure_only:
        rows = sharing.run_pure(runs=runs)
        table = Table(title="Sharing benchmark (pure functions)")
        for name in ("scenario", "p50 ms", "max ms", "note"):
            table.add_column(name)
        for r in rows:
            table.add_row(r["scenario"], str(r["p50_ms"]), str(r["max_ms"]), r["note"])
        console.print(table)
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps({"pure": rows}, indent=2) + "\n")
        return
    common: dict[str, Any] = {
        "backends": backends_of(backend),
        "ihatemoney": ihatemoney,
        "workers": workers,
        "clients": clients,
        "settle_loader": settle_loader,
        "large_loader": large_loader,
    }
    if quick:
        opts = sharing.Options.quick(**common)
    else:
        opts = sharing.Options(
            create_expenses=create_expenses,
            settle_members=settle_members,
            settle_expenses=settle_expenses,
            large_members=large_members,
            large_expenses=large_expenses,
            runs=runs,
            ihm_runs=ihm_runs,
            **common,
        )
    with _progress() as progress:
        report = sharing.run(opts, progress)
    table = Table(title="Sharing benchmark")
    for name in ("system", "backend", "scenario", "ops", "seconds", "per s", "p50 ms", "p99 ms"):
        table.add_column(name)
    for f in report.figures:
        table.add_row(
            f.system,
            f.backend,
            f.scenario,
            f"{f.operations:,}",
            f"{f.seconds:,.2f}",
            "-" if f.per_second is None else f"{f.per_second:,.0f}",
            "-" if f.p50_ms is None else f"{f.p50_ms:,.2f}",
            "-" if f.p99_ms is None else f"{f.p99_ms:,.2f}",
        )
    console.print(table)
    pure = Table(title="Pure functions")
    for name in ("scenario", "p50 ms", "max ms", "note"):
        pure.add_column(name)
    for r in report.pure:
        pure.add_row(r["scenario"], str(r["p50_ms"]), str(r["max_ms"]), r["note"])
    console.print(pure)
    targets = Table(title="Targets (issue 4)")
    for name in ("target", "wanted", "measured", "result"):
        targets.add_column(name)
    for t in report.targets:
        verdict = (
            "[yellow]not measured[/]"
            if t.ok is None
            else "[green]PASS[/]"
            if t.ok
            else "[red]MISS[/]"
        )
        targets.add_row(t.name, t.wanted, t.measured, verdict)
    console.print(targets)
    print_checks(report)
    print_load(report.machine)
    write_figures(report, json_path)


@bench_app.command("checkout")
def checkout_command(
    backend: Annotated[Backend, typer.Option(help="Database(s) to measure.")] = Backend.all,
    orders: Annotated[int, typer.Option(help="Group orders of 4 members to complete.")] = 300,
    clients: Annotated[int, typer.Option(help="Threads running group orders.")] = 4,
    bus_threads: Annotated[
        int, typer.Option(help="Threads relaying and working (PostgreSQL; SQLite uses 1).")
    ] = 2,
    quick: Annotated[bool, typer.Option(help="Small counts (smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Group orders of 4 members completed end to end per second (sandbox provider)."""
    from potluck.benchmarks import checkout as cbench

    common: dict[str, Any] = {
        "backends": backends_of(backend),
        "clients": clients,
        "bus_threads": bus_threads,
    }
    opts = cbench.Options.quick(**common) if quick else cbench.Options(orders=orders, **common)
    with _progress() as progress:
        report = cbench.run(opts, progress)
    table = Table(title="Checkout benchmark (group orders of 4, end to end)")
    for name in ("backend", "clients", "orders", "seconds", "per second", "p50 ms", "p99 ms"):
        table.add_column(name)
    for f in report.figures:
        table.add_row(
            f.backend,
            str(f.clients),
            f"{f.operations:,}",
            f"{f.seconds:.2f}",
            f"{f.per_second:,.1f}",
            f"{f.p50_ms}",
            f"{f.p99_ms}",
        )
    console.print(table)
    print_checks(report)
    write_figures(report, json_path)


@bench_app.command("payments")
def payments_command(
    backend: Annotated[Backend, typer.Option(help="Database(s) to measure.")] = Backend.all,
    intents: Annotated[int, typer.Option(help="Payment intents (one webhook each).")] = 2000,
    clients: Annotated[int, typer.Option(help="Threads delivering webhooks.")] = 4,
    quick: Annotated[bool, typer.Option(help="Small counts (CI / smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Provider webhooks handled per second (sign, verify, store once, transition, ledger)."""
    from potluck.benchmarks import payments as pbench

    backends = backends_of(backend)
    if quick:
        opts = pbench.Options.quick(backends=backends, clients=clients)
    else:
        opts = pbench.Options(backends=backends, intents=intents, clients=clients)
    with _progress() as progress:
        report = pbench.run(opts, progress)
    table = Table(title=f"Payments webhooks (target ≥ {pbench.TARGET_PER_SECOND}/s)")
    for name in ("backend", "scenario", "clients", "webhooks", "seconds", "per second"):
        table.add_column(name, justify="left" if name in ("backend", "scenario") else "right")
    for name in ("p50 ms", "p99 ms", "errors", "target"):
        table.add_column(name, justify="right")
    for f in report.figures:
        verdict = "[green]PASS[/]" if f.per_second >= pbench.TARGET_PER_SECOND else "[red]MISS[/]"
        table.add_row(
            f.backend,
            f.scenario,
            str(f.clients),
            f"{f.operations:,}",
            f"{f.seconds:,.2f}",
            f"{f.per_second:,.0f}",
            "-" if f.p50_ms is None else f"{f.p50_ms:,.2f}",
            "-" if f.p99_ms is None else f"{f.p99_ms:,.2f}",
            str(f.errors),
            verdict if f.scenario == "webhook" else "",
        )
    console.print(table)
    for f in report.figures:
        console.print(f"{f.backend} {f.scenario}: {f.note}")
    print_checks(report)
    print_load(report.machine)
    write_figures(report, json_path)


@bench_app.command("wallets")
def wallets_command(
    backend: Annotated[Backend, typer.Option(help="Database(s) to measure.")] = Backend.postgresql,
    people: Annotated[int, typer.Option(help="People paying each other.")] = 200,
    payments: Annotated[int, typer.Option(help="Payments to make over HTTP.")] = 3000,
    clients: Annotated[int, typer.Option(help="Client threads (one httpx client each).")] = 16,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 2,
    quick: Annotated[bool, typer.Option(help="Small counts (smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Wallet payments per second over HTTP with risk scoring (potluck serve in a subprocess)."""
    from potluck.benchmarks import wallets as wbench

    common: dict[str, Any] = {
        "backends": backends_of(backend),
        "clients": clients,
        "workers": workers,
    }
    if quick:
        opts = wbench.Options.quick(backends=common["backends"])
    else:
        opts = wbench.Options(people=people, payments=payments, **common)
    with _progress() as progress:
        report = wbench.run(opts, progress)
    table = Table(
        title=f"Wallet payments over HTTP (target ≥ {wbench.TARGET_PER_SECOND}/s, "
        f"p99 < {wbench.TARGET_P99_MS:g} ms)"
    )
    for name in ("backend", "clients", "payments", "seconds", "per second", "p50 ms", "p99 ms"):
        table.add_column(name)
    for name in ("refused", "errors", "target"):
        table.add_column(name)
    for f in report.figures:
        table.add_row(
            f.backend,
            str(f.clients),
            f"{f.operations:,}",
            f"{f.seconds:,.2f}",
            f"{f.per_second:,.1f}",
            f"{f.p50_ms}",
            f"{f.p99_ms}",
            str(f.refused),
            str(f.errors),
            "[green]PASS[/]" if wbench.ok(f) else "[red]MISS[/]",
        )
    console.print(table)
    for name, outcomes in report.outcomes.items():
        console.print(f"{name} HTTP statuses: {outcomes}")
    print_checks(report)
    print_load(report.machine)
    write_figures(report, json_path)


@bench_app.command("scaling")
def scaling_command(
    orders: Annotated[int, typer.Option(help="Orders per configuration.")] = 2000,
    clients: Annotated[int, typer.Option(help="Threads recording orders.")] = 4,
    config: Annotated[
        list[str] | None,
        typer.Option(help="embedded, rabbitmq-1x, rabbitmq-2x (repeat; default: all three)."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Small counts (CI / smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Distributed mode: orders split per second with 1 vs 2 workers per service (PostgreSQL +
    RabbitMQ, real processes), outbox-to-effect latency, and embedded mode for comparison."""
    from potluck.benchmarks import scaling

    configs = config or list(scaling.CONFIGS)
    unknown = [c for c in configs if c not in scaling.CONFIGS]
    if unknown:
        raise typer.BadParameter(f"unknown configuration {unknown[0]!r}")
    if quick:
        opts = scaling.Options.quick(configs=configs, clients=clients)
    else:
        opts = scaling.Options(configs=configs, orders=orders, clients=clients)
    with _progress() as progress:
        report = scaling.run(opts, progress)
    table = Table(title="Scaling: orders fully split per second")
    for name in ("config", "scenario", "processes", "orders", "seconds", "orders/s"):
        table.add_column(name, justify="left" if name in ("config", "scenario") else "right")
    for name in ("effect p50 ms", "effect p99 ms", "record p50 ms", "note"):
        table.add_column(name, justify="left" if name == "note" else "right")
    for f in report.figures:
        table.add_row(
            f.config,
            f.scenario,
            str(f.processes),
            f"{f.orders:,}",
            f"{f.seconds:,.2f}",
            f"{f.orders_per_second:,.1f}",
            "-" if f.latency_p50_ms is None else f"{f.latency_p50_ms:,.0f}",
            "-" if f.latency_p99_ms is None else f"{f.latency_p99_ms:,.0f}",
            "-" if f.record_p50_ms is None else f"{f.record_p50_ms:,.1f}",
            f.note,
        )
    console.print(table)
    for scenario, ratio in report.ratios.items():
        console.print(f"{scenario}: 2 workers per service / 1 worker per service = {ratio}x")
    print_checks(report)
    write_figures(report, json_path)


@bench_app.command("risk")
def risk_command(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data set.")] = 2,
    users: Annotated[int, typer.Option(help="Normal people in the data set.")] = 400,
    days: Annotated[int, typer.Option(help="Days of payments.")] = 28,
    backend: Annotated[Backend, typer.Option(help="sqlite or postgresql.")] = Backend.sqlite,
    latency_calls: Annotated[int, typer.Option(help="Scoring calls timed without insert.")] = 5000,
    quick: Annotated[bool, typer.Option(help="A tiny data set (CI / smoke).")] = False,
    json_path: JsonPath = None,
) -> None:
    """Fraud rules on a labelled synthetic data set: precision, recall, false positive rate,
    per pattern, and the scoring latency (src/potluck/benchmarks/risk.py)."""
    from potluck.benchmarks import risk as rbench

    if backend is Backend.all:
        raise typer.BadParameter("one backend: sqlite or postgresql")
    common: dict[str, Any] = {"seed": seed, "backend": backend.value}
    if quick:
        opts = rbench.Options.quick(**common)
    else:
        opts = rbench.Options(users=users, days=days, latency_calls=latency_calls, **common)
    with _progress() as progress:
        report = rbench.run(opts, progress)
    console.print(rbench_table(report))
    t = report.thresholds
    console.print(
        f"overall: precision {report.precision:.1%}, recall {report.recall:.1%}, false "
        f"positive rate {report.false_positive_rate:.2%} ({report.false_positives} of "
        f"{report.legit:,} legit flagged); review from {t['review']}, block from {t['block']}"
    )
    console.print(
        f"score_payment (with its insert): p50 {report.score_ms['p50']:.3f} ms, p99 "
        f"{report.score_ms['p99']:.3f} ms; scoring without the insert over "
        f"{report.latency_calls:,} calls: p50 {report.evaluate_ms['p50']:.3f} ms, p99 "
        f"{report.evaluate_ms['p99']:.3f} ms (target p99 < 2 ms); CPU time of those calls: "
        f"p50 {report.evaluate_cpu_ms['p50']:.3f} ms, p99 {report.evaluate_cpu_ms['p99']:.3f} ms "
        f"(load average {report.load_average})"
    )
    for note in report.notes:
        console.print(note)
    write_figures(report, json_path)


def rbench_table(report: Any) -> Table:
    table = Table(title=f"Risk rules on the synthetic set (seed {report.seed}, {report.backend})")
    for name in ("pattern", "payments", "flagged", "blocked", "reviewed", "recall", "precision"):
        table.add_column(name, justify="left" if name == "pattern" else "right")
    for f in report.patterns:
        table.add_row(
            f.pattern,
            f"{f.payments:,}",
            f"{f.flagged:,}",
            f"{f.blocked:,}",
            f"{f.reviewed:,}",
            f"{f.recall:.1%}",
            f"{f.precision:.1%}",
        )
    table.add_row(
        "all fraud",
        f"{report.fraud:,}",
        f"{report.true_positives:,}",
        "",
        "",
        f"{report.recall:.1%}",
        f"{report.precision:.1%}",
    )
    table.add_row(
        "legit",
        f"{report.legit:,}",
        f"{report.false_positives:,}",
        f"{report.legit_blocked:,}",
        f"{report.legit_reviewed:,}",
        "",
        "",
    )
    return table


if __name__ == "__main__":
    bench_app()
