"""Logs, request ids and metrics.

- ``configure_logging(settings)``: structlog on top of the standard library's logging, JSON
  lines when ``settings.log_json`` (else a console renderer), so that uvicorn's and SQLAlchemy's
  own records come out in the same format. Calling it again replaces the earlier setup.
- ``RequestContextMiddleware``: accepts a sane incoming ``X-Request-Id`` or makes one, binds it to
  structlog's context variables for everything logged during the request, returns it in the
  ``X-Request-Id`` response header, writes one access log line per request, counts the request
  in Prometheus, and turns an exception that escaped the app into a problem+json 500 (or 503 for
  a database that is not answering) that still carries the request id.
- ``Metrics``: one ``CollectorRegistry`` per app, so that several apps in one process (tests)
  do not collide.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from potluck.api.errors import unexpected_error_response
from potluck.config import Settings

REQUEST_ID_HEADER = "X-Request-Id"
# Letters, digits and ._:- up to 128: what tracing systems send; anything else is replaced.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

access_log = structlog.get_logger("potluck.access")
error_log = structlog.get_logger("potluck.errors")


# --- logging -----------------------------------------------------------------------------


class _PotluckHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Marks the handler we installed, so that reconfiguring replaces only ours."""


def configure_logging(settings: Settings) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if settings.log_json:
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = _PotluckHandler(sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PotluckHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Our access log replaces uvicorn's; uvicorn's other records go through the root handler.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False


# --- metrics -----------------------------------------------------------------------------


class Metrics:
    """The app's Prometheus collectors, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "potluck_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "potluck_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.idempotent_replays = Counter(
            "potluck_idempotent_replays",
            "Responses replayed for a repeated Idempotency-Key.",
            registry=self.registry,
        )


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


# --- the request middleware --------------------------------------------------------------


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = incoming if incoming and _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        replayed = False
        started = False
        begin = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, replayed, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                replayed = headers.get("idempotent-replayed") == "true"
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started:
                    raise
                error_log.exception(
                    "unhandled_exception", method=scope["method"], path=scope["path"]
                )
                response: Any = unexpected_error_response(exc)
                # The web app (web/pages.py) answers its own paths with an HTML page.
                page = getattr(
                    getattr(scope.get("app"), "state", None), "unexpected_error_page", None
                )
                if page is not None:
                    response = page(scope["path"], response.status_code, request_id) or response
                await response(scope, receive, send_with_id)
            finally:
                duration = time.perf_counter() - begin
                route = route_template(scope)
                method = scope["method"]
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.latency.labels(method, route).observe(duration)
                if replayed:
                    self.metrics.idempotent_replays.inc()
                fields: dict[str, Any] = {
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                }
                if replayed:
                    fields["idempotent_replayed"] = True
                access_log.info("request", **fields)
