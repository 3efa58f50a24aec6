"""Webhook API request and reply models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from potluck.notify.service import (
    DELIVERABLE_EVENTS,
    MAX_URL_LENGTH,
    AttemptView,
    DeliveryView,
    EndpointView,
)


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where events are POSTed: https, on a public address.",
        examples=["https://example.com/potluck/webhooks"],
    )
    events: list[str] = Field(
        min_length=1,
        max_length=len(DELIVERABLE_EVENTS),
        description=f"Event types to receive ({', '.join(DELIVERABLE_EVENTS)}), or ['*'].",
        examples=[["payout.completed", "payout.failed"]],
    )
    description: str | None = Field(default=None, max_length=500)


class WebhookEndpointRead(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, e: EndpointView) -> WebhookEndpointRead:
        return cls(
            id=e.id,
            url=e.url,
            events=e.events,
            description=e.description,
            status=e.status,  # type: ignore[arg-type]
            created_at=e.created_at,
            disabled_at=e.disabled_at,
        )


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(
        description="Signing secret (whsec_…). Shown once: store it now; it is never shown again."
    )


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpointRead]
    has_more: bool


class WebhookAttemptRead(BaseModel):
    attempted_at: datetime
    succeeded: bool
    status_code: int | None = Field(description="HTTP status answered (none: no answer).")
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, a: AttemptView) -> WebhookAttemptRead:
        return cls(
            attempted_at=a.attempted_at,
            succeeded=a.succeeded,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )


class WebhookDeliveryRead(BaseModel):
    id: str
    endpoint: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempts: list[WebhookAttemptRead]

    @classmethod
    def of(cls, d: DeliveryView) -> WebhookDeliveryRead:
        return cls(
            id=d.id,
            endpoint=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,  # type: ignore[arg-type]
            attempt_count=d.attempt_count,
            next_attempt_at=d.next_attempt_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            completed_at=d.completed_at,
            attempts=[WebhookAttemptRead.of(a) for a in d.attempts],
        )


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDeliveryRead]
    has_more: bool
