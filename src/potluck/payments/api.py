"""HTTP routes of the payments product: payment intents (platform API keys), provider
webhooks, and the sandbox's hosted payment page."""

from __future__ import annotations

import re
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request

from potluck.api.deps import AppDep, CurrentPlatform
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.errors import DomainError
from potluck.payments import service
from potluck.payments.sandbox_pages import router as sandbox_router
from potluck.payments.schemas import (
    IntentStatusName,
    PaymentIntentCreate,
    PaymentIntentList,
    PaymentIntentRead,
    RefundCreate,
    RefundRead,
    WebhookAck,
)
from potluck.payments.webhooks import receive_webhook

router = APIRouter()
v1 = APIRouter(prefix="/v1", tags=["payments"])

IntentId = Annotated[str, Path(max_length=40)]
ProviderName = Annotated[str, Path(max_length=16)]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _payer(app: AppDep, payer: str) -> tuple[str | None, str | None]:
    """``(user_id, email)`` from the request's ``payer``."""
    if "@" in payer:
        if not EMAIL.match(payer):
            raise service.PaymentsError("invalid_payer", "payer is not an email", field="payer")
        return None, payer.strip().lower()
    from potluck.identity.service import get_user

    try:
        get_user(app, user_id=payer)
    except DomainError:
        raise service.PaymentsError(
            "payer_not_found", f"no user {payer}; pass a user id or an email", field="payer"
        ) from None
    return payer, None


@v1.post(
    "/payment-intents",
    status_code=201,
    response_model=PaymentIntentRead,
    responses=problem_responses(409, 422),
)
def create_payment_intent(
    body: PaymentIntentCreate, app: AppDep, platform: CurrentPlatform
) -> PaymentIntentRead:
    payer_user_id, payer_email = _payer(app, body.payer)
    now = app.clock.now()
    with app.db.transaction() as s:
        destination = service.platform_received_account(
            s, platform_id=platform.id, currency=body.currency, now=now
        )
        intent = service.create_intent(
            s,
            app,
            amount=body.amount,
            currency=body.currency,
            purpose=body.purpose,
            destination_account_id=destination,
            payer_user_id=payer_user_id,
            payer_email=payer_email,
            platform_id=platform.id,
            metadata=body.metadata,
            now=now,
        )
    return PaymentIntentRead.of(intent)


@v1.get("/payment-intents", response_model=PaymentIntentList, responses=problem_responses(422))
def list_payment_intents(
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    status: Annotated[IntentStatusName | None, Query(description="Only in this status.")] = None,
) -> PaymentIntentList:
    with app.db.read() as s:
        rows, more = service.list_intents(
            s,
            platform_id=platform.id,
            limit=page.limit,
            starting_after=page.starting_after,
            status=status,
        )
    return PaymentIntentList(data=[PaymentIntentRead.of(p) for p in rows], has_more=more)


@v1.get(
    "/payment-intents/{intent_id}",
    response_model=PaymentIntentRead,
    responses=problem_responses(404),
)
def get_payment_intent(
    intent_id: IntentId, app: AppDep, platform: CurrentPlatform
) -> PaymentIntentRead:
    with app.db.read() as s:
        return PaymentIntentRead.of(service.get_intent(s, intent_id, platform_id=platform.id))


@v1.post(
    "/payment-intents/{intent_id}/cancel",
    response_model=PaymentIntentRead,
    responses=problem_responses(404, 409),
)
def cancel_payment_intent(
    intent_id: IntentId, app: AppDep, platform: CurrentPlatform
) -> PaymentIntentRead:
    with app.db.transaction() as s:
        intent = service.cancel_platform_intent(
            s, app, intent_id, platform_id=platform.id, now=app.clock.now()
        )
    return PaymentIntentRead.of(intent)


@v1.post(
    "/payment-intents/{intent_id}/refunds",
    status_code=201,
    response_model=RefundRead,
    responses=problem_responses(402, 404, 409, 422),
)
def refund_payment_intent(
    intent_id: IntentId, body: RefundCreate, app: AppDep, platform: CurrentPlatform
) -> RefundRead:
    with app.db.transaction() as s:
        refund = service.refund_intent(
            s,
            app,
            intent_id,
            amount=body.amount,
            reason=body.reason,
            platform_id=platform.id,
            now=app.clock.now(),
        )
    return RefundRead.of(refund)


@v1.post(
    "/webhooks/{provider}",
    response_model=WebhookAck,
    responses=problem_responses(400, 404),
    summary="Receive a payment provider's webhook",
)
async def provider_webhook(provider: ProviderName, request: Request, app: AppDep) -> WebhookAck:
    """The signature is checked on the raw body first (400 ``invalid_signature``, nothing
    stored); each provider event is stored once (a duplicate is 200 and does nothing)."""
    body = await request.body()
    headers = dict(request.headers)
    result = await anyio.to_thread.run_sync(lambda: receive_webhook(app, provider, body, headers))
    return WebhookAck(outcome=result.outcome)


router.include_router(v1)
router.include_router(sandbox_router)
