"""Operations endpoints: /healthz, /readyz, /metrics (outside /v1, no authentication).

- ``/healthz``: the process answers; nothing else is checked.
- ``/readyz``: the database answers ``SELECT 1`` and, with ``transport == "rabbitmq"``, the
  broker speaks AMQP on its port; the bus's ``stats()`` are included when it has them. Not
  ready is a 503 problem+json whose ``checks`` say what failed.
- ``/metrics``: Prometheus text exposition of the app's own registry.
- ``GET /v1/admin/status`` (admins only): the report of ``potluck status``
  (``potluck.bus.status.collect_status``): database, broker, outbox lag, queue depths, dead
  letters and the relays, workers and API processes seen recently (heartbeats).

While the app runs, the router's lifespan writes this API process's heartbeat
(``kind`` ``api``, or ``embedded`` when the relay and workers run inside it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from potluck.api.deps import AppDep, CurrentAdmin
from potluck.api.errors import problem_response, problem_responses
from potluck.bootstrap import Potluck
from potluck.bus.status import (
    CHECK_TIMEOUT_SECONDS,
    HeartbeatWriter,
    check_broker,
    check_database,
    collect_status,
)
from potluck.clock import SystemClock


@asynccontextmanager
async def heartbeat_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Write this API process's heartbeat while it serves.

    Runs after the app's own lifespan has started (or not) the embedded bus. An app on a
    test clock (FakeClock) writes none: a heartbeat reports wall-clock liveness.
    """
    potluck: Potluck | None = getattr(app.state, "potluck", None)
    writer: HeartbeatWriter | None = None
    if potluck is not None and isinstance(potluck.clock, SystemClock):
        kind = "embedded" if potluck.bus.running else "api"
        services = potluck.registry.services() if kind == "embedded" else []
        writer = HeartbeatWriter(potluck, kind, services).start()
    try:
        yield
    finally:
        if writer is not None:
            await anyio.to_thread.run_sync(writer.stop)


router = APIRouter(tags=["operations"], lifespan=heartbeat_lifespan)

__all__ = ["check_broker", "check_database", "router"]


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    status: Literal["ok", "skipped", "error"]
    detail: str | None = None


class Ready(BaseModel):
    status: Literal["ok"]
    checks: dict[str, Check]
    bus: dict[str, Any] | None = None


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


def _bus_stats(app: Potluck) -> dict[str, Any] | None:
    stats = getattr(app.bus, "stats", None)
    if not callable(stats):
        return None
    value = stats()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    encoded = jsonable_encoder(value)
    return encoded if isinstance(encoded, dict) else {"value": encoded}


async def _run_check(fn: Any, *args: Any) -> Check:
    try:
        with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
            await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    except TimeoutError:
        return Check(status="error", detail=f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
    except Exception as exc:
        return Check(status="error", detail=type(exc).__name__)
    return Check(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses=problem_responses(503),
)
async def readyz(app: AppDep) -> Ready | JSONResponse:
    checks = {"database": await _run_check(check_database, app)}
    if app.settings.transport == "rabbitmq":
        checks["broker"] = await _run_check(check_broker, app.settings.broker_url)
    else:
        checks["broker"] = Check(status="skipped", detail="in-process transport")
    bus: dict[str, Any] | None = None
    try:
        with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
            bus = await anyio.to_thread.run_sync(_bus_stats, app, abandon_on_cancel=True)
    except Exception as exc:  # statistics are informational: they never decide readiness
        bus = {"error": type(exc).__name__}
    failed = [name for name, check in checks.items() if check.status == "error"]
    if failed:
        return problem_response(
            503,
            "not_ready",
            "not ready: " + ", ".join(f"{name} unreachable" for name in failed),
            headers={"Retry-After": "5"},
            extra={"checks": jsonable_encoder(checks, exclude_none=True)},
        )
    return Ready(status="ok", checks=checks, bus=bus)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class ProcessSeen(BaseModel):
    id: str
    kind: str
    services: list[str]
    host: str
    pid: int
    started_at: str
    last_seen_at: str
    age_seconds: float
    stale: bool
    published: int
    processed: int
    errors: int


class AdminStatus(BaseModel):
    status: Literal["ok", "degraded"]
    checked_at: str
    transport: str
    database: Check
    broker: Check
    outbox: dict[str, Any] | None
    queues: dict[str, Any] | None
    dead_letters: int | None
    broker_queues: dict[str, int] | None = None
    processes: list[ProcessSeen]
    workers_seen: int
    relays_seen: int
    api_seen: int
    stale: int
    unconsumed_services: list[str]


@router.get(
    "/v1/admin/status",
    response_model=AdminStatus,
    response_model_exclude_none=False,
    responses=problem_responses(401, 403),
    summary="Operational status (admins)",
)
async def admin_status(app: AppDep, _admin: CurrentAdmin) -> AdminStatus:
    """Database, broker, outbox lag, queue depths per service, dead letters, and the relays,
    workers and API processes seen (stale: no heartbeat for ``heartbeat_stale_seconds``).

    Always 200 for an admin: a degraded part is reported in the body (``status``)."""
    report = await anyio.to_thread.run_sync(collect_status, app, abandon_on_cancel=True)
    return AdminStatus.model_validate(report)
