"""HTTP routes of the marketplace: parties, split rules, orders, refunds, split history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from potluck.api.deps import AppDep, CurrentPlatform
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.api.types import CurrencyCode
from potluck.ledger import service as ledger
from potluck.ledger.schemas import EntryList, EntryRead
from potluck.marketplace import service
from potluck.marketplace.schemas import (
    BalanceRead,
    OrderCreate,
    OrderList,
    OrderRead,
    PartyCreate,
    PartyList,
    PartyRead,
    RefundCreate,
    RefundRead,
    SplitCreditList,
    SplitCreditRead,
    SplitRulesPut,
    SplitRulesRead,
)

router = APIRouter(prefix="/v1", tags=["marketplace"])

PartyPath = Annotated[str, Path(max_length=40)]
OrderPath = Annotated[str, Path(max_length=40)]


# ---------------------------------------------------------------- parties


@router.post("/parties", status_code=201, response_model=PartyRead)
def create_party(body: PartyCreate, app: AppDep, platform: CurrentPlatform) -> PartyRead:
    with app.db.transaction() as s:
        party = service.create_party(
            s,
            platform_id=platform.id,
            name=body.name,
            kind=body.kind,
            currency=body.currency,
            now=app.clock.now(),
        )
        return PartyRead.of(party, service.wallet_balance(s, party))


@router.get("/parties", response_model=PartyList)
def list_parties(app: AppDep, platform: CurrentPlatform, page: PageDep) -> PartyList:
    with app.db.read() as s:
        rows, more = service.list_parties(
            s, platform_id=platform.id, limit=page.limit, starting_after=page.starting_after
        )
        return PartyList(
            data=[PartyRead.of(p, service.wallet_balance(s, p)) for p in rows], has_more=more
        )


@router.get("/parties/{party_id}", response_model=PartyRead, responses=problem_responses(404))
def get_party(party_id: PartyPath, app: AppDep, platform: CurrentPlatform) -> PartyRead:
    with app.db.read() as s:
        party = service.get_party(s, party_id, platform_id=platform.id)
        return PartyRead.of(party, service.wallet_balance(s, party))


@router.get(
    "/parties/{party_id}/balance", response_model=BalanceRead, responses=problem_responses(404)
)
def get_party_balance(party_id: PartyPath, app: AppDep, platform: CurrentPlatform) -> BalanceRead:
    with app.db.read() as s:
        wallet = service.wallet_balance(s, service.get_party(s, party_id, platform_id=platform.id))
    return BalanceRead(
        total=wallet.total, available=wallet.available, held=wallet.held, currency=wallet.currency
    )


@router.get(
    "/parties/{party_id}/ledger", response_model=EntryList, responses=problem_responses(404)
)
def list_party_ledger(
    party_id: PartyPath, app: AppDep, platform: CurrentPlatform, page: PageDep
) -> EntryList:
    """The entries of the party's wallet, oldest first (cursor: an entry id)."""
    with app.db.read() as s:
        party = service.get_party(s, party_id, platform_id=platform.id)
        rows, more = ledger.list_entries(
            s, party.wallet_account_id, limit=page.limit, starting_after=page.starting_after
        )
    return EntryList(data=[EntryRead.of(r) for r in rows], has_more=more)


# ---------------------------------------------------------------- split rules


@router.put("/split-rules", response_model=SplitRulesRead, responses=problem_responses())
def put_split_rules(body: SplitRulesPut, app: AppDep, platform: CurrentPlatform) -> SplitRulesRead:
    """A new version of your split rules for one currency; orders recorded from now use it.

    Idempotent: rules identical to the current version return it unchanged (no new version).
    """
    with app.db.transaction() as s:
        version = service.put_split_rules(
            s,
            platform_id=platform.id,
            currency=body.currency,
            split=body.to_rules(),
            now=app.clock.now(),
        )
    return SplitRulesRead.of_version(version)


@router.get("/split-rules", response_model=SplitRulesRead, responses=problem_responses(404))
def get_split_rules(
    app: AppDep, platform: CurrentPlatform, currency: Annotated[CurrencyCode, Query()]
) -> SplitRulesRead:
    with app.db.read() as s:
        version = service.current_split_rules(s, platform_id=platform.id, currency=currency)
    return SplitRulesRead.of_version(version)


# ---------------------------------------------------------------- orders


@router.post("/orders", status_code=201, response_model=OrderRead, responses=problem_responses(409))
def record_order(body: OrderCreate, app: AppDep, platform: CurrentPlatform) -> OrderRead:
    """Record a paid order; it is split among the parties asynchronously."""
    with app.db.transaction() as s:
        order = service.record_order(
            s,
            platform_id=platform.id,
            order_id=body.order_id,
            amount=body.amount,
            currency=body.currency,
            split=body.split.to_rules() if body.split is not None else None,
            now=app.clock.now(),
        )
    return OrderRead.of(order)


@router.get("/orders", response_model=OrderList)
def list_orders(
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    order_id: Annotated[
        str | None, Query(max_length=64, description="Only the order with your own id.")
    ] = None,
) -> OrderList:
    with app.db.read() as s:
        rows, more = service.list_orders(
            s,
            platform_id=platform.id,
            limit=page.limit,
            starting_after=page.starting_after,
            order_id=order_id,
        )
    return OrderList(data=[OrderRead.of(o) for o in rows], has_more=more)


@router.get("/orders/{order}", response_model=OrderRead, responses=problem_responses(404))
def get_order(order: OrderPath, app: AppDep, platform: CurrentPlatform) -> OrderRead:
    with app.db.read() as s:
        return OrderRead.of(service.get_order(s, order, platform_id=platform.id))


@router.post(
    "/orders/{order}/refunds",
    status_code=201,
    response_model=RefundRead,
    responses=problem_responses(402, 404, 409),
)
def refund_order(
    order: OrderPath, body: RefundCreate, app: AppDep, platform: CurrentPlatform
) -> RefundRead:
    """Reverse part of a split order from the parties' wallets, in proportion."""
    with app.db.transaction() as s:
        refund = service.refund_order(
            s, platform_id=platform.id, order_pk=order, amount=body.amount, now=app.clock.now()
        )
    return RefundRead.of(refund)


@router.get("/splits", response_model=SplitCreditList, responses=problem_responses(404))
def list_splits(
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    order_id: Annotated[str | None, Query(max_length=64, description="Your own order id.")] = None,
    order: Annotated[str | None, Query(max_length=40, description="Our order id (ord_…).")] = None,
) -> SplitCreditList:
    """Split history: the wallet credits applied, oldest first."""
    with app.db.read() as s:
        rows, more = service.list_split_history(
            s,
            platform_id=platform.id,
            limit=page.limit,
            starting_after=page.starting_after,
            order_pk=order,
            order_id=order_id,
        )
    return SplitCreditList(data=[SplitCreditRead.of(c) for c in rows], has_more=more)
