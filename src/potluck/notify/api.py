"""HTTP routes of notify: a platform's webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from potluck.api.deps import AppDep, CurrentPlatform
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.notify import service
from potluck.notify.schemas import (
    WebhookDeliveryList,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointRead,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])

EndpointId = Annotated[str, Path(max_length=40)]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


@router.post("/webhook-endpoints", status_code=201, response_model=WebhookEndpointCreated)
def create_endpoint(
    body: WebhookEndpointCreate, app: AppDep, platform: CurrentPlatform, response: Response
) -> WebhookEndpointCreated:
    with app.db.transaction() as s:
        endpoint, secret = service.create_endpoint(
            s,
            platform_id=platform.id,
            url=body.url,
            events=body.events,
            description=body.description,
            settings=app.settings,
            now=app.clock.now(),
        )
    # The secret is shown once: not cached, and not kept by the Idempotency-Key store.
    response.headers["Cache-Control"] = "no-store"
    return WebhookEndpointCreated(**WebhookEndpointRead.of(endpoint).model_dump(), secret=secret)


@router.get("/webhook-endpoints", response_model=WebhookEndpointList)
def list_endpoints(app: AppDep, platform: CurrentPlatform, page: PageDep) -> WebhookEndpointList:
    with app.db.read() as s:
        rows, more = service.list_endpoints(
            s, platform_id=platform.id, limit=page.limit, starting_after=page.starting_after
        )
    return WebhookEndpointList(data=[WebhookEndpointRead.of(e) for e in rows], has_more=more)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointRead,
    responses=problem_responses(404),
)
def get_endpoint(
    endpoint_id: EndpointId, app: AppDep, platform: CurrentPlatform
) -> WebhookEndpointRead:
    with app.db.read() as s:
        return WebhookEndpointRead.of(service.get_endpoint(s, endpoint_id, platform_id=platform.id))


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointRead,
    responses=problem_responses(404),
)
def disable_endpoint(
    endpoint_id: EndpointId, app: AppDep, platform: CurrentPlatform
) -> WebhookEndpointRead:
    """Disable the endpoint: nothing more is sent to it, pending deliveries end as failed,
    and its delivery log stays readable. Deleting a disabled endpoint again is a no-op."""
    with app.db.transaction() as s:
        return WebhookEndpointRead.of(
            service.disable_endpoint(s, endpoint_id, platform_id=platform.id, now=app.clock.now())
        )


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=WebhookDeliveryList,
    responses=problem_responses(404),
)
def list_deliveries(
    endpoint_id: EndpointId,
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    status_filter: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only deliveries in this status.")
    ] = None,
) -> WebhookDeliveryList:
    with app.db.read() as s:
        rows, more = service.list_deliveries(
            s,
            endpoint_id,
            platform_id=platform.id,
            limit=page.limit,
            starting_after=page.starting_after,
            status=status_filter,
        )
    return WebhookDeliveryList(data=[WebhookDeliveryRead.of(d) for d in rows], has_more=more)
