"""Identity API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from potluck.identity.service import (
    EMAIL_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    PlatformView,
    UserView,
    check_password,
    clean_name,
    normalise_email,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Email = Annotated[
    str,
    Field(max_length=EMAIL_MAX + 64, examples=["ada@example.com"]),  # room for whitespace
    AfterValidator(normalise_email),
]
NewPassword = Annotated[
    str,
    Field(description="10 to 256 characters.", examples=["correct horse battery"]),
    AfterValidator(check_password),
]
Name = Annotated[str, Field(max_length=NAME_MAX + 64), AfterValidator(clean_name)]


class UserCreate(Strict):
    email: Email
    password: NewPassword
    name: Name = Field(examples=["Ada Lovelace"])


class UserRead(BaseModel):
    id: str
    email: str
    name: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, u: UserView) -> UserRead:
        return cls(id=u.id, email=u.email, name=u.name, role=u.role, created_at=u.created_at)


class TokenRequest(Strict):
    # Not validated as an address: a malformed email is simply wrong credentials.
    email: str = Field(min_length=1, max_length=EMAIL_MAX + 64, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


class PlatformCreate(Strict):
    name: Name = Field(examples=["Speedy Eats"])


class PlatformRead(BaseModel):
    id: str
    name: str
    key_prefix: str = Field(description="The start of the secret key, to tell keys apart.")
    status: Literal["active", "revoked"] = Field(
        description="`revoked`: the secret key no longer authenticates (rotate to get a new one)."
    )
    revoked_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, p: PlatformView) -> PlatformRead:
        return cls(**_platform_fields(p))


class PlatformList(BaseModel):
    data: list[PlatformRead]
    has_more: bool


class PlatformCreated(PlatformRead):
    secret_key: str = Field(description="Shown once: store it now, it cannot be shown again.")

    @classmethod
    def with_key(cls, p: PlatformView, secret_key: str) -> PlatformCreated:
        return cls(**_platform_fields(p), secret_key=secret_key)


def _platform_fields(p: PlatformView) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "key_prefix": p.key_prefix,
        "status": p.status,
        "revoked_at": p.revoked_at,
        "created_at": p.created_at,
    }
