"""Settings from the environment (``POTLUCK_*``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything Potluck reads from its environment.

    Every field maps to ``POTLUCK_<NAME>``; e.g. ``POTLUCK_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="POTLUCK_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./potluck.db",
        description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg://… at scale.",
    )
    transport: Literal["inprocess", "rabbitmq"] = "inprocess"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    secret_key: str | None = Field(
        default=None,
        description="Signs JWTs. Unset: a random key is generated once and kept in the database.",
    )
    jwt_ttl_seconds: int = 3600
    log_level: str = "INFO"
    log_json: bool = True
    # sign-in rate limits
    login_max_per_email: int = 5
    login_email_window_seconds: int = 900
    login_max_per_client: int = 20
    login_client_window_seconds: int = 60
    # idempotency
    idempotency_ttl_seconds: int = 24 * 3600
    idempotency_wait_seconds: float = 10.0
    # event bus
    bus_max_attempts: int = 8
    bus_backoff_base_seconds: float = 1.0
    bus_backoff_max_seconds: float = 300.0
    bus_poll_interval_seconds: float = 0.2
    embedded_workers: bool = Field(
        default=True, description="Run relay and workers inside `potluck serve` (embedded mode)."
    )
    db_pool_size: int = 20
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Addresses of trusted reverse proxies (comma-separated, or '*'): their "
        "X-Forwarded-For names the client, for sign-in limits and anonymous idempotency scopes.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body accepted; a larger one is 413 payload_too_large.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
