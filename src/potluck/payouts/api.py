"""HTTP routes of payouts: bank accounts, payouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from potluck.api.deps import AppDep, CurrentPlatform
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.payouts import service
from potluck.payouts.schemas import (
    BankAccountCreate,
    BankAccountList,
    BankAccountRead,
    PayoutCreate,
    PayoutList,
    PayoutRead,
    PayoutStatus,
)

router = APIRouter(prefix="/v1", tags=["payouts"])

PartyId = Annotated[str, Path(max_length=40)]
PayoutId = Annotated[str, Path(max_length=40)]


@router.post(
    "/parties/{party_id}/bank-accounts",
    status_code=201,
    response_model=BankAccountRead,
    responses=problem_responses(404),
)
def create_bank_account(
    party_id: PartyId, body: BankAccountCreate, app: AppDep, platform: CurrentPlatform
) -> BankAccountRead:
    with app.db.transaction() as s:
        account = service.add_bank_account(
            s,
            platform_id=platform.id,
            party_id=party_id,
            holder_name=body.holder_name,
            account_number=body.account_number,
            routing_type=body.routing.type,
            routing_value=body.routing.value,
            now=app.clock.now(),
        )
    return BankAccountRead.of(account)


@router.get(
    "/parties/{party_id}/bank-accounts",
    response_model=BankAccountList,
    responses=problem_responses(404),
)
def list_bank_accounts(
    party_id: PartyId, app: AppDep, platform: CurrentPlatform, page: PageDep
) -> BankAccountList:
    with app.db.read() as s:
        rows, more = service.list_bank_accounts(
            s,
            platform_id=platform.id,
            party_id=party_id,
            limit=page.limit,
            starting_after=page.starting_after,
        )
    return BankAccountList(data=[BankAccountRead.of(b) for b in rows], has_more=more)


@router.post(
    "/payouts",
    status_code=201,
    response_model=PayoutRead,
    responses=problem_responses(402, 404, 409),
)
def create_payout(body: PayoutCreate, app: AppDep, platform: CurrentPlatform) -> PayoutRead:
    with app.db.transaction() as s:
        payout = service.create_payout(
            s,
            platform_id=platform.id,
            party_id=body.party,
            bank_account_id=body.bank_account,
            amount=body.amount,
            currency=body.currency,
            now=app.clock.now(),
        )
    return PayoutRead.of(payout)


@router.get("/payouts", response_model=PayoutList, responses=problem_responses(404))
def list_payouts(
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    party: Annotated[str | None, Query(max_length=40, description="Only this party's.")] = None,
    status: Annotated[PayoutStatus | None, Query(description="Only in this status.")] = None,
) -> PayoutList:
    with app.db.read() as s:
        rows, more = service.list_payouts(
            s,
            platform_id=platform.id,
            limit=page.limit,
            starting_after=page.starting_after,
            party_id=party,
            status=status,
        )
    return PayoutList(data=[PayoutRead.of(p) for p in rows], has_more=more)


@router.get("/payouts/{payout_id}", response_model=PayoutRead, responses=problem_responses(404))
def get_payout(payout_id: PayoutId, app: AppDep, platform: CurrentPlatform) -> PayoutRead:
    with app.db.read() as s:
        return PayoutRead.of(service.get_payout(s, payout_id, platform_id=platform.id))


@router.post(
    "/payouts/{payout_id}/cancel",
    response_model=PayoutRead,
    responses=problem_responses(404, 409),
)
def cancel_payout(payout_id: PayoutId, app: AppDep, platform: CurrentPlatform) -> PayoutRead:
    with app.db.transaction() as s:
        payout = service.cancel_payout(s, payout_id, platform_id=platform.id, now=app.clock.now())
    return PayoutRead.of(payout)
