"""Operations endpoints: /healthz, /readyz, /metrics (outside /v1, no authentication).

- ``/healthz``: the process answers; nothing else is checked.
- ``/readyz``: the database answers ``SELECT 1`` and, with ``transport == "rabbitmq"``, the
  broker speaks AMQP on its port; the bus's ``stats()`` are included when it has them. Not
  ready is a 503 problem+json whose ``checks`` say what failed.
- ``/metrics``: Prometheus text exposition of the app's own registry.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from potluck.api.deps import AppDep
from potluck.api.errors import problem_response, problem_responses
from potluck.bootstrap import Potluck

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_SECONDS = 3.0
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


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


def check_database(app: Potluck) -> None:
    with app.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_broker(url: str, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
    """The broker accepts a connection and answers the AMQP 0-9-1 protocol header."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_AMQP_HEADER)
        frame = sock.recv(1)
    if frame != b"\x01":  # a method frame: Connection.Start
        raise ConnectionError(f"{host}:{port} does not speak AMQP 0-9-1")


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
