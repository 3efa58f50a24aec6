"""RFC 9457 problem+json errors with stable codes."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from potluck.errors import DomainError
from potluck.money import MoneyError

PROBLEM = "application/problem+json"

_log = structlog.get_logger("potluck.errors")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem+json document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://docs.potluck.dev/errors/{code}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        kind = err.get("type", "invalid")
        message = err.get("msg", "invalid value")
        if kind in {"int_type", "int_from_float"} and "amount" in str(err.get("loc", "")):
            message = (
                "amounts are integers of minor units (e.g. 1250 for 12.50), not floats or strings"
            )
        out.append({"field": _loc(err.get("loc", ())), "code": kind, "message": message})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            title=exc.title,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        field = exc.problem_field()
        errors = None
        if field:
            errors = [{"field": field, "code": exc.code, "message": exc.message}]
        return problem_response(
            exc.status,
            exc.code,
            exc.message,
            errors=errors,
            headers=exc.problem_headers(),
            extra=exc.problem_extra(),
        )

    @app.exception_handler(MoneyError)
    async def _money(_: Request, exc: MoneyError) -> JSONResponse:
        return problem_response(422, exc.code, str(exc))

    from potluck.payments.providers.base import ProviderError

    @app.exception_handler(ProviderError)
    async def _provider(_: Request, exc: ProviderError) -> JSONResponse:
        # A payment provider refused or did not answer. The request's transaction rolled
        # back, so nothing of ours changed; our ids are the provider's idempotency keys, so
        # repeating the request is safe.
        _log.warning("provider_error", provider=exc.provider, code=exc.code, error=str(exc))
        if exc.retryable:
            return problem_response(
                503,
                "provider_unavailable",
                f"the payment provider ({exc.provider or 'unknown'}) did not answer; try again",
                headers={"Retry-After": "5"},
            )
        return problem_response(
            502,
            "provider_refused",
            f"the payment provider ({exc.provider or 'unknown'}) refused the request: "
            f"{exc.message} ({exc.code})",
        )

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value from the request (PostgreSQL: a NUL character in
        # text or JSONB, a number out of range, …). Its transaction rolled back, so nothing
        # changed: bad input, not a server fault. The database's message is not shown.
        _log.warning("unstorable_value", error=str(exc.orig))
        return problem_response(
            422, "unstorable_value", "the request holds a value that cannot be stored"
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["code"] == "json_invalid" for e in errors):
            # pydantic's location is a character offset; the field is the body as a whole.
            body_errors = [
                {"field": "body", "code": "json_invalid", "message": e["message"]}
                for e in errors
                if e["code"] == "json_invalid"
            ]
            return problem_response(
                422, "malformed_json", "the request body is not valid JSON", errors=body_errors
            )
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return problem_response(422, "validation_error", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8, bad form data): the
            # same 422 as malformed JSON, which is what the OpenAPI document promises.
            return problem_response(
                422,
                "malformed_json",
                "the request body could not be parsed; send UTF-8 JSON",
                errors=[{"field": "body", "code": "body_unparsable", "message": str(exc.detail)}],
            )
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(exc)


def unexpected_error_response(exc: BaseException) -> JSONResponse:
    """The answer to an exception nobody handled: 503 if the database is down, else 500."""
    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    # PoolTimeout: every pooled connection stayed busy for pool_timeout (overloaded).
    if (
        isinstance(exc, OperationalError | DBAPIError)
        and getattr(exc, "connection_invalidated", False)
    ) or isinstance(exc, OperationalError | PoolTimeout):
        return problem_response(
            503,
            "database_unavailable",
            "the database is not answering; retry shortly",
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, IntegrityError):
        # Validation runs before every write, so a constraint that still refuses one means a
        # concurrent request won a race (two adds of one email at once): nothing was written
        # and the same request may simply be retried.
        return problem_response(
            409,
            "concurrent_conflict",
            "a concurrent request changed the same data; nothing was written, retry",
            headers={"Retry-After": "1"},
        )
    return problem_response(500, "internal_error", "an unexpected error occurred")


# --- OpenAPI: the problem+json shape, for route decorators' ``responses=`` ----------------


class ProblemFieldError(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (members beyond these may appear, e.g. ``index``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code.")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Field-level errors (422)."
    )


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

_DESCRIPTIONS = {
    401: "Missing or invalid credentials",
    402: "Insufficient funds",
    403: "The caller's kind (person or platform) may not use this endpoint",
    404: "Not found (or not visible to the caller)",
    409: "Conflict",
    422: "Invalid request",
    429: "Too many requests",
    503: "Not ready or temporarily unavailable",
}


def problem_response_doc(status: int, description: str | None = None) -> dict[str, Any]:
    """One OpenAPI response entry whose body is a problem+json document."""
    return {
        "description": description or _DESCRIPTIONS.get(status, _TITLES.get(status, "Error")),
        "content": {PROBLEM: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: ``responses=problem_responses(404, 409)``."""
    return {status: problem_response_doc(status) for status in statuses}
