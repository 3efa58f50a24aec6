"""HTTP routes of analytics: ``GET /v1/admin/analytics`` (admins only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from potluck.analytics import service
from potluck.api.deps import AppDep, CurrentAdmin
from potluck.api.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["analytics"])


class DailyRead(BaseModel):
    date: str = Field(description="UTC day, YYYY-MM-DD.")
    product: str
    currency: str
    count: int
    volume: int = Field(description="Sum of amounts in minor units of the currency.")


class TotalRead(BaseModel):
    product: str
    currency: str
    count: int
    volume: int


class FraudRead(BaseModel):
    scored: int = Field(description="Wallet payments scored by risk.")
    flagged: int = Field(description="Scored payments held for review or blocked.")
    blocked: int
    in_review: int
    flagged_rate: float = Field(description="flagged / scored (0 when nothing was scored).")


class MerchantRead(BaseModel):
    party_id: str
    name: str
    platform_id: str
    currency: str
    count: int
    volume: int = Field(description="Money received into the merchant's wallet, minor units.")


class AnalyticsRead(BaseModel):
    from_: date = Field(alias="from")
    to: date
    daily: list[DailyRead]
    totals: list[TotalRead]
    fraud: FraudRead
    top_merchants: list[MerchantRead]

    model_config = {"populate_by_name": True}


@router.get(
    "/admin/analytics",
    response_model=AnalyticsRead,
    response_model_by_alias=True,
    responses=problem_responses(403, 422),
)
def get_analytics(
    app: AppDep,
    _admin: CurrentAdmin,
    from_: Annotated[date, Query(alias="from", description="First UTC day (YYYY-MM-DD).")],
    to: Annotated[date, Query(description="Last UTC day, included (YYYY-MM-DD).")],
) -> AnalyticsRead:
    """Money moved per day and product (count and volume per currency), fraud rates and the
    top merchants by money received, over at most 366 days."""
    with app.db.read() as s:
        r = service.report(s, start=from_, end=to)
    return AnalyticsRead.model_validate(
        {
            "from": r.start,
            "to": r.end,
            "daily": [DailyRead.model_validate(d, from_attributes=True) for d in r.daily],
            "totals": [TotalRead.model_validate(t, from_attributes=True) for t in r.totals],
            "fraud": FraudRead(
                scored=r.fraud.scored,
                flagged=r.fraud.flagged,
                blocked=r.fraud.blocked,
                in_review=r.fraud.in_review,
                flagged_rate=r.fraud.flagged_rate,
            ),
            "top_merchants": [
                MerchantRead.model_validate(m, from_attributes=True) for m in r.top_merchants
            ],
        }
    )
