"""Request dependencies: the app container and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import Depends, Request

from potluck.api.errors import ProblemError
from potluck.bootstrap import Potluck


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a person (JWT) or a platform (secret API key)."""

    kind: Literal["user", "platform"]
    id: str
    name: str
    role: str = "user"

    @property
    def scope(self) -> str:
        return f"{self.kind}:{self.id}"


def get_app(request: Request) -> Potluck:
    app: Potluck = request.app.state.potluck
    return app


async def _app_dependency(request: Request) -> Potluck:
    # async: FastAPI runs a sync dependency in the thread pool, a hop this does not need.
    return get_app(request)


AppDep = Annotated[Potluck, Depends(_app_dependency)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The caller, resolved once per request (the idempotency layer may have done it).

    async, so that a platform key the process has just seen (identity/cache.py) costs no
    thread-pool hop; a lookup that needs the database runs in the thread pool.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    from potluck.identity.service import cached_principal, principal_from_token

    app = get_app(request)
    token = bearer_token(request)
    principal = cached_principal(app, token) if token else None
    if principal is None and token:
        principal = await anyio.to_thread.run_sync(principal_from_token, app, token)
    if principal is None:
        raise ProblemError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <token>' with a valid access token or secret key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal
    return principal


async def current_user(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if principal.kind != "user":
        raise ProblemError(403, "user_required", "this endpoint is for people, not platforms")
    return principal


async def current_platform(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if principal.kind != "platform":
        raise ProblemError(
            403, "platform_required", "this endpoint needs a platform secret key (sk_…)"
        )
    return principal


async def current_admin(
    principal: Annotated[Principal, Depends(current_user)],
) -> Principal:
    """A person with the admin role (``potluck users promote EMAIL``)."""
    if principal.role != "admin":
        raise ProblemError(403, "admin_required", "this endpoint is for administrators")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentUser = Annotated[Principal, Depends(current_user)]
CurrentPlatform = Annotated[Principal, Depends(current_platform)]
CurrentAdmin = Annotated[Principal, Depends(current_admin)]
