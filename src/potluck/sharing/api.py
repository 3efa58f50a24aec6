"""HTTP routes of sharing (people, JWT). A group, its expenses, comments, balances,
settle-up and activity are visible to the group's members only: 404 for anyone else."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from potluck.api.deps import AppDep, CurrentUser
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.sharing import service as sharing
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
    GroupCreate,
    GroupList,
    GroupRead,
    MemberCreate,
    MemberRead,
    PaymentRead,
    SettlementCreate,
    SettlementRead,
    SettleUpRead,
)

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
            date=body.date,
            category=body.category,
            notes=body.notes,
            paid_by=body.payers(),
            split=body.split.to_split() if body.split else None,
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
    responses=problem_responses(404),
)
def record_settlement(
    group_id: GroupId, body: SettlementCreate, app: AppDep, user: CurrentUser
) -> SettlementRead:
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
