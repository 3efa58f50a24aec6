"""Ledger API for platforms: their own accounts and transfers, nobody else's."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from potluck.api.deps import AppDep, CurrentPlatform, Principal
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.ledger import service as ledger
from potluck.ledger.schemas import (
    AccountCreate,
    AccountList,
    AccountRead,
    EntryList,
    EntryRead,
    TransferBatchCreate,
    TransferBatchRead,
    TransferCreate,
    TransferList,
    TransferPost,
    TransferRead,
    TransferVoid,
)

router = APIRouter(prefix="/v1", tags=["ledger"])

AccountId = Annotated[str, Path(max_length=40)]
TransferId = Annotated[str, Path(max_length=64)]
TransferStatus = Literal["posted", "pending", "voided", "expired"]


def book_of(platform: Principal) -> str:
    """Each platform's accounts form their own books, one ledger per currency."""
    return f"platform:{platform.id}"


def _new(t: TransferCreate) -> ledger.NewTransfer:
    return ledger.NewTransfer(
        debit_account_id=t.debit_account,
        credit_account_id=t.credit_account,
        amount=t.amount,
        currency=t.currency,
        client_id=t.id,
        code=t.code,
        pending=t.pending,
        timeout_seconds=t.timeout_seconds,
        metadata=t.metadata,
    )


@router.post("/accounts", status_code=201, response_model=AccountRead)
def create_account(body: AccountCreate, app: AppDep, platform: CurrentPlatform) -> AccountRead:
    with app.db.transaction() as s:
        account = ledger.create_account(
            s,
            currency=body.currency,
            code=body.code,
            now=app.clock.now(),
            book=book_of(platform),
            scope=platform.scope,
            owner=platform.scope,
            flags=ledger.AccountFlags(
                body.flags.debits_must_not_exceed_credits,
                body.flags.credits_must_not_exceed_debits,
            ),
            metadata=body.metadata,
        )
    return AccountRead.of(account)


@router.get("/accounts", response_model=AccountList)
def list_accounts(app: AppDep, platform: CurrentPlatform, page: PageDep) -> AccountList:
    with app.db.read() as s:
        rows, more = ledger.list_accounts(
            s, scope=platform.scope, limit=page.limit, starting_after=page.starting_after
        )
    return AccountList(data=[AccountRead.of(a) for a in rows], has_more=more)


@router.get("/accounts/{account_id}", response_model=AccountRead, responses=problem_responses(404))
def get_account(account_id: AccountId, app: AppDep, platform: CurrentPlatform) -> AccountRead:
    with app.db.read() as s:
        return AccountRead.of(ledger.get_account(s, account_id, scope=platform.scope))


@router.get(
    "/accounts/{account_id}/entries", response_model=EntryList, responses=problem_responses(404)
)
def list_entries(
    account_id: AccountId, app: AppDep, platform: CurrentPlatform, page: PageDep
) -> EntryList:
    with app.db.read() as s:
        ledger.get_account(s, account_id, scope=platform.scope)
        rows, more = ledger.list_entries(
            s, account_id, limit=page.limit, starting_after=page.starting_after
        )
    return EntryList(data=[EntryRead.of(r) for r in rows], has_more=more)


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferRead,
    responses={
        200: {"model": TransferRead, "description": "The transfer already existed"},
        **problem_responses(402, 404, 409),
    },
)
def create_transfer(
    body: TransferCreate, app: AppDep, platform: CurrentPlatform, response: Response
) -> TransferRead:
    with app.db.transaction() as s:
        result = ledger.create_transfer(s, _new(body), now=app.clock.now(), scope=platform.scope)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return TransferRead.of(result.transfer)


@router.post(
    "/transfers/batch",
    status_code=201,
    response_model=TransferBatchRead,
    responses={
        200: {"model": TransferBatchRead, "description": "The batch already existed"},
        **problem_responses(402, 404, 409),
    },
)
def create_batch(
    body: TransferBatchCreate, app: AppDep, platform: CurrentPlatform, response: Response
) -> TransferBatchRead:
    with app.db.transaction() as s:
        results = ledger.create_transfers(
            s, [_new(t) for t in body.transfers], now=app.clock.now(), scope=platform.scope
        )
    if not any(r.created for r in results):
        response.status_code = status.HTTP_200_OK
    return TransferBatchRead(data=[TransferRead.of(r.transfer) for r in results])


@router.get(
    "/transfers",
    response_model=TransferList,
    responses=problem_responses(404),  # 404: ?account= names an account the caller cannot see
)
def list_transfers(
    app: AppDep,
    platform: CurrentPlatform,
    page: PageDep,
    account: Annotated[
        str | None,
        Query(max_length=40, description="Only transfers that debit or credit this account."),
    ] = None,
    status_filter: Annotated[
        TransferStatus | None, Query(alias="status", description="Only transfers in this status.")
    ] = None,
) -> TransferList:
    with app.db.read() as s:
        rows, more = ledger.list_transfers(
            s,
            scope=platform.scope,
            limit=page.limit,
            starting_after=page.starting_after,
            account_id=account,
            status=status_filter,
        )
    return TransferList(data=[TransferRead.of(t) for t in rows], has_more=more)


@router.get(
    "/transfers/{transfer_id}", response_model=TransferRead, responses=problem_responses(404)
)
def get_transfer(transfer_id: TransferId, app: AppDep, platform: CurrentPlatform) -> TransferRead:
    with app.db.read() as s:
        return TransferRead.of(ledger.get_transfer(s, transfer_id, scope=platform.scope))


@router.post(
    "/transfers/{transfer_id}/post",
    response_model=TransferRead,
    responses=problem_responses(402, 404, 409),
)
def post_transfer(
    transfer_id: TransferId,
    app: AppDep,
    platform: CurrentPlatform,
    body: TransferPost | None = None,
) -> TransferRead:
    body = body or TransferPost()
    with app.db.transaction() as s:
        ledger.create_transfer(
            s,
            ledger.PostPending(transfer_id, amount=body.amount, metadata=body.metadata),
            now=app.clock.now(),
            scope=platform.scope,
        )
        return TransferRead.of(ledger.get_transfer(s, transfer_id, scope=platform.scope))


@router.post(
    "/transfers/{transfer_id}/void",
    response_model=TransferRead,
    responses=problem_responses(404, 409),
)
def void_transfer(
    transfer_id: TransferId,
    app: AppDep,
    platform: CurrentPlatform,
    body: TransferVoid | None = None,
) -> TransferRead:
    body = body or TransferVoid()
    with app.db.transaction() as s:
        ledger.create_transfer(
            s,
            ledger.VoidPending(transfer_id, metadata=body.metadata),
            now=app.clock.now(),
            scope=platform.scope,
        )
        return TransferRead.of(ledger.get_transfer(s, transfer_id, scope=platform.scope))
