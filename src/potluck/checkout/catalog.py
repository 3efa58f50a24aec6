"""The merchants' catalogue: what a merchant sells, at what unit price, and how many are left.

A platform lists its merchant parties' items; group orders take their prices from here at
creation and decrement the stock when they are finalized.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from potluck.checkout.models import CatalogItem
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.marketplace import service as marketplace
from potluck.paging import page_of


@dataclass(frozen=True, slots=True)
class CatalogItemView:
    id: str
    merchant_id: str
    sku: str
    name: str
    unit_price: int
    currency: str
    stock: int
    created_at: datetime
    updated_at: datetime


def item_view(i: CatalogItem) -> CatalogItemView:
    return CatalogItemView(
        id=i.id,
        merchant_id=i.merchant_id,
        sku=i.sku,
        name=i.name,
        unit_price=i.unit_price,
        currency=i.currency,
        stock=i.stock,
        created_at=utc(i.created_at),
        updated_at=utc(i.updated_at),
    )


def put_item(
    session: Session,
    *,
    platform_id: str,
    merchant_id: str,
    sku: str,
    name: str,
    unit_price: int,
    stock: int,
    now: datetime,
) -> tuple[CatalogItemView, bool]:
    """Add an item to a merchant's catalogue, or replace its name, price and stock if the
    sku is already there. Returns the item and whether it was created.

    The merchant must be one of the platform's parties of kind ``merchant`` (404 / 422).
    The currency is the merchant's.
    """
    try:
        party = marketplace.get_party(session, merchant_id, platform_id=platform_id)
    except DomainError as exc:
        raise DomainError("merchant_not_found", exc.message, status=404, field="merchant") from None
    if party.kind != "merchant":
        raise DomainError(
            "not_a_merchant", f"party {merchant_id} is a {party.kind}", field="merchant"
        )
    item = session.execute(
        select(CatalogItem)
        .where(CatalogItem.merchant_id == merchant_id, CatalogItem.sku == sku)
        .with_for_update(key_share=True)
    ).scalar_one_or_none()
    if item is not None:
        item.name = name
        item.unit_price = unit_price
        item.stock = stock
        item.updated_at = now
        session.flush()
        return item_view(item), False
    item = CatalogItem(
        id=new_id("itm"),
        platform_id=platform_id,
        merchant_id=merchant_id,
        sku=sku,
        name=name,
        unit_price=unit_price,
        currency=party.currency,
        stock=stock,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    session.flush()
    return item_view(item), True


def list_items(
    session: Session,
    *,
    platform_id: str,
    merchant_id: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[CatalogItemView], bool]:
    query = select(CatalogItem).where(CatalogItem.platform_id == platform_id)
    if merchant_id is not None:
        query = query.where(CatalogItem.merchant_id == merchant_id)
    rows, more = page_of(
        session,
        query,
        CatalogItem.id,
        visible=CatalogItem.platform_id == platform_id,
        limit=limit,
        starting_after=starting_after,
        noun="catalogue item",
    )
    return [item_view(i) for i in rows], more


def list_merchant_items(
    session: Session, *, merchant_id: str, limit: int, starting_after: str | None
) -> tuple[list[CatalogItemView], bool]:
    """A merchant's catalogue as people see it (to pick skus for a group order); 404
    ``merchant_not_found`` when the merchant has none."""
    if merchant_platform(session, merchant_id) is None:
        raise DomainError(
            "merchant_not_found", f"no merchant {merchant_id} with a catalogue", status=404
        )
    mine = CatalogItem.merchant_id == merchant_id
    rows, more = page_of(
        session,
        select(CatalogItem).where(mine),
        CatalogItem.id,
        visible=mine,
        limit=limit,
        starting_after=starting_after,
        noun="catalogue item",
    )
    return [item_view(i) for i in rows], more


@dataclass(frozen=True, slots=True)
class MerchantView:
    id: str
    name: str
    currency: str


def list_merchants(session: Session, *, limit: int = 100) -> list[MerchantView]:
    """Merchants that have a catalogue (people choose one to start a group order), by name."""
    ids = list(
        session.execute(
            select(CatalogItem.merchant_id, CatalogItem.platform_id)
            .distinct()
            .order_by(CatalogItem.merchant_id)
            .limit(limit)
        )
    )
    out = []
    for merchant_id, platform_id in ids:
        party = marketplace.get_party(session, merchant_id, platform_id=platform_id)
        out.append(MerchantView(id=party.id, name=party.name, currency=party.currency))
    return sorted(out, key=lambda m: (m.name.lower(), m.id))


def merchant_items(
    session: Session, merchant_id: str, skus: Sequence[str]
) -> dict[str, CatalogItem]:
    rows = session.execute(
        select(CatalogItem).where(CatalogItem.merchant_id == merchant_id, CatalogItem.sku.in_(skus))
    ).scalars()
    return {i.sku: i for i in rows}


def merchant_platform(session: Session, merchant_id: str) -> str | None:
    """The platform of a merchant that has a catalogue (None: no catalogue, no group orders)."""
    return session.scalar(
        select(CatalogItem.platform_id).where(CatalogItem.merchant_id == merchant_id).limit(1)
    )


def take_stock(session: Session, merchant_id: str, lines: Sequence[tuple[str, int]]) -> str | None:
    """Decrement the stock of every (sku, quantity) atomically; None when done, else the first
    sku that is short (then nothing was decremented: the caller's savepoint or transaction is
    rolled back by raising, so we check first under the rows' locks, then decrement)."""
    skus = sorted({sku for sku, _ in lines})
    locked = {
        i.sku: i
        for i in session.execute(
            select(CatalogItem)
            .where(CatalogItem.merchant_id == merchant_id, CatalogItem.sku.in_(skus))
            .order_by(CatalogItem.sku)
            .with_for_update(key_share=True)
        ).scalars()
    }
    need: dict[str, int] = {}
    for sku, quantity in lines:
        need[sku] = need.get(sku, 0) + quantity
    for sku in skus:
        item = locked.get(sku)
        if item is None or item.stock < need[sku]:
            return sku
    for sku in skus:
        session.execute(
            update(CatalogItem)
            .where(CatalogItem.id == locked[sku].id)
            .values(stock=CatalogItem.stock - need[sku])
            .execution_options(synchronize_session=False)
        )
    return None
