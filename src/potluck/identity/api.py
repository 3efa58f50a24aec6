"""Identity routes: register, sign in, who am I, platforms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from potluck.api.deps import AppDep, CurrentUser
from potluck.api.errors import problem_response_doc, problem_responses
from potluck.api.pagination import PageDep
from potluck.identity import service
from potluck.identity.schemas import (
    PlatformCreate,
    PlatformCreated,
    PlatformList,
    PlatformRead,
    TokenRead,
    TokenRequest,
    UserCreate,
    UserRead,
)

router = APIRouter(prefix="/v1", tags=["identity"])

PlatformId = Annotated[str, Path(max_length=40)]


def _rate_limited_doc(description: str) -> dict[str, Any]:
    return problem_response_doc(429, description) | {
        "headers": {
            "Retry-After": {
                "description": "Seconds until an attempt is allowed again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    }


_RATE_LIMITED = _rate_limited_doc("Too many sign-in attempts (`rate_limited`)")
_REGISTER_RATE_LIMITED = _rate_limited_doc(
    "Too many registrations from this client address (`rate_limited`)"
)


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserRead,
    responses={
        409: problem_response_doc(409, "The email is taken (`email_taken`)"),
        429: _REGISTER_RATE_LIMITED,
    },
)
def register(body: UserCreate, app: AppDep, request: Request) -> UserRead:
    client = request.client.host if request.client else "unknown"
    user = service.register_user(
        app, email=body.email, password=body.password, name=body.name, client=client
    )
    return UserRead.of(user)


@router.post(
    "/auth/token",
    response_model=TokenRead,
    # 401 `invalid_credentials` whether or not the email exists
    responses={**problem_responses(401), 429: _RATE_LIMITED},
)
def token(body: TokenRequest, app: AppDep, request: Request, response: Response) -> TokenRead:
    client = request.client.host if request.client else "unknown"
    issued = service.issue_token(app, email=body.email, password=body.password, client=client)
    # RFC 6749 5.1; also keeps the token out of the Idempotency-Key store.
    response.headers["Cache-Control"] = "no-store"
    return TokenRead(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/me", response_model=UserRead)
def me(app: AppDep, user: CurrentUser) -> UserRead:
    return UserRead.of(service.get_user(app, user_id=user.id))


@router.post("/platforms", status_code=201, response_model=PlatformCreated)
def create_platform(
    body: PlatformCreate, app: AppDep, user: CurrentUser, response: Response
) -> PlatformCreated:
    platform, secret_key = service.create_platform(app, name=body.name, owner_user_id=user.id)
    # The secret key is shown once: not cached, and not kept by the Idempotency-Key store.
    response.headers["Cache-Control"] = "no-store"
    return PlatformCreated.with_key(platform, secret_key)


@router.get("/platforms", response_model=PlatformList)
def list_platforms(app: AppDep, user: CurrentUser, page: PageDep) -> PlatformList:
    rows, more = service.list_platforms(
        app, owner_user_id=user.id, limit=page.limit, starting_after=page.starting_after
    )
    return PlatformList(data=[PlatformRead.of(p) for p in rows], has_more=more)


@router.get("/platforms/{platform_id}", response_model=PlatformRead)
def get_platform(platform_id: PlatformId, app: AppDep, user: CurrentUser) -> PlatformRead:
    return PlatformRead.of(
        service.get_platform(app, platform_id=platform_id, owner_user_id=user.id)
    )


@router.post("/platforms/{platform_id}/keys/rotate", response_model=PlatformCreated)
def rotate_platform_key(
    platform_id: PlatformId, app: AppDep, user: CurrentUser, response: Response
) -> PlatformCreated:
    platform, secret_key = service.rotate_platform_key(
        app, platform_id=platform_id, owner_user_id=user.id
    )
    # Like creation: the new key is shown once and never stored by the Idempotency-Key layer.
    response.headers["Cache-Control"] = "no-store"
    return PlatformCreated.with_key(platform, secret_key)


@router.post("/platforms/{platform_id}/revoke", response_model=PlatformRead)
def revoke_platform_key(platform_id: PlatformId, app: AppDep, user: CurrentUser) -> PlatformRead:
    return PlatformRead.of(
        service.revoke_platform_key(app, platform_id=platform_id, owner_user_id=user.id)
    )
