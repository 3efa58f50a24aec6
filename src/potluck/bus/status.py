"""Which workers and relays are alive: heartbeats, `potluck status`, `GET /v1/admin/status`.

Every long-running process (``potluck relay``, ``potluck worker``, each API process of
``potluck serve``) writes a row of ``bus_heartbeats`` every ``heartbeat_interval_seconds``
from a daemon thread: its kind, services, host, pid, start time and counters. A process that
stops cleanly deletes its row; one that dies leaves it behind and the status calls it stale
once its last heartbeat is older than ``heartbeat_stale_seconds``. Rows older than a day are
pruned by the next process that starts.

``collect_status`` is the one report both the command and the endpoint print: database and
broker reachability, the outbox (pending rows, lag of the oldest due one), queue depths per
service, dead letters, and the processes seen. Every part is checked on its own: with the
database away the report still answers (and says so) instead of failing.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
import typer
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from potluck.bus.models import HEARTBEATS, Delivery, Heartbeat, OutboxEvent
from potluck.bus.relay import outbox_stats
from potluck.clock import utc

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()

CHECK_TIMEOUT_SECONDS = 3.0
PRUNE_AFTER = timedelta(days=1)
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"

Counts = Callable[[], Mapping[str, int]]


# ---------------------------------------------------------------- heartbeats


class HeartbeatWriter:
    """Writes this process's heartbeat row now and then, from a daemon thread.

    ``counts`` returns the process's counters (``published``, ``processed``, ``errors``);
    by default the bus's own (``Bus.counts``). A failed write (the database is away) is
    logged and tried again at the next interval: heartbeats never stop the process.
    """

    def __init__(
        self,
        app: Potluck,
        kind: str,
        services: Sequence[str] = (),
        *,
        counts: Counts | None = None,
        interval: float | None = None,
    ) -> None:
        self.app = app
        self.kind = kind
        self.services = ",".join(services)
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.id = f"{kind}:{self.host}:{self.pid}:{secrets.token_hex(4)}"[:200]
        self.started_at = app.clock.now()
        self.counts: Counts = counts if counts is not None else (lambda: app.bus.counts)
        self.interval = app.settings.heartbeat_interval_seconds if interval is None else interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def beat(self) -> None:
        """Insert or refresh this process's row (one statement)."""
        now = self.app.clock.now()
        counts = self.counts()
        values = {
            "kind": self.kind,
            "services": self.services,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "last_seen_at": now,
            "published": int(counts.get("published", 0)),
            "processed": int(counts.get("processed", 0)),
            "errors": int(counts.get("errors", 0)),
        }
        insert = postgresql.insert if self.app.db.dialect == "postgresql" else sqlite.insert
        stmt = insert(HEARTBEATS).values(id=self.id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={k: v for k, v in values.items() if k not in ("kind", "host", "pid")},
        )
        with self.app.db.transaction() as session:
            session.execute(stmt)

    def prune(self) -> int:
        """Delete the rows of processes not seen for a day; returns how many."""
        cutoff = self.app.clock.now() - PRUNE_AFTER
        with self.app.db.transaction() as session:
            result = session.execute(delete(Heartbeat).where(Heartbeat.last_seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    def remove(self) -> None:
        """Delete this process's row (a clean stop is not a stale process)."""
        with self.app.db.transaction() as session:
            session.execute(delete(Heartbeat).where(Heartbeat.id == self.id))

    def start(self) -> HeartbeatWriter:
        """Write the first heartbeat now (so the process is listed as soon as it runs), then
        every ``interval`` seconds from a daemon thread."""
        if self.interval <= 0 or self._thread is not None:
            return self
        self._stop.clear()
        try:
            self.prune()
        except Exception as exc:
            log.info("bus.heartbeat_prune_failed", error=repr(exc))
        self._beat_logged()
        self._thread = threading.Thread(
            target=self._run, name=f"potluck-heartbeat-{self.kind}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the thread and delete the row (best effort: the database may be away)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        try:
            self.remove()
        except Exception as exc:
            log.warning("bus.heartbeat_remove_failed", heartbeat=self.id, error=repr(exc))

    def __enter__(self) -> HeartbeatWriter:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _beat_logged(self) -> None:
        try:
            self.beat()
        except Exception as exc:
            if not self._failing:  # once per outage, not every few seconds
                log.warning("bus.heartbeat_failed", heartbeat=self.id, error=repr(exc))
            self._failing = True
        else:
            if self._failing:
                log.info("bus.heartbeat_recovered", heartbeat=self.id)
            self._failing = False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat_logged()


# ---------------------------------------------------------------- checks


def check_database(app: Potluck) -> None:
    with app.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_broker(url: str, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
    """The broker accepts a connection and answers the AMQP 0-9-1 protocol header."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_AMQP_HEADER)
        frame = sock.recv(1)
    if frame != b"\x01":  # a method frame: Connection.Start
        raise ConnectionError(f"{host}:{port} does not speak AMQP 0-9-1")


def _check(fn: Callable[..., object], *args: Any) -> dict[str, Any]:
    try:
        fn(*args)
    except Exception as exc:
        return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok"}


# ---------------------------------------------------------------- the report


def queue_depths(app: Potluck) -> tuple[dict[str, int], int, dict[str, int]]:
    """Messages waiting per service, dead letters, and (RabbitMQ) every queue's count.

    In-process transport: pending ``bus_deliveries`` rows per service. RabbitMQ: the ready
    messages of each service's queue (a message being applied is not counted).
    """
    if app.settings.transport == "rabbitmq":
        stats = app.bus.transport.stats()
        by_queue: dict[str, int] = dict(stats.get("broker_queues", {}))
        transport: Any = app.bus.transport
        depths = {s: by_queue.get(transport.queue(s), 0) for s in transport.services()}
        return depths, int(stats.get("deliveries_dead", 0)), by_queue
    with app.db.read() as session:
        rows = session.execute(
            select(Delivery.service, Delivery.status, func.count())
            .where(Delivery.status.in_(("pending", "dead")))
            .group_by(Delivery.service, Delivery.status)
        ).all()
    depths = {s: 0 for s in app.registry.services() if app.registry.event_types(s)}
    dead = 0
    for service, status, count in rows:
        if status == "pending":
            depths[service] = depths.get(service, 0) + int(count)
        else:
            dead += int(count)
    return depths, dead, {}


def _outbox_due(app: Potluck) -> int:
    """Pending outbox rows already due (the others are timers waiting for their time)."""
    with app.db.read() as session:
        return int(
            session.execute(
                select(func.count()).where(
                    OutboxEvent.status == "pending", OutboxEvent.deliver_after <= app.clock.now()
                )
            ).scalar_one()
        )


def processes(app: Potluck, *, stale_after: float | None = None) -> list[dict[str, Any]]:
    """The heartbeat rows, most recently seen first, each with its age and whether stale."""
    stale_after = app.settings.heartbeat_stale_seconds if stale_after is None else stale_after
    now = app.clock.now()
    with app.db.read() as session:
        rows = session.execute(
            select(Heartbeat).order_by(Heartbeat.last_seen_at.desc(), Heartbeat.id)
        ).scalars()
        result = []
        for row in rows:
            age = max((now - utc(row.last_seen_at)).total_seconds(), 0.0)
            result.append(
                {
                    "id": row.id,
                    "kind": row.kind,
                    "services": [s for s in row.services.split(",") if s],
                    "host": row.host,
                    "pid": row.pid,
                    "started_at": utc(row.started_at).isoformat(),
                    "last_seen_at": utc(row.last_seen_at).isoformat(),
                    "age_seconds": round(age, 3),
                    "stale": age > stale_after,
                    "published": row.published,
                    "processed": row.processed,
                    "errors": row.errors,
                }
            )
    return result


def collect_status(app: Potluck, *, stale_after: float | None = None) -> dict[str, Any]:
    """The whole report (a JSON-ready dict); ``status`` is ``degraded`` when the database or
    the broker does not answer, or when a service has no live consumer in worker mode."""
    stale_after = app.settings.heartbeat_stale_seconds if stale_after is None else stale_after
    report: dict[str, Any] = {
        "status": "ok",
        "checked_at": app.clock.now().isoformat(),
        "transport": app.settings.transport,
        "database": _check(check_database, app),
    }
    if app.settings.transport == "rabbitmq":
        report["broker"] = _check(check_broker, app.settings.broker_url)
    else:
        report["broker"] = {"status": "skipped", "detail": "in-process transport"}
    db_ok = report["database"]["status"] == "ok"
    broker_ok = report["broker"]["status"] != "error"
    report["outbox"] = None
    if db_ok:
        try:
            stats = outbox_stats(app)
            report["outbox"] = {
                "pending": stats["outbox_pending"],
                "due": _outbox_due(app),
                "lag_seconds": round(stats["outbox_lag_seconds"], 3),
            }
        except Exception as exc:
            report["outbox"] = {"error": f"{type(exc).__name__}"}
    report["queues"] = None
    report["dead_letters"] = None
    if (db_ok or app.settings.transport == "rabbitmq") and broker_ok:
        try:
            depths, dead, by_queue = queue_depths(app)
            report["queues"] = depths
            report["dead_letters"] = dead
            if by_queue:
                report["broker_queues"] = by_queue
        except Exception as exc:
            report["queues"] = {"error": f"{type(exc).__name__}"}
    seen: list[dict[str, Any]] = []
    if db_ok:
        try:
            seen = processes(app, stale_after=stale_after)
        except Exception as exc:
            report["processes_error"] = type(exc).__name__
    alive = [p for p in seen if not p["stale"]]
    report["processes"] = seen
    report["workers_seen"] = sum(1 for p in alive if p["kind"] == "worker")
    report["relays_seen"] = sum(1 for p in alive if p["kind"] == "relay")
    report["api_seen"] = sum(1 for p in alive if p["kind"] in ("api", "embedded"))
    report["stale"] = sum(1 for p in seen if p["stale"])
    # Services nobody consumes right now: only meaningful once any worker or relay reports,
    # i.e. in distributed mode (an embedded API process consumes every service).
    consumed = {s for p in alive if p["kind"] == "worker" for s in p["services"]}
    embedded = any(p["kind"] == "embedded" for p in alive)
    distributed = any(p["kind"] in ("worker", "relay") for p in seen)
    services = app.registry.services()
    report["unconsumed_services"] = (
        [s for s in services if s not in consumed] if distributed and not embedded else []
    )
    if not db_ok or not broker_ok or report["unconsumed_services"]:
        report["status"] = "degraded"
    return report


# ---------------------------------------------------------------- the command


def status_command(
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    stale_after: float | None = typer.Option(
        None,
        "--stale-after",
        help="Seconds without a heartbeat after which a process is stale "
        "(default: POTLUCK_HEARTBEAT_STALE_SECONDS).",
    ),
) -> None:
    """Database, broker, outbox lag, queue depths, dead letters and the processes seen.

    Exits 1 when the status is degraded (database or broker unreachable, or a service without
    a live worker).
    """
    from rich.console import Console
    from rich.table import Table

    from potluck.bootstrap import bootstrap

    app = bootstrap()
    report = collect_status(app, stale_after=stale_after)
    if json_output:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        console = Console()
        colour = "green" if report["status"] == "ok" else "red"
        console.print(f"status: [{colour}]{report['status']}[/{colour}]  ({report['transport']})")
        for part in ("database", "broker"):
            check = report[part]
            detail = f"  {check['detail']}" if check.get("detail") else ""
            console.print(f"{part}: {check['status']}{detail}", highlight=False)
        if report["outbox"]:
            outbox = report["outbox"]
            console.print(
                f"outbox: {outbox.get('pending', '?')} pending, "
                f"lag {outbox.get('lag_seconds', '?')} s",
                highlight=False,
            )
        console.print(f"dead letters: {report['dead_letters']}", highlight=False)
        if isinstance(report["queues"], dict):
            console.print(
                "queues: " + ", ".join(f"{k}={v}" for k, v in sorted(report["queues"].items())),
                soft_wrap=True,
                highlight=False,
            )
        if report["unconsumed_services"]:
            console.print(
                "[red]no live worker for: " + ", ".join(report["unconsumed_services"]) + "[/red]"
            )
        table = Table("kind", "services", "host", "pid", "last seen (s)", "state", "done")
        for p in report["processes"]:
            table.add_row(
                p["kind"],
                ",".join(p["services"]) or "-",
                p["host"],
                str(p["pid"]),
                f"{p['age_seconds']:.1f}",
                "stale" if p["stale"] else "alive",
                str(p["published"] + p["processed"]),
            )
        console.print(table)
    if report["status"] != "ok":
        raise typer.Exit(1)


__all__ = [
    "HeartbeatWriter",
    "check_broker",
    "check_database",
    "collect_status",
    "processes",
    "queue_depths",
    "status_command",
]
