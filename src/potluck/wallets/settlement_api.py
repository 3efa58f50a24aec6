"""HTTP route of merchant settlement: a party's daily settlement reports (platform API key)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from potluck.api.deps import AppDep, CurrentPlatform
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.wallets import settlement

router = APIRouter(prefix="/v1", tags=["wallets"])

PartyId = Annotated[str, Path(max_length=40)]


class MerchantSettlementRead(BaseModel):
    id: str
    party_id: str
    date: dt.date = Field(description="The business day settled (UTC).")
    currency: str
    opening_available: int = Field(description="Available wallet balance when the sweep ran.")
    credits_received: int = Field(description="Credits posted to the wallet during the day.")
    amount_swept: int = Field(description="Amount of the payout (0 unless paid_out).")
    payout_id: str | None
    bank_account_id: str | None
    status: Literal["paid_out", "nothing_to_settle", "no_bank_account", "failed"]
    reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, v: settlement.MerchantSettlementView) -> MerchantSettlementRead:
        return cls(
            id=v.id,
            party_id=v.party_id,
            date=v.date,
            currency=v.currency,
            opening_available=v.opening_available,
            credits_received=v.credits_received,
            amount_swept=v.amount_swept,
            payout_id=v.payout_id,
            bank_account_id=v.bank_account_id,
            status=v.status,  # type: ignore[arg-type]
            reason=v.reason,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class MerchantSettlementList(BaseModel):
    data: list[MerchantSettlementRead]
    has_more: bool


@router.get(
    "/parties/{party_id}/settlements",
    response_model=MerchantSettlementList,
    responses=problem_responses(404),
)
def list_party_settlements(
    party_id: PartyId,
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    date_from: Annotated[
        dt.date | None, Query(alias="from", description="First day (YYYY-MM-DD), inclusive.")
    ] = None,
    date_to: Annotated[
        dt.date | None, Query(alias="to", description="Last day (YYYY-MM-DD), inclusive.")
    ] = None,
) -> MerchantSettlementList:
    """The party's daily settlement reports, newest day first."""
    with app.db.read() as s:
        rows, more = settlement.list_settlements(
            s,
            platform_id=platform.id,
            party_id=party_id,
            limit=page.limit,
            starting_after=page.starting_after,
            date_from=date_from,
            date_to=date_to,
        )
    return MerchantSettlementList(data=[MerchantSettlementRead.of(r) for r in rows], has_more=more)
