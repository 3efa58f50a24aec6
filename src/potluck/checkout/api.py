"""HTTP routes of the checkout product: the merchants' catalogue (platforms), group orders
(people), and the notification inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from potluck.api.deps import AppDep, CurrentPlatform, CurrentUser
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.checkout import catalog, service
from potluck.checkout.schemas import (
    CatalogItemCreate,
    CatalogItemList,
    CatalogItemRead,
    GroupOrderCreate,
    GroupOrderList,
    GroupOrderRead,
    MemberCreate,
    MemberRead,
)
from potluck.notify.inbox import router as inbox_router

router = APIRouter(prefix="/v1", tags=["checkout"])
router.include_router(inbox_router)

GroupPath = Annotated[str, Path(max_length=40)]
MemberPath = Annotated[str, Path(max_length=40)]


# ---------------------------------------------------------------- catalogue


@router.post(
    "/catalog/items",
    status_code=201,
    response_model=CatalogItemRead,
    responses=problem_responses(404),
)
def put_catalog_item(
    body: CatalogItemCreate, app: AppDep, platform: CurrentPlatform, response: Response
) -> CatalogItemRead:
    """Add an item to one of your merchants' catalogue (201), or replace the name, price and
    stock of the sku it already has (200)."""
    with app.db.transaction() as s:
        item, created = catalog.put_item(
            s,
            platform_id=platform.id,
            merchant_id=body.merchant,
            sku=body.sku,
            name=body.name,
            unit_price=body.unit_price,
            stock=body.stock,
            now=app.clock.now(),
        )
    if not created:
        response.status_code = 200
    return CatalogItemRead.of(item)


@router.get("/catalog/items", response_model=CatalogItemList, responses=problem_responses())
def list_catalog_items(
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    merchant: Annotated[str | None, Query(max_length=40)] = None,
) -> CatalogItemList:
    with app.db.read() as s:
        rows, more = catalog.list_items(
            s,
            platform_id=platform.id,
            merchant_id=merchant,
            limit=page.limit,
            starting_after=page.starting_after,
        )
    return CatalogItemList(data=[CatalogItemRead.of(i) for i in rows], has_more=more)


@router.get(
    "/merchants/{merchant}/items",
    response_model=CatalogItemList,
    responses=problem_responses(404),
)
def list_merchant_items(
    merchant: Annotated[str, Path(max_length=40)], app: AppDep, user: CurrentUser, page: PageDep
) -> CatalogItemList:
    """A merchant's catalogue, for people choosing what to put in a group order."""
    with app.db.read() as s:
        rows, more = catalog.list_merchant_items(
            s, merchant_id=merchant, limit=page.limit, starting_after=page.starting_after
        )
    return CatalogItemList(data=[CatalogItemRead.of(i) for i in rows], has_more=more)


# ---------------------------------------------------------------- group orders


@router.post(
    "/group-orders",
    status_code=201,
    response_model=GroupOrderRead,
    responses=problem_responses(404),
)
def create_group_order(body: GroupOrderCreate, app: AppDep, user: CurrentUser) -> GroupOrderRead:
    with app.db.transaction() as s:
        group = service.create_group_order(
            s,
            host_user_id=user.id,
            merchant_id=body.merchant,
            items=[(line.sku, line.quantity) for line in body.items],
            currency=body.currency,
            split=body.split,
            expires_in_seconds=body.expires_in_seconds,
            fallback=body.fallback,
            host_share=body.host_share,
            now=app.clock.now(),
        )
    return GroupOrderRead.of(group)


@router.get("/group-orders", response_model=GroupOrderList, responses=problem_responses())
def list_group_orders(app: AppDep, user: CurrentUser, page: PageDep) -> GroupOrderList:
    """Group orders you host or are a member of, oldest first."""
    with app.db.read() as s:
        rows, more = service.list_group_orders(
            s, user_id=user.id, limit=page.limit, starting_after=page.starting_after
        )
    return GroupOrderList(data=[GroupOrderRead.of(g) for g in rows], has_more=more)


@router.get(
    "/group-orders/{group_id}", response_model=GroupOrderRead, responses=problem_responses(404)
)
def get_group_order(group_id: GroupPath, app: AppDep, user: CurrentUser) -> GroupOrderRead:
    with app.db.read() as s:
        return GroupOrderRead.of(service.get_group_order(s, group_id, user_id=user.id))


@router.post(
    "/group-orders/{group_id}/members",
    status_code=201,
    response_model=MemberRead,
    responses=problem_responses(404, 409),
)
def add_member(
    group_id: GroupPath, body: MemberCreate, app: AppDep, user: CurrentUser
) -> MemberRead:
    with app.db.transaction() as s:
        member = service.add_member(
            s,
            group_id=group_id,
            host_user_id=user.id,
            email=body.email,
            share=body.share,
            items=[(line.sku, line.quantity) for line in body.items]
            if body.items is not None
            else None,
            now=app.clock.now(),
        )
    return MemberRead.of(member)


@router.delete(
    "/group-orders/{group_id}/members/{member}",
    response_model=GroupOrderRead,
    responses=problem_responses(404, 409),
)
def remove_member(
    group_id: GroupPath, member: MemberPath, app: AppDep, user: CurrentUser
) -> GroupOrderRead:
    """Remove a member by user id (or member id, for one added by email only)."""
    with app.db.transaction() as s:
        group = service.remove_member(
            s, group_id=group_id, host_user_id=user.id, member=member, now=app.clock.now()
        )
    return GroupOrderRead.of(group)


def _host_action(name: str, doc: str):  # type: ignore[no-untyped-def]
    fn = getattr(service, name)

    def action(group_id: GroupPath, app: AppDep, user: CurrentUser) -> GroupOrderRead:
        with app.db.transaction() as s:
            group = fn(s, app, group_id=group_id, host_user_id=user.id, now=app.clock.now())
        return GroupOrderRead.of(group)

    action.__doc__ = doc
    action.__name__ = name
    return action


router.add_api_route(
    "/group-orders/{group_id}/open",
    _host_action(
        "open_group_order",
        "DRAFT → OPEN: shares computed, one payment intent and invitation per member.",
    ),
    methods=["POST"],
    response_model=GroupOrderRead,
    responses=problem_responses(404, 409),
)
router.add_api_route(
    "/group-orders/{group_id}/cancel",
    _host_action(
        "cancel_group_order", "→ CANCELLED: paid shares refunded, open payment intents cancelled."
    ),
    methods=["POST"],
    response_model=GroupOrderRead,
    responses=problem_responses(404, 409),
)
router.add_api_route(
    "/group-orders/{group_id}/force-finalize",
    _host_action(
        "force_finalize",
        "OPEN/PENDING → HOST_PAYING: the host gets one payment intent for what is unpaid now.",
    ),
    methods=["POST"],
    response_model=GroupOrderRead,
    responses=problem_responses(404, 409),
)
