"""The OpenAPI document says what the API really answers.

FastAPI's defaults advertise a 422 ``HTTPValidationError`` in ``application/json`` that we never
send (our 422 is problem+json) and say nothing of the errors every authenticated or idempotent
route can give. After FastAPI builds the document, each operation gets:

- its 422 as problem+json, on every route that takes input and on every POST (an invalid
  ``Idempotency-Key`` is a 422 too);
- 401 (and 403 for person-only or platform-only routes) when the route needs a caller;
- 404 when the path names a resource (one the caller may not see is a 404 too);
- on POST: the optional ``Idempotency-Key`` header, 409 (``idempotency_key_reused`` /
  ``idempotency_key_in_use``) and 413 (``payload_too_large``: a body over
  ``POTLUCK_MAX_BODY_BYTES``).

Routes still declare their own domain errors with ``responses=problem_responses(404, 402)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from potluck.api import deps
from potluck.api.errors import Problem, problem_response_doc

_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key and request replay the first answer "
    "(with `Idempotent-Replayed: true`) for 24 hours; the key is scoped to the caller.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]{1,255}$"},
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _takes_input(route: RouteContext) -> bool:
    d = route.dependant
    flat = [d, *_all(d)]
    return any(x.path_params or x.query_params or x.header_params or x.body_params for x in flat)


def _all(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _all(dep)


def _amend(route: RouteContext, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    calls = set(_calls(route.dependant))
    extra: dict[int, dict[str, Any]] = {}
    if method == "post" or _takes_input(route) or "422" in responses:
        extra[422] = problem_response_doc(422)
    if route.dependant.path_params:
        # DESIGN.md: a resource the caller may not see answers 404, like one that is not there.
        extra[404] = problem_response_doc(404)
    if calls & {deps.current_principal, deps.current_user, deps.current_platform}:
        extra[401] = problem_response_doc(401)
    if calls & {deps.current_user, deps.current_platform}:
        extra[403] = problem_response_doc(403)
    if method == "post":
        extra[409] = problem_response_doc(
            409, "Conflict (including `idempotency_key_reused` and `idempotency_key_in_use`)"
        )
        extra[413] = problem_response_doc(
            413, "The request body is too large (`payload_too_large`)"
        )
        params = op.setdefault("parameters", [])
        if not any(p.get("name", "").lower() == "idempotency-key" for p in params):
            params.append(dict(_IDEMPOTENCY_HEADER))
    for status, doc in extra.items():
        current = responses.get(str(status))
        # Replace FastAPI's default HTTPValidationError; keep what a route declared itself.
        if current is None or "HTTPValidationError" in json.dumps(current):
            responses[str(status)] = doc
    op["responses"] = dict(sorted(responses.items()))


def amend_openapi(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    paths = schema.get("paths", {})
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            op = paths.get(route.path_format, {}).get(method.lower())
            if op is not None:
                _amend(route, method.lower(), op)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/"
    problem = Problem.model_json_schema(ref_template=ref + "{model}")
    components.update(problem.pop("$defs", {}))
    components[Problem.__name__] = problem
    text = json.dumps({"paths": paths})
    for unused in ("HTTPValidationError", "ValidationError"):
        if ref + unused not in text and unused in components:
            del components[unused]
    return schema


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that amends FastAPI's document once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            app.openapi_schema = amend_openapi(app, schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
