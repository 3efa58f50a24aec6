"""HTTP routes of wallets: balances, history, top-ups, payments and payment requests."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from potluck.api.deps import AppDep, CurrentUser
from potluck.api.errors import ProblemError, problem_responses
from potluck.api.pagination import PageDep
from potluck.api.types import CurrencyCode
from potluck.wallets import service
from potluck.wallets.schemas import (
    BalanceRead,
    RequestAccept,
    RequestAccepted,
    RequestCreate,
    RequestList,
    RequestRead,
    TopUpCreate,
    TopUpRead,
    TransactionList,
    TransactionRead,
    TransferCreate,
    TransferRead,
    WalletRead,
)

router = APIRouter(prefix="/v1", tags=["wallets"])

RequestId = Annotated[str, Path(max_length=40)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)]


def _client_id(key: str | None) -> str | None:
    """The transfer's client id from the request's Idempotency-Key: the ledger-level guard
    that outlives the key's 24 hours and a crash between commit and reply."""
    if not key:
        return None
    return "ik-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _answer(t: service.WalletTransferView, response: Response) -> None:
    """Map a stored outcome to the HTTP answer (after the commit: a failed or blocked attempt
    is kept)."""
    if t.status == service.FAILED:
        raise ProblemError(
            402,
            "insufficient_funds",
            "your wallet does not hold enough for this payment; nothing was moved",
            extra={"transfer_id": t.id},
        )
    if t.status == service.BLOCKED:
        raise ProblemError(
            403,
            "payment_blocked",
            "this payment was blocked by our risk checks; nothing was moved",
            extra={"transfer_id": t.id, "reasons": t.risk_reasons},
        )
    response.status_code = 202 if t.status == service.IN_REVIEW else 201


@router.get("/wallet", response_model=WalletRead)
def get_wallet(app: AppDep, user: CurrentUser) -> WalletRead:
    with app.db.read() as s:
        rows = service.balances(s, user_id=user.id)
    return WalletRead(balances=[BalanceRead.of(b) for b in rows])


@router.get(
    "/wallet/transactions", response_model=TransactionList, responses=problem_responses(422)
)
def list_wallet_transactions(
    app: AppDep,
    user: CurrentUser,
    page: PageDep,
    currency: Annotated[CurrencyCode | None, Query(description="Only this currency.")] = None,
) -> TransactionList:
    with app.db.read() as s:
        rows, more = service.list_transactions(
            s,
            user_id=user.id,
            limit=page.limit,
            starting_after=page.starting_after,
            currency=currency,
        )
    return TransactionList(data=[TransactionRead.of(t) for t in rows], has_more=more)


@router.post(
    "/wallet/top-ups",
    status_code=201,
    response_model=TopUpRead,
    responses=problem_responses(409, 422),
)
def create_top_up(body: TopUpCreate, app: AppDep, user: CurrentUser) -> TopUpRead:
    now = app.clock.now()
    with app.db.transaction() as s:
        view = service.create_top_up(
            s, app, user_id=user.id, amount=body.amount, currency=body.currency, now=now
        )
    return TopUpRead.of(view)


@router.post(
    "/wallet/transfers",
    status_code=201,
    response_model=TransferRead,
    responses={
        202: {"description": "Held for review", "model": TransferRead},
        **problem_responses(402, 403, 404, 409, 422),
    },
)
def create_transfer(
    body: TransferCreate,
    app: AppDep,
    user: CurrentUser,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TransferRead:
    now = app.clock.now()
    with app.db.transaction() as s:
        t = service.send(
            s,
            app,
            payer_user_id=user.id,
            to=body.to,
            amount=body.amount,
            currency=body.currency,
            note=body.note,
            device_id=body.device_id,
            client_id=_client_id(idempotency_key),
            now=now,
        )
    _answer(t, response)
    return TransferRead.of(t)


@router.get(
    "/wallet/transfers/{transfer_id}",
    response_model=TransferRead,
    responses=problem_responses(404),
)
def get_transfer(
    transfer_id: Annotated[str, Path(max_length=40)], app: AppDep, user: CurrentUser
) -> TransferRead:
    with app.db.read() as s:
        return TransferRead.of(service.get_transfer(s, transfer_id, user_id=user.id))


@router.post(
    "/wallet/requests",
    status_code=201,
    response_model=RequestRead,
    responses=problem_responses(404, 409, 422),
)
def create_request(body: RequestCreate, app: AppDep, user: CurrentUser) -> RequestRead:
    now = app.clock.now()
    with app.db.transaction() as s:
        r = service.create_request(
            s,
            requester_user_id=user.id,
            payer=body.from_,
            amount=body.amount,
            currency=body.currency,
            note=body.note,
            now=now,
        )
    return RequestRead.of(r, viewer=user.id)


@router.get("/wallet/requests", response_model=RequestList, responses=problem_responses(422))
def list_requests(app: AppDep, user: CurrentUser, page: PageDep) -> RequestList:
    with app.db.read() as s:
        rows, more = service.list_requests(
            s, user_id=user.id, limit=page.limit, starting_after=page.starting_after
        )
    return RequestList(data=[RequestRead.of(r, viewer=user.id) for r in rows], has_more=more)


@router.get(
    "/wallet/requests/{request_id}", response_model=RequestRead, responses=problem_responses(404)
)
def get_request(request_id: RequestId, app: AppDep, user: CurrentUser) -> RequestRead:
    with app.db.read() as s:
        return RequestRead.of(service.get_request(s, request_id, user_id=user.id), viewer=user.id)


@router.post(
    "/wallet/requests/{request_id}/accept",
    status_code=201,
    response_model=RequestAccepted,
    responses={
        202: {"description": "Paid, held for review", "model": RequestAccepted},
        **problem_responses(402, 403, 404, 409, 422),
    },
)
def accept_request(
    request_id: RequestId,
    app: AppDep,
    user: CurrentUser,
    response: Response,
    body: RequestAccept | None = None,
) -> RequestAccepted:
    now = app.clock.now()
    with app.db.transaction() as s:
        r, t = service.accept_request(
            s,
            app,
            request_id=request_id,
            user_id=user.id,
            device_id=body.device_id if body else None,
            now=now,
        )
    _answer(t, response)
    return RequestAccepted(request=RequestRead.of(r, viewer=user.id), transfer=TransferRead.of(t))


@router.post(
    "/wallet/requests/{request_id}/decline",
    response_model=RequestRead,
    responses=problem_responses(403, 404, 409),
)
def decline_request(request_id: RequestId, app: AppDep, user: CurrentUser) -> RequestRead:
    now = app.clock.now()
    with app.db.transaction() as s:
        r = service.decline_request(s, request_id=request_id, user_id=user.id, now=now)
    return RequestRead.of(r, viewer=user.id)


@router.post(
    "/wallet/requests/{request_id}/cancel",
    response_model=RequestRead,
    responses=problem_responses(403, 404, 409),
)
def cancel_request(request_id: RequestId, app: AppDep, user: CurrentUser) -> RequestRead:
    now = app.clock.now()
    with app.db.transaction() as s:
        r = service.cancel_request(s, request_id=request_id, user_id=user.id, now=now)
    return RequestRead.of(r, viewer=user.id)
