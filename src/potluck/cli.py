"""The ``potluck`` command line (Typer + Rich)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from potluck.config import get_settings

app = typer.Typer(
    help="Potluck: multi-party payments on one double-entry ledger.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
platforms_app = typer.Typer(help="Platforms and their API keys.", no_args_is_help=True)
users_app = typer.Typer(help="People.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(platforms_app, name="platforms")
app.add_typer(users_app, name="users")

console = Console()
err = Console(stderr=True)


def _mount_bench() -> None:
    try:
        from potluck.benchmarks.cli import bench_app
    except ImportError:  # pragma: no cover - the benchmark package is optional at runtime
        return
    app.add_typer(bench_app, name="bench", help="Benchmarks (figures in docs/benchmarks.md).")


_mount_bench()


def _mount_products() -> None:
    from potluck.analytics.cli import analytics_app
    from potluck.bus.status import status_command
    from potluck.payments.cli import reconcile_app
    from potluck.risk.cli import risk_app
    from potluck.sharing.cli import fx_app, import_app
    from potluck.wallets.cli import wallets_app

    app.add_typer(fx_app, name="fx")
    app.add_typer(import_app, name="import")
    app.add_typer(reconcile_app, name="reconcile")
    app.command("status")(status_command)
    app.add_typer(wallets_app, name="wallets")
    app.add_typer(risk_app, name="risk")
    app.add_typer(analytics_app, name="analytics")


_mount_products()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="API processes (stateless).")] = 1,
    embedded_workers: Annotated[
        bool | None,
        typer.Option(
            "--embedded-workers/--no-embedded-workers",
            help="Run the relay and event workers inside the API process "
            "(default: POTLUCK_EMBEDDED_WORKERS, true).",
        ),
    ] = None,
) -> None:
    """Serve the API (and, in embedded mode, the relay and workers in the same process)."""
    import uvicorn

    from potluck.api.observability import configure_logging

    settings = get_settings()
    configure_logging(settings)
    if embedded_workers is not None:
        os.environ["POTLUCK_EMBEDDED_WORKERS"] = "true" if embedded_workers else "false"
    if "POTLUCK_PUBLIC_BASE_URL" not in os.environ:
        # Hosted payment links point at this server unless a public address is configured.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["POTLUCK_PUBLIC_BASE_URL"] = f"http://{shown}:{port}"
        get_settings.cache_clear()  # the app factory reads the settings again
    console.print(
        f"Potluck on http://{host}:{port}  (database: {_redact(settings.database_url)}, "
        f"transport: {settings.transport})",
        soft_wrap=True,
    )
    uvicorn.run(
        "potluck.api.asgi:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        # Behind a load balancer every caller would share its address (and so one sign-in
        # rate limit) unless the proxy is trusted to say who the client is.
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database (./potluck.db unless POTLUCK_DATABASE_URL is set)."""
    from potluck.migrate import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    console.print(f"[green]Database at {_redact(url)} is at revision {revision}.[/green]")


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the loop finishes its round and the process exits."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


@app.command()
def relay() -> None:
    """Move due outbox events to the transport until stopped (SIGTERM/SIGINT).

    Several relays may run at once: on PostgreSQL each takes its rows with SKIP LOCKED.
    """
    from potluck.api.observability import configure_logging
    from potluck.bootstrap import bootstrap

    potluck = bootstrap()
    configure_logging(potluck.settings)
    console.print(f"relay: {_redact(potluck.settings.database_url)}", soft_wrap=True)
    from potluck.bus.status import HeartbeatWriter

    with HeartbeatWriter(potluck, "relay"):  # `potluck status` lists it
        potluck.bus.run_relay(_stop_on_signals())


@app.command()
def worker(
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            help="A service to consume (repeat for several): e.g. splitter, wallets, payouts, "
            "webhooks, ledger, maintenance.",
        ),
    ] = None,
    list_services: Annotated[
        bool,
        typer.Option("--list", help="Print every service a worker can run, one a line; exit."),
    ] = False,
) -> None:
    """Apply one pool's events (and run its pollers) until stopped (SIGTERM/SIGINT).

    Run any number of replicas per service; they share the service's queue.
    """
    from potluck import maintenance
    from potluck.api.observability import configure_logging
    from potluck.bootstrap import bootstrap, register_handlers
    from potluck.bus.registry import HandlerRegistry
    from potluck.payouts import worker as payouts_worker

    if list_services:  # from the handler registry; needs no database
        registry = HandlerRegistry()
        register_handlers(registry)
        for name in registry.services():
            typer.echo(name)
        return
    if not service:
        err.print("give at least one --service (see `potluck worker --list`)")
        raise typer.Exit(code=2)
    potluck = bootstrap()
    configure_logging(potluck.settings)
    known = potluck.registry.services()
    unknown = [s for s in service if s not in known]
    if unknown:
        err.print(f"unknown service {', '.join(unknown)}; known: {', '.join(known)}")
        raise typer.Exit(code=2)
    # The self-renewing timers need a first link; any worker of their service makes it.
    if maintenance.SERVICE in service:
        maintenance.ensure_scheduled(potluck)
    if "payouts" in service:
        payouts_worker.ensure_recovery_scheduled(potluck)
    if "payments" in service:
        from potluck.payments import reconcile as payments_reconcile

        payments_reconcile.ensure_scheduled(potluck)
    if "wallets" in service:
        from potluck.wallets import settlement as merchant_settlement

        merchant_settlement.ensure_scheduled(potluck)
    console.print(f"worker: {', '.join(service)}", soft_wrap=True)
    from potluck.bus.status import HeartbeatWriter

    with HeartbeatWriter(potluck, "worker", service):  # `potluck status` lists it
        potluck.bus.run_worker(list(service), _stop_on_signals())


@app.command()
def demo() -> None:
    """Load demo data (idempotent): a person, a platform, transfers, orders split, a payout."""
    from potluck.bootstrap import bootstrap
    from potluck.demo import load_demo

    potluck = bootstrap()
    result = load_demo(potluck)
    potluck.bus.drain()
    console.print("[bold]Demo data[/bold]")
    for key, value in result.items():
        # soft_wrap: keys and ids must stay on one line so they can be copied
        console.print(f"  {key}: {value}", soft_wrap=True, highlight=False)


@ledger_app.command("audit")
def ledger_audit() -> None:
    """Check that debits equal credits in every ledger and every account matches its entries."""
    from potluck.bootstrap import bootstrap
    from potluck.ledger.service import audit

    potluck = bootstrap()
    with potluck.db.read() as s:
        report = audit(s)
    console.print(
        f"ledgers: {report.ledgers}  accounts: {report.accounts}  "
        f"transfers: {report.transfers}  entries: {report.entries}"
    )
    if report.ok:
        console.print("[green]audit passed: debits equal credits; totals match entries[/green]")
        return
    err.print(f"[red]audit FAILED: {len(report.problems)} problem(s)[/red]")
    for problem in report.problems:
        err.print(f"  - {problem}")
    raise typer.Exit(code=1)


@platforms_app.command("create")
def platforms_create(name: Annotated[str, typer.Argument(help="The platform's name.")]) -> None:
    """Create a platform and print its secret key (shown once)."""
    from potluck.bootstrap import bootstrap
    from potluck.identity.service import create_platform

    view, secret = create_platform(bootstrap(), name=name)
    console.print(f"id:         {view.id}")
    console.print(f"name:       {view.name}")
    console.print(f"secret_key: {secret}")
    console.print("[yellow]Store the secret key now: it is not shown again.[/yellow]")


@users_app.command("promote")
def users_promote(
    email: Annotated[str, typer.Argument(help="The person's email.")],
    role: Annotated[str, typer.Option(help="Role to give.")] = "admin",
) -> None:
    """Give a person a role (e.g. admin, for reviewers)."""
    from potluck.bootstrap import bootstrap
    from potluck.identity.service import promote_user

    promote_user(bootstrap(), email=email, role=role)
    console.print(f"{email} is now {role}")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


def main() -> None:
    from potluck.errors import DomainError

    try:
        app()
    except DomainError as exc:  # a refusal is a message for the operator, not a traceback
        err.print(f"[red]error:[/red] {exc.message} ({exc.code})", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
