"""HTTP routes of sharing (people, JWT). A group, its expenses, comments, balances,
settle-up and activity are visible to the group's members only: 404 for anyone else."""

from __future__ import annotations

import json
from email import policy as email_policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from potluck.api.deps import AppDep, CurrentAdmin, CurrentUser
from potluck.api.errors import ProblemError, problem_responses
from potluck.api.pagination import PageDep
from potluck.sharing import export, fx, importer, reports, wallet_settlement
from potluck.sharing import service as sharing
from potluck.sharing.expenses import UNCHANGED
from potluck.sharing.schemas import (
    ActivityList,
    ActivityRead,
    BalanceList,
    BalanceRead,
    CommentCreate,
    CommentRead,
    CurrencyAmount,
    DirectExpenseCreate,
    DirectExpenseRead,
    ExpenseCreate,
    ExpenseList,
    ExpenseRead,
    ExpenseUpdate,
    FriendList,
    FriendRead,
    FxRateList,
    FxRateRead,
    FxRatesPut,
    FxRatesWritten,
    GroupCreate,
    GroupExportRead,
    GroupImportCreate,
    GroupImportRead,
    GroupList,
    GroupRead,
    ImportCounts,
    MemberCreate,
    MemberRead,
    PaymentRead,
    ReportRead,
    ReportRow,
    SettlementCreate,
    SettlementRead,
    SettleUpRead,
    WalletSettlementPending,
)
from potluck.wallets import service as wallets

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

router = APIRouter(prefix="/v1", tags=["sharing"])

GroupId = Annotated[str, Path(max_length=40)]
ExpenseId = Annotated[str, Path(max_length=40)]
MemberIdPath = Annotated[str, Path(max_length=40)]


def _group_read(s: Session, group: sharing.GroupView, user_id: str) -> GroupRead:
    balances = {
        b.member.id: b.balance for b in sharing.group_balances(s, group.id, user_id=user_id)
    }
    return GroupRead.of(group, balances)


@router.post("/groups", status_code=201, response_model=GroupRead, responses=problem_responses(422))
def create_group(body: GroupCreate, app: AppDep, user: CurrentUser) -> GroupRead:
    with app.db.transaction() as s:
        group = sharing.create_group(
            s,
            user_id=user.id,
            name=body.name,
            currency=body.currency,
            emails=body.members,
            now=app.clock.now(),
        )
        return _group_read(s, group, user.id)


@router.get("/groups", response_model=GroupList)
def list_groups(app: AppDep, user: CurrentUser, page: PageDep) -> GroupList:
    with app.db.read() as s:
        rows, more = sharing.list_groups(
            s, user_id=user.id, limit=page.limit, starting_after=page.starting_after
        )
        return GroupList(data=[GroupRead.of(g) for g in rows], has_more=more)


@router.get("/groups/{group_id}", response_model=GroupRead, responses=problem_responses(404))
def get_group(group_id: GroupId, app: AppDep, user: CurrentUser) -> GroupRead:
    with app.db.read() as s:
        return _group_read(s, sharing.get_group(s, group_id, user_id=user.id), user.id)


@router.post(
    "/groups/{group_id}/members",
    status_code=201,
    response_model=MemberRead,
    responses=problem_responses(404, 409),
)
def add_member(group_id: GroupId, body: MemberCreate, app: AppDep, user: CurrentUser) -> MemberRead:
    with app.db.transaction() as s:
        m = sharing.add_member(
            s, user_id=user.id, group_id=group_id, email=body.email, now=app.clock.now()
        )
        return MemberRead.of(m, 0)


@router.delete(
    "/groups/{group_id}/members/{member_id}",
    response_model=MemberRead,
    responses=problem_responses(404, 409),
)
def remove_member(
    group_id: GroupId, member_id: MemberIdPath, app: AppDep, user: CurrentUser
) -> MemberRead:
    with app.db.transaction() as s:
        m = sharing.remove_member(
            s, user_id=user.id, group_id=group_id, member_id=member_id, now=app.clock.now()
        )
        return MemberRead.of(m, 0)


# --- expenses ---


@router.post(
    "/groups/{group_id}/expenses",
    status_code=201,
    response_model=ExpenseRead,
    responses=problem_responses(404),
)
def create_expense(
    group_id: GroupId, body: ExpenseCreate, app: AppDep, user: CurrentUser
) -> ExpenseRead:
    with app.db.transaction() as s:
        e = sharing.create_expense(
            s,
            user_id=user.id,
            group_id=group_id,
            description=body.description,
            amount=body.amount,
            currency=body.currency,
            fx_rate=body.fx_rate,
            date=body.date,
            category=body.category,
            notes=body.notes,
            paid_by=body.payers(),
            split=body.split.to_split() if body.split else None,
            repeat=body.repeat,
            now=app.clock.now(),
        )
    return ExpenseRead.of(e)


@router.get(
    "/groups/{group_id}/expenses", response_model=ExpenseList, responses=problem_responses(404)
)
def list_expenses(
    group_id: GroupId,
    app: AppDep,
    user: CurrentUser,
    page: PageDep,
    include_deleted: Annotated[bool, Query()] = False,
) -> ExpenseList:
    with app.db.read() as s:
        rows, more = sharing.list_expenses(
            s,
            user_id=user.id,
            group_id=group_id,
            limit=page.limit,
            starting_after=page.starting_after,
            include_deleted=include_deleted,
        )
    return ExpenseList(data=[ExpenseRead.of(e) for e in rows], has_more=more)


def _full(app: AppDep, expense_id: str, user_id: str) -> ExpenseRead:
    with app.db.read() as s:
        e = sharing.get_expense(s, expense_id, user_id=user_id)
        return ExpenseRead.of(
            e,
            comments=sharing.expense_comments(s, e.id),
            history=sharing.expense_history(s, e.id),
        )


@router.get("/expenses/{expense_id}", response_model=ExpenseRead, responses=problem_responses(404))
def get_expense(expense_id: ExpenseId, app: AppDep, user: CurrentUser) -> ExpenseRead:
    return _full(app, expense_id, user.id)


@router.patch(
    "/expenses/{expense_id}", response_model=ExpenseRead, responses=problem_responses(404, 409)
)
def update_expense(
    expense_id: ExpenseId, body: ExpenseUpdate, app: AppDep, user: CurrentUser
) -> ExpenseRead:
    with app.db.transaction() as s:
        sharing.update_expense(
            s,
            user_id=user.id,
            expense_id=expense_id,
            now=app.clock.now(),
            description=body.description,
            amount=body.amount,
            currency=body.currency,
            fx_rate=body.fx_rate,
            repeat=body.repeat if "repeat" in body.model_fields_set else UNCHANGED,
            date=body.date,
            category=body.category,
            notes=body.notes,
            paid_by=None if body.paid_by is None else [(p.user_id, p.amount) for p in body.paid_by],
            split=body.split.to_split() if body.split else None,
        )
    return _full(app, expense_id, user.id)


@router.delete(
    "/expenses/{expense_id}", response_model=ExpenseRead, responses=problem_responses(404, 409)
)
def delete_expense(expense_id: ExpenseId, app: AppDep, user: CurrentUser) -> ExpenseRead:
    with app.db.transaction() as s:
        sharing.delete_expense(s, user_id=user.id, expense_id=expense_id, now=app.clock.now())
    return _full(app, expense_id, user.id)


@router.post(
    "/expenses/{expense_id}/restore",
    response_model=ExpenseRead,
    responses=problem_responses(404, 409),
)
def restore_expense(expense_id: ExpenseId, app: AppDep, user: CurrentUser) -> ExpenseRead:
    with app.db.transaction() as s:
        sharing.restore_expense(s, user_id=user.id, expense_id=expense_id, now=app.clock.now())
    return _full(app, expense_id, user.id)


@router.post(
    "/expenses/{expense_id}/comments",
    status_code=201,
    response_model=CommentRead,
    responses=problem_responses(404),
)
def add_comment(
    expense_id: ExpenseId, body: CommentCreate, app: AppDep, user: CurrentUser
) -> CommentRead:
    with app.db.transaction() as s:
        c = sharing.add_comment(
            s, user_id=user.id, expense_id=expense_id, text=body.text, now=app.clock.now()
        )
    return CommentRead.of(c)


# --- balances, settle-up, settlements, activity, friends ---


@router.get(
    "/groups/{group_id}/balances", response_model=BalanceList, responses=problem_responses(404)
)
def balances(group_id: GroupId, app: AppDep, user: CurrentUser) -> BalanceList:
    with app.db.read() as s:
        group = sharing.get_group(s, group_id, user_id=user.id)
        rows = sharing.group_balances(s, group_id, user_id=user.id)
    return BalanceList(
        currency=group.currency,
        data=[
            BalanceRead(
                member_id=b.member.id,
                user_id=b.member.user_id,
                name=b.member.name,
                balance=b.balance,
            )
            for b in rows
        ],
    )


@router.get(
    "/groups/{group_id}/settle-up", response_model=SettleUpRead, responses=problem_responses(404)
)
def settle_up(
    group_id: GroupId,
    app: AppDep,
    user: CurrentUser,
    simplify: Annotated[bool, Query()] = True,
) -> SettleUpRead:
    with app.db.read() as s:
        group = sharing.get_group(s, group_id, user_id=user.id)
        payments = sharing.settle_up(s, group_id, user_id=user.id, simplify=simplify)
    return SettleUpRead(
        currency=group.currency,
        simplify=simplify,
        payments=[
            PaymentRead.model_validate({"from": p.from_id, "to": p.to_id, "amount": p.amount})
            for p in payments
        ],
    )


@router.post(
    "/groups/{group_id}/settlements",
    status_code=201,
    response_model=SettlementRead,
    responses={
        202: {"description": "method wallet: held for review", "model": WalletSettlementPending},
        **problem_responses(402, 403, 404),
    },
)
def record_settlement(
    group_id: GroupId,
    body: SettlementCreate,
    app: AppDep,
    user: CurrentUser,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", include_in_schema=False)
    ] = None,
) -> SettlementRead | JSONResponse:
    if body.method == "wallet":
        return _settle_with_wallet(group_id, body, app, user.id, idempotency_key)
    with app.db.transaction() as s:
        st = sharing.record_settlement(
            s,
            user_id=user.id,
            group_id=group_id,
            from_member_id=body.from_,
            to_member_id=body.to,
            amount=body.amount,
            method=body.method,
            now=app.clock.now(),
        )
    return SettlementRead.of(st)


def _settle_with_wallet(
    group_id: str, body: SettlementCreate, app: Potluck, user_id: str, key: str | None
) -> SettlementRead | JSONResponse:
    """Money and IOU in one transaction (sharing/wallet_settlement.py); a refused payment is
    kept by wallets and answered after the commit, with neither book changed."""
    with app.db.transaction() as s:
        done = wallet_settlement.settle_with_wallet(
            s,
            app,
            user_id=user_id,
            group_id=group_id,
            from_member_id=body.from_,
            to_member_id=body.to,
            amount=body.amount,
            client_id=wallet_settlement.client_id_of(group_id, key),
            now=app.clock.now(),
        )
    t = done.transfer
    if t.status == wallets.FAILED:
        raise ProblemError(
            402,
            "insufficient_funds",
            "your wallet does not hold enough for this payment; nothing was moved or settled",
            extra={"transfer_id": t.id},
        )
    if t.status == wallets.BLOCKED:
        raise ProblemError(
            403,
            "payment_blocked",
            "this payment was blocked by our risk checks; nothing was moved or settled",
            extra={"transfer_id": t.id},
        )
    if done.settlement is None:  # in review: settled if a reviewer approves
        pending = WalletSettlementPending.model_validate(
            {
                "group_id": group_id,
                "from": body.from_,
                "to": body.to,
                "amount": t.amount,
                "currency": t.currency,
                "wallet_transfer_id": t.id,
            }
        )
        return JSONResponse(pending.model_dump(mode="json", by_alias=True), status_code=202)
    return SettlementRead.of(done.settlement).model_copy(update={"wallet_transfer_id": t.id})


@router.get(
    "/groups/{group_id}/activity", response_model=ActivityList, responses=problem_responses(404)
)
def activity(group_id: GroupId, app: AppDep, user: CurrentUser, page: PageDep) -> ActivityList:
    with app.db.read() as s:
        rows, more = sharing.list_activity(
            s, group_id, user_id=user.id, limit=page.limit, starting_after=page.starting_after
        )
    return ActivityList(
        data=[
            ActivityRead(
                id=a.id,
                type=a.type,
                actor_member_id=a.actor_member_id,
                subject_id=a.subject_id,
                data=a.data,
                created_at=a.created_at,
            )
            for a in rows
        ],
        has_more=more,
    )


@router.get("/friends", response_model=FriendList)
def friends(app: AppDep, user: CurrentUser) -> FriendList:
    with app.db.read() as s:
        rows = sharing.friends(s, user_id=user.id)
    return FriendList(
        data=[
            FriendRead(
                user_id=f.user_id,
                email=f.email,
                name=f.name,
                balances=[
                    CurrencyAmount(currency=c, amount=a) for c, a in sorted(f.balances.items())
                ],
            )
            for f in rows
        ]
    )


@router.post(
    "/friends/expenses",
    status_code=201,
    response_model=DirectExpenseRead,
    responses=problem_responses(422),
)
def create_direct_expense(
    body: DirectExpenseCreate, app: AppDep, user: CurrentUser
) -> DirectExpenseRead:
    with app.db.transaction() as s:
        _, e = sharing.create_direct_expense(
            s,
            user_id=user.id,
            with_email=body.with_,
            description=body.description,
            amount=body.amount,
            currency=body.currency,
            date=body.date,
            category=body.category,
            notes=body.notes,
            paid_by=body.payers(),
            split=body.split.to_split() if body.split else None,
            now=app.clock.now(),
        )
    return DirectExpenseRead(**ExpenseRead.of(e).model_dump())


# --- reports ---


@router.get(
    "/groups/{group_id}/reports", response_model=ReportRead, responses=problem_responses(404)
)
def group_report(
    group_id: GroupId,
    app: AppDep,
    user: CurrentUser,
    by: Annotated[Literal["category", "member", "month"], Query()] = "category",
) -> ReportRead:
    with app.db.read() as s:
        r = reports.group_report(s, group_id, user_id=user.id, by=by)
    return ReportRead(
        by=by,
        currency=r.currency,
        total=r.total,
        rows=[
            ReportRow(
                key=x.key,
                amount=x.amount,
                count=x.count,
                name=x.name,
                paid=x.paid,
                share=x.share,
                net=x.net,
                settlements_paid=x.settlements_paid,
                settlements_received=x.settlements_received,
            )
            for x in r.rows
        ],
    )


# --- exchange rates (administrators) ---


@router.put(
    "/admin/fx-rates",
    response_model=FxRatesWritten,
    tags=["admin"],
    responses=problem_responses(403, 422),
)
def put_fx_rates(body: FxRatesPut, app: AppDep, admin: CurrentAdmin) -> FxRatesWritten:
    """Insert or replace rates (one per day and pair): 1 base = rate quote."""
    rows = fx.check_rows((r.date, r.base, r.quote, r.rate) for r in body.rates)
    with app.db.transaction() as s:
        count = fx.upsert_rates(s, rows, now=app.clock.now())
    return FxRatesWritten(count=count)


@router.get(
    "/admin/fx-rates", response_model=FxRateList, tags=["admin"], responses=problem_responses(403)
)
def list_fx_rates(
    app: AppDep,
    admin: CurrentAdmin,
    base: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    quote: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FxRateList:
    """Rates by pair, newest day first."""
    with app.db.read() as s:
        rows, more = fx.list_rates(s, base=base, quote=quote, limit=limit)
    return FxRateList(
        data=[FxRateRead(date=r.date, base=r.base, quote=r.quote, rate=r.rate) for r in rows],
        has_more=more,
    )


# --- export and Splitwise import ---

_IMPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": GroupImportCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "name", "me"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "name": {"type": "string", "maxLength": 200},
                    "me": {"type": "string", "maxLength": 200},
                    "currency": {"type": "string"},
                    "members": {"type": "string", "description": 'JSON {"Name": "email"}'},
                    "rates": {"type": "string", "description": 'JSON {"USD": "0.92"}'},
                },
            }
        },
    },
}


@router.get(
    "/groups/{group_id}/export",
    responses={
        200: {
            "description": "The group as a Splitwise-shaped CSV or as JSON (an attachment).",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": GroupExportRead.model_json_schema()},
            },
        },
        **problem_responses(404),
    },
    response_class=Response,
)
def export_group(
    group_id: GroupId,
    app: AppDep,
    user: CurrentUser,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
) -> Response:
    with app.db.read() as s:
        data = export.export_group(s, group_id, user_id=user.id)
    disposition = {"Content-Disposition": f'attachment; filename="{export.filename(data, format)}"'}
    if format == "json":
        return JSONResponse(export.to_json(data), headers=disposition)
    return Response(export.to_csv(data), media_type="text/csv; charset=utf-8", headers=disposition)


def _import_body(raw: bytes, content_type: str) -> GroupImportCreate:
    """The request as a GroupImportCreate, from JSON or multipart/form-data."""
    try:
        if content_type.startswith("multipart/form-data"):
            return GroupImportCreate.model_validate(_form(raw, content_type))
        return GroupImportCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        ) from exc


def _form(raw: bytes, content_type: str) -> dict[str, object]:
    """multipart/form-data fields (the standard library's MIME parser; no extra package).
    ``file`` (or ``csv``) is the CSV; ``members``/``rates`` are JSON objects, or repeated
    ``member``/``rate`` fields ``Name=email`` / ``USD=0.92``."""
    message = BytesParser(policy=email_policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise ProblemError(422, "malformed_form", "the multipart body could not be parsed")
    fields: dict[str, object] = {}
    pairs: dict[str, dict[str, str]] = {"members": {}, "rates": {}}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        try:
            value = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProblemError(422, "malformed_form", f"{name}: not UTF-8 text") from exc
        if name in ("file", "csv"):
            fields["csv"] = value
        elif name in ("members", "rates"):
            try:
                fields[name] = json.loads(value)
            except ValueError as exc:
                raise ProblemError(422, "malformed_form", f"{name}: not a JSON object") from exc
        elif name in ("member", "rate"):
            key, _, val = value.partition("=")
            pairs["members" if name == "member" else "rates"][key.strip()] = val.strip()
        elif name in ("name", "me", "currency"):
            fields[name] = value
        else:
            fields[name] = value  # refused by the model (extra fields are forbidden)
    for key, found in pairs.items():
        if found and key not in fields:
            fields[key] = found
    return fields


@router.post(
    "/groups/import",
    status_code=201,
    response_model=GroupImportRead,
    responses=problem_responses(422),
    openapi_extra={"requestBody": _IMPORT_BODY},
)
async def import_group(request: Request, app: AppDep, user: CurrentUser) -> GroupImportRead:
    body = _import_body(await request.body(), request.headers.get("content-type", ""))
    return await run_in_threadpool(_import, app, user.id, body)


def _import(app: AppDep, user_id: str, body: GroupImportCreate) -> GroupImportRead:
    with app.db.transaction() as s:
        result = importer.import_splitwise(
            s,
            user_id=user_id,
            name=body.name,
            text=body.csv,
            me=body.me,
            members=body.members,
            currency=body.currency,
            rates=body.rates,
            now=app.clock.now(),
        )
        group = sharing.get_group(s, result.group_id, user_id=user_id)
        return GroupImportRead(
            group=_group_read(s, group, user_id),
            imported=ImportCounts(
                expenses=result.expenses, payments=result.payments, skipped=result.skipped
            ),
            warnings=result.warnings,
        )
