"""Expenses, their versions in the ledger, and comments.

An expense version is posted to the ledger's ``iou`` book as ONE atomic batch: each payer is
credited with what they paid (group ``iou_expenses`` account → payer) and each person is
debited with what they owe (person → ``iou_expenses``). Client ids are derived from the
expense id and version (``<exp>-v<version>-p<i>`` / ``-o<i>``), so a retry cannot post twice;
a reversal uses ``-rp<i>`` / ``-ro<i>``. Every change bumps ``version`` and is kept in
``sharing_expense_history``:

* edit: reverse the posted version and post the new one, in one transaction;
* delete: reverse the posted version (nothing is posted while deleted);
* restore: post the restored content again under the new version.

Another currency than the group's (``currency`` + ``fx_rate``, or a rate from the table in
``sharing.fx``): the request's amount, payers and split are kept as entered
(``original_amount``, ``original_currency``, ``original_paid_by``, ``split``) and the expense
is converted once to the group currency (``amount``, ``paid_by``, ``owed``), where it is split
so the shares still sum exactly.

The expense row is locked (``FOR UPDATE``) for a change, so two concurrent edits serialise.
Before the member list is read, the group row is key-share locked (``groups.lock_group``), so
a concurrent removal of a member waits (or is waited for) and never leaves a balance.

Creating an expense costs, besides the ledger's batch: one query for the group and its
members with their accounts (two on PostgreSQL: the group lock first) and one Core
``INSERT`` each for the expense, its history row and its activity row (plus the event).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from potluck.bus import publish
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.money import is_currency
from potluck.sharing import fx
from potluck.sharing.groups import (
    group_not_found,
    group_scope,
    lock_group,
    membership,
    record_activity,
)
from potluck.sharing.models import (
    Activity,
    Expense,
    ExpenseComment,
    ExpenseVersion,
    SharingGroup,
    SharingMember,
)
from potluck.splits.expense import ExpenseSplit, Item, Share, check_payers, split_expense

DESCRIPTION_MAX = 500
CATEGORY_MAX = 64
NOTES_MAX = 5000
COMMENT_MAX = 2000
DEFAULT_CATEGORY = "general"


@dataclass(frozen=True, slots=True)
class CommentView:
    id: str
    expense_id: str
    member_id: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VersionView:
    version: int
    action: str  # created | updated | deleted | restored
    user_id: str
    snapshot: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExpenseView:
    id: str
    group_id: str
    version: int
    description: str
    amount: int
    currency: str
    date: date
    category: str
    notes: str
    paid_by: list[tuple[str, int]]
    split: dict[str, Any]
    owed: list[tuple[str, int]]
    created_by: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    original_amount: int | None = None
    original_currency: str | None = None
    fx_rate: str | None = None
    repeat: str | None = None
    series_id: str | None = None


def expense_not_found(expense_id: str) -> DomainError:
    return DomainError("expense_not_found", f"no expense {expense_id}", status=404)


# --- the split, as stored (JSON) and as the pure splitter takes it ---


def split_to_doc(split: ExpenseSplit) -> dict[str, Any]:
    return {
        "method": split.method,
        "shares": [{"user_id": s.user_id, "value": s.value} for s in split.shares],
        "items": [
            {"amount": i.amount, "user_ids": list(i.user_ids), "description": i.description}
            for i in split.items
        ],
        "tax": split.tax,
        "tip": split.tip,
    }


def split_from_doc(doc: dict[str, Any]) -> ExpenseSplit:
    return ExpenseSplit(
        method=doc["method"],
        shares=tuple(Share(s["user_id"], s.get("value")) for s in doc.get("shares", [])),
        items=tuple(
            Item(i["amount"], tuple(i["user_ids"]), i.get("description", ""))
            for i in doc.get("items", [])
        ),
        tax=doc.get("tax", 0),
        tip=doc.get("tip", 0),
    )


def _pairs(rows: Any) -> list[tuple[str, int]]:
    return [(str(m), int(a)) for m, a in rows]


def expense_view(e: Expense) -> ExpenseView:
    return ExpenseView(
        e.id,
        e.group_id,
        e.version,
        e.description,
        e.amount,
        e.currency,
        e.date,
        e.category,
        e.notes,
        _pairs(e.paid_by),
        dict(e.split),
        _pairs(e.owed),
        e.created_by,
        utc(e.created_at),
        utc(e.updated_at),
        utc(e.deleted_at) if e.deleted_at is not None else None,
        e.original_amount,
        e.original_currency,
        e.fx_rate,
        e.repeat,
        e.series_id,
    )


def _snapshot(e: Expense) -> dict[str, Any]:
    return {
        "description": e.description,
        "amount": e.amount,
        "currency": e.currency,
        "date": e.date.isoformat(),
        "category": e.category,
        "notes": e.notes,
        "paid_by": [[m, a] for m, a in _pairs(e.paid_by)],
        "split": dict(e.split),
        "owed": [[m, a] for m, a in _pairs(e.owed)],
        "deleted": e.deleted_at is not None,
        "original_amount": e.original_amount,
        "original_currency": e.original_currency,
        "fx_rate": e.fx_rate,
        "original_paid_by": e.original_paid_by,
    }


# --- validation (before any write) ---


def _text(value: str, field: str, limit: int, *, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise DomainError("validation_error", f"{field} must not be empty", field=field)
    if len(value) > limit:
        raise DomainError(
            "validation_error", f"{field} must have at most {limit} characters", field=field
        )
    return value


@dataclass(frozen=True, slots=True)
class _Computed:
    paid_by: list[tuple[str, int]]
    owed: list[tuple[str, int]]


def _compute(
    *,
    amount: int,
    split: ExpenseSplit,
    paid_by: list[tuple[str, int]],
    members: list[str],
) -> _Computed:
    check_payers(amount, paid_by, members)
    owed = split_expense(amount, split, members)
    return _Computed(list(paid_by), [(m, a) for m, a in owed if a != 0])


@dataclass(frozen=True, slots=True)
class _Members:
    """A group's member list as an expense is posted against it (read after the group lock)."""

    active: list[str]  # the current members' ids, ascending
    accounts: dict[str, str]  # every member's (removed ones too) iou account id
    by_user: dict[str, str]  # user id → current member id


def _posting_group(s: Session, group_id: str) -> tuple[SharingGroup, _Members]:
    """The group, locked for posting (``lock_group``, PostgreSQL), and its members with their
    accounts in one query; 404 ``group_not_found`` if there is no such group."""
    if s.get_bind().dialect.name == "postgresql":
        lock_group(s, group_id)  # before the member list is read, in its own statement
    group_columns = list(SharingGroup.__table__.columns)
    # Core, on the session's connection: the ORM's entity loading cost more than the query.
    rows = (
        s.connection()
        .execute(
            select(
                *group_columns,
                SharingMember.id.label("member_id"),
                SharingMember.account_id.label("member_account_id"),
                SharingMember.user_id.label("member_user_id"),
                SharingMember.removed_at.label("member_removed_at"),
            )
            .join(SharingMember, SharingMember.group_id == SharingGroup.id)
            .where(SharingGroup.id == group_id)
            .order_by(SharingMember.id)
        )
        .all()
    )
    if not rows:
        raise group_not_found(group_id)
    members = _Members([], {}, {})
    for row in rows:
        member_id = row.member_id
        members.accounts[member_id] = row.member_account_id
        if row.member_removed_at is None:
            members.active.append(member_id)
            if row.member_user_id is not None:
                members.by_user[row.member_user_id] = member_id
    first = rows[0]
    # a transient copy, read only (not added to the session)
    group = SharingGroup(**{c.key: first[i] for i, c in enumerate(group_columns)})
    return group, members


def _member_of(s: Session, group_id: str, *, user_id: str) -> tuple[SharingGroup, str, _Members]:
    """The group (locked for posting), the caller's current member id and the member list;
    404 ``group_not_found`` for a non-member."""
    group, members = _posting_group(s, group_id)
    me = members.by_user.get(user_id)
    if me is None:
        raise group_not_found(group_id)
    return group, me, members


def _check_currency(group: SharingGroup, currency: str | None) -> str:
    if currency is None:
        return group.currency
    if not isinstance(currency, str) or not is_currency(currency):
        raise DomainError(
            "unknown_currency", f"'{currency}' is not an ISO 4217 currency code", field="currency"
        )
    return currency


def _rate(
    s: Session,
    group: SharingGroup,
    currency: str,
    fx_rate: Decimal | str | None,
    *,
    on: date,
    kept: str | None = None,
) -> Decimal | None:
    """The rate from ``currency`` to the group's: the request's, else ``kept`` (the stored
    one, on an update that keeps the currency), else the table's latest on or before ``on``.
    None for the group's own currency (a rate other than 1 is then refused)."""
    if currency == group.currency:
        if fx_rate is not None and fx.parse_rate(fx_rate) != 1:
            raise DomainError(
                "fx_rate_not_applicable",
                f"the expense is in the group's currency ({group.currency}): no rate applies",
                field="fx_rate",
            )
        return None
    if fx_rate is not None:
        return fx.parse_rate(fx_rate)
    if kept is not None:
        return Decimal(kept)
    return fx.lookup_rate(s, currency, group.currency, on)


def _convert_split(split: ExpenseSplit, original: int, converted: int) -> ExpenseSplit:
    """The split with its money values (exact shares, items, tax, tip, adjustments) in the
    group currency: exact shares and items + tax + tip are spread over the converted total
    (largest remainder), so they still sum exactly; adjustments are converted one by one."""
    if split.method == "exact":
        values = fx.spread(converted, [int(sh.value or 0) for sh in split.shares])
        return replace(
            split,
            shares=tuple(replace(sh, value=v) for sh, v in zip(split.shares, values, strict=True)),
        )
    if split.method == "itemized":
        parts = fx.spread(converted, [i.amount for i in split.items] + [split.tax, split.tip])
        items = tuple(replace(i, amount=a) for i, a in zip(split.items, parts, strict=False))
        return replace(split, items=items, tax=parts[-2], tip=parts[-1])
    if split.method == "adjustment":
        ratio = Decimal(converted) / Decimal(original) if original else Decimal(0)
        shares = []
        for sh in split.shares:
            v = int(sh.value or 0)
            c = int((Decimal(abs(v)) * ratio).to_integral_value())
            shares.append(replace(sh, value=c if v >= 0 else -c))
        return replace(split, shares=tuple(shares))
    return split  # equal, percent, shares: weights, no currency


@dataclass(frozen=True, slots=True)
class _Posted:
    """An expense as entered and as posted (in the group currency)."""

    amount: int
    paid_by: list[tuple[str, int]]
    owed: list[tuple[str, int]]
    original_amount: int | None
    original_currency: str | None
    fx_rate: str | None
    original_paid_by: list[tuple[str, int]] | None


def _post_form(
    group: SharingGroup,
    *,
    amount: int,
    currency: str,
    rate: Decimal | None,
    split: ExpenseSplit,
    paid_by: list[tuple[str, int]],
    members: list[str],
) -> _Posted:
    """Validate the expense as entered, then convert it to the group currency (if needed)
    and split it there."""
    entered = _compute(amount=amount, split=split, paid_by=paid_by, members=members)
    if rate is None:
        return _Posted(amount, entered.paid_by, entered.owed, None, None, None, None)
    converted = fx.check_converted(
        fx.convert(amount, rate, from_currency=currency, to_currency=group.currency)
    )
    payers = fx.spread(converted, [a for _, a in entered.paid_by])
    posted = _compute(
        amount=converted,
        split=_convert_split(split, amount, converted),
        paid_by=[(m, a) for (m, _), a in zip(entered.paid_by, payers, strict=True) if a != 0],
        members=members,
    )
    return _Posted(
        converted,
        posted.paid_by,
        posted.owed,
        amount,
        currency,
        fx.rate_text(rate),
        entered.paid_by,
    )


# --- the ledger side ---


def _ops(
    accounts: dict[str, str],
    group: SharingGroup,
    e: Expense,
    version: int,
    *,
    reverse: bool,
) -> list[ledger.Operation]:
    clearing = group.expenses_account_id
    prefix = f"{e.id}-v{version}-{'r' if reverse else ''}"
    ops: list[ledger.Operation] = []
    for i, (member_id, paid) in enumerate(_pairs(e.paid_by)):
        debit, credit = clearing, accounts[member_id]
        if reverse:
            debit, credit = credit, debit
        ops.append(
            ledger.NewTransfer(
                debit,
                credit,
                paid,
                client_id=f"{prefix}p{i}",
                currency=e.currency,
                code="iou_paid",
            )
        )
    for i, (member_id, owes) in enumerate(_pairs(e.owed)):
        debit, credit = accounts[member_id], clearing
        if reverse:
            debit, credit = credit, debit
        ops.append(
            ledger.NewTransfer(
                debit,
                credit,
                owes,
                client_id=f"{prefix}o{i}",
                currency=e.currency,
                code="iou_owed",
            )
        )
    return ops


def _event(e: Expense, *, user_id: str) -> dict[str, Any]:
    return {
        "platform_id": None,
        "group_id": e.group_id,
        "expense_id": e.id,
        "version": e.version,
        "description": e.description,
        "amount": e.amount,
        "currency": e.currency,
        "original_amount": e.original_amount,
        "original_currency": e.original_currency,
        "fx_rate": e.fx_rate,
        "series_id": e.series_id,
        "paid_by": [{"member_id": m, "amount": a} for m, a in _pairs(e.paid_by)],
        "owed": [{"member_id": m, "amount": a} for m, a in _pairs(e.owed)],
        "by_user_id": user_id,
    }


def _record(
    s: Session, e: Expense, *, action: str, user_id: str, actor: str | None, now: datetime
) -> None:
    """The history row, the activity row and the event of a change of ``e`` (whose row is
    written already): one Core ``INSERT`` each, no unit of work."""
    conn = s.connection()
    conn.execute(
        insert(ExpenseVersion),
        {
            "expense_id": e.id,
            "version": e.version,
            "action": action,
            "snapshot": _snapshot(e),
            "user_id": user_id,
            "created_at": now,
        },
    )
    conn.execute(
        insert(Activity),
        {
            "id": new_id("act"),
            "group_id": e.group_id,
            "type": f"expense.{action}",
            "actor_member_id": actor,
            "subject_id": e.id,
            "data": {"description": e.description, "amount": e.amount, "currency": e.currency}
            | (
                {
                    "original_amount": e.original_amount,
                    "original_currency": e.original_currency,
                    "fx_rate": e.fx_rate,
                }
                if e.original_currency
                else {}
            ),
            "created_at": now,
        },
    )
    publish(s, f"expense.{action}", _event(e, user_id=user_id), now=now)


# --- use cases ---


def create_expense(
    session: Session,
    *,
    user_id: str,
    group_id: str,
    description: str,
    amount: int,
    currency: str | None = None,
    fx_rate: Decimal | str | None = None,
    date: date | None = None,
    category: str | None = None,
    notes: str = "",
    paid_by: list[tuple[str, int]] | None = None,
    split: ExpenseSplit | None = None,
    repeat: str | None = None,
    now: datetime,
) -> ExpenseView:
    """A new expense, posted to the ledger.

    ``amount``, ``paid_by`` and exact/itemized values are in ``currency`` (default: the
    group's). Another currency is converted with ``fx_rate`` (an exact decimal: 1 unit of
    ``currency`` = ``fx_rate`` group units; a ``Decimal`` or a string, never a float), or
    without it with the rates table's latest rate on or before ``date`` (422
    ``fx_rate_missing`` naming the pair if there is none). ``repeat`` (weekly, fortnightly,
    monthly, yearly) makes it the first of a recurring series.
    """
    group, me, members = _member_of(session, group_id, user_id=user_id)
    prepared = _prepare(
        session,
        group=group,
        members=members,
        actor_id=me,
        description=description,
        amount=amount,
        currency=currency,
        fx_rate=fx_rate,
        date=date,
        category=category,
        notes=notes,
        paid_by=paid_by,
        split=split,
        repeat=repeat,
        now=now,
    )
    return _insert(session, prepared, actor_id=me, user_id=user_id, series_id=None, now=now)


@dataclass(frozen=True, slots=True)
class PreparedExpense:
    """A new expense checked and converted, nothing written yet (``prepare_expense``)."""

    group: SharingGroup
    description: str
    category: str
    notes: str
    date: date
    split: ExpenseSplit
    posted: _Posted
    repeat: str | None
    accounts: dict[str, str]  # member id → iou account id


def prepare_expense(
    session: Session,
    *,
    group: SharingGroup,
    actor: SharingMember | None,
    description: str,
    amount: int,
    currency: str | None = None,
    fx_rate: Decimal | str | None = None,
    date: date | None = None,
    category: str | None = None,
    notes: str = "",
    paid_by: list[tuple[str, int]] | None = None,
    split: ExpenseSplit | None = None,
    repeat: str | None = None,
    now: datetime,
) -> PreparedExpense:
    """Every check of a new expense (a ``DomainError`` if refused), and its conversion;
    writes nothing but the group lock (``groups.lock_group``)."""
    group, members = _posting_group(session, group.id)
    return _prepare(
        session,
        group=group,
        members=members,
        actor_id=actor.id if actor is not None else None,
        description=description,
        amount=amount,
        currency=currency,
        fx_rate=fx_rate,
        date=date,
        category=category,
        notes=notes,
        paid_by=paid_by,
        split=split,
        repeat=repeat,
        now=now,
    )


def _prepare(
    session: Session,
    *,
    group: SharingGroup,
    members: _Members,
    actor_id: str | None,
    description: str,
    amount: int,
    currency: str | None = None,
    fx_rate: Decimal | str | None = None,
    date: date | None = None,
    category: str | None = None,
    notes: str = "",
    paid_by: list[tuple[str, int]] | None = None,
    split: ExpenseSplit | None = None,
    repeat: str | None = None,
    now: datetime,
) -> PreparedExpense:
    from potluck.sharing import recurring

    description = _text(description, "description", DESCRIPTION_MAX, required=True)
    category = _text(category or DEFAULT_CATEGORY, "category", CATEGORY_MAX, required=True)
    notes = _text(notes, "notes", NOTES_MAX, required=False)
    if repeat is not None:
        recurring.check_repeat(repeat)
    currency = _check_currency(group, currency)
    day = date or now.date()
    rate = _rate(session, group, currency, fx_rate, on=day)
    if paid_by is None:
        if actor_id is None:
            raise DomainError("paid_by_required", "say who paid", field="paid_by")
        paid_by = [(actor_id, amount)]
    split = split or ExpenseSplit("equal")
    posted = _post_form(
        group,
        amount=amount,
        currency=currency,
        rate=rate,
        split=split,
        paid_by=paid_by,
        members=members.active,
    )
    return PreparedExpense(
        group, description, category, notes, day, split, posted, repeat, members.accounts
    )


def insert_expense(
    session: Session,
    prepared: PreparedExpense,
    *,
    actor: SharingMember | None,
    user_id: str,
    series_id: str | None = None,
    now: datetime,
) -> ExpenseView:
    """Write a prepared expense and post it (recurring occurrences come here with ``actor``
    None when the series' creator has left)."""
    return _insert(
        session,
        prepared,
        actor_id=actor.id if actor is not None else None,
        user_id=user_id,
        series_id=series_id,
        now=now,
    )


def _insert(
    session: Session,
    prepared: PreparedExpense,
    *,
    actor_id: str | None,
    user_id: str,
    series_id: str | None,
    now: datetime,
) -> ExpenseView:
    from potluck.sharing import recurring

    group, posted = prepared.group, prepared.posted
    row: dict[str, Any] = {
        "id": new_id("exp"),
        "group_id": group.id,
        "version": 1,
        "posted_version": 1,
        "description": prepared.description,
        "amount": posted.amount,
        "currency": group.currency,
        "date": prepared.date,
        "category": prepared.category,
        "notes": prepared.notes,
        "paid_by": [[m, a] for m, a in posted.paid_by],
        "split": split_to_doc(prepared.split),
        "owed": [[m, a] for m, a in posted.owed],
        "created_by": user_id,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "original_amount": posted.original_amount,
        "original_currency": posted.original_currency,
        "fx_rate": posted.fx_rate,
        "original_paid_by": _doc_pairs(posted.original_paid_by),
        "series_id": series_id,
        "repeat": None,
    }
    # A Core INSERT: the row is not kept in the session (``e`` is a transient copy).
    session.connection().execute(insert(Expense), row)
    e = Expense(**row)
    # History, activity and event first, the ledger last: its batch locks the group's
    # clearing account (every expense of the group posts to it) until the commit, so
    # concurrent expenses of one group queue on that lock; nothing else waits in it.
    _record(session, e, action="created", user_id=user_id, actor=actor_id, now=now)
    ledger.create_transfers(
        session,
        _ops(prepared.accounts, group, e, 1, reverse=False),
        now=now,
        scope=group_scope(group.id),
    )
    if prepared.repeat is not None:
        persistent = session.get(Expense, e.id)
        assert persistent is not None
        recurring.start(session, persistent, prepared.repeat, now=now)
        session.flush()
        e = persistent
    return expense_view(e)


def _doc_pairs(pairs: list[tuple[str, int]] | None) -> list[list[Any]] | None:
    return None if pairs is None else [[m, a] for m, a in pairs]


def _locked(
    s: Session, expense_id: str, *, user_id: str
) -> tuple[SharingGroup, str, _Members, Expense]:
    """The expense row (``FOR UPDATE``), its group (locked for posting), the caller's member
    id and the member list; 404 ``expense_not_found`` for a non-member."""
    e = s.execute(select(Expense).where(Expense.id == expense_id).with_for_update()).scalar()
    if e is None:
        raise expense_not_found(expense_id)
    try:
        group, me, members = _member_of(s, e.group_id, user_id=user_id)
    except DomainError as exc:
        raise expense_not_found(expense_id) from exc
    return group, me, members, e


UNCHANGED: Any = object()


def update_expense(
    session: Session,
    *,
    user_id: str,
    expense_id: str,
    now: datetime,
    description: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    fx_rate: Decimal | str | None = None,
    date: date | None = None,
    category: str | None = None,
    notes: str | None = None,
    paid_by: list[tuple[str, int]] | None = None,
    split: ExpenseSplit | None = None,
    repeat: str | None = UNCHANGED,
) -> ExpenseView:
    """Change an expense: the old version is reversed and the new one posted, atomically.

    ``amount``, ``paid_by`` and the split are in the expense's currency as entered
    (``original_currency`` when it was converted). Without ``paid_by``, a new amount goes to
    the single payer (several payers: 422 ``paid_by_required``); without ``split``, the
    stored split is used again. A new ``currency`` needs the ``amount`` in it (422
    ``amount_required``) and takes ``fx_rate`` or the table's rate on the expense date; the
    same currency keeps the stored rate unless ``fx_rate`` is given. ``repeat`` (given, even
    None) changes or stops the series. A change that changes nothing adds no version.
    """
    from potluck.sharing import recurring

    group, me, members, e = _locked(session, expense_id, user_id=user_id)
    if e.deleted_at is not None:
        raise DomainError("expense_deleted", "restore the expense before changing it", status=409)
    if repeat is not UNCHANGED and repeat is not None:
        recurring.check_repeat(repeat)
    old_currency = e.original_currency or e.currency
    old_amount = e.original_amount if e.original_amount is not None else e.amount
    old_paid = _pairs(e.original_paid_by if e.original_currency else e.paid_by)
    new_currency = _check_currency(group, currency) if currency is not None else old_currency
    if new_currency != old_currency and amount is None:
        raise DomainError(
            "amount_required",
            f"give the amount in {new_currency} when changing the currency",
            field="amount",
        )
    new_amount = amount if amount is not None else old_amount
    if paid_by is None:
        if new_amount == old_amount:
            paid_by = old_paid
        elif len(old_paid) == 1:
            paid_by = [(old_paid[0][0], new_amount)]
        else:
            raise DomainError(
                "paid_by_required",
                "the expense has several payers: say what each paid of the new amount",
                field="paid_by",
            )
    new_split = split or split_from_doc(e.split)
    rate = _rate(
        session,
        group,
        new_currency,
        fx_rate,
        on=date or e.date,
        kept=e.fx_rate if new_currency == old_currency else None,
    )
    posted = _post_form(
        group,
        amount=new_amount,
        currency=new_currency,
        rate=rate,
        split=new_split,
        paid_by=paid_by,
        members=members.active,
    )
    if description is not None:
        description = _text(description, "description", DESCRIPTION_MAX, required=True)
    if category is not None:
        category = _text(category, "category", CATEGORY_MAX, required=True)
    if notes is not None:
        notes = _text(notes, "notes", NOTES_MAX, required=False)
    if repeat is not UNCHANGED:
        recurring.change(session, e, repeat, now=now)
    unchanged = (
        posted.amount == e.amount
        and [[m, a] for m, a in posted.paid_by] == [list(p) for p in e.paid_by]
        and [[m, a] for m, a in posted.owed] == [list(o) for o in e.owed]
        and split_to_doc(new_split) == dict(e.split)
        and posted.original_amount == e.original_amount
        and posted.original_currency == e.original_currency
        and posted.fx_rate == e.fx_rate
        and _doc_pairs(posted.original_paid_by) == e.original_paid_by
        and description in (None, e.description)
        and category in (None, e.category)
        and notes in (None, e.notes)
        and date in (None, e.date)
    )
    if unchanged:  # nothing to change: no new version, nothing posted
        session.flush()
        return expense_view(e)
    # everything is valid: reverse the posted version, post the new one (one batch)
    old_version = e.posted_version
    ops: list[ledger.Operation] = []
    if old_version is not None:
        ops += _ops(members.accounts, group, e, old_version, reverse=True)
    e.version += 1
    e.posted_version = e.version
    e.amount = posted.amount
    e.paid_by = [[m, a] for m, a in posted.paid_by]
    e.owed = [[m, a] for m, a in posted.owed]
    e.split = split_to_doc(new_split)
    e.original_amount = posted.original_amount
    e.original_currency = posted.original_currency
    e.fx_rate = posted.fx_rate
    e.original_paid_by = _doc_pairs(posted.original_paid_by)
    if description is not None:
        e.description = description
    if category is not None:
        e.category = category
    if notes is not None:
        e.notes = notes
    if date is not None:
        e.date = date
    e.updated_at = now
    ops += _ops(members.accounts, group, e, e.version, reverse=False)
    ledger.create_transfers(session, ops, now=now, scope=group_scope(group.id))
    _record(session, e, action="updated", user_id=user_id, actor=me, now=now)
    session.flush()
    return expense_view(e)


def delete_expense(
    session: Session, *, user_id: str, expense_id: str, now: datetime
) -> ExpenseView:
    group, me, members, e = _locked(session, expense_id, user_id=user_id)
    if e.deleted_at is not None:
        raise DomainError("expense_deleted", "the expense is already deleted", status=409)
    assert e.posted_version is not None
    ops = _ops(members.accounts, group, e, e.posted_version, reverse=True)
    ledger.create_transfers(session, ops, now=now, scope=group_scope(group.id))
    e.version += 1
    e.posted_version = None
    e.deleted_at = now
    e.updated_at = now
    _record(session, e, action="deleted", user_id=user_id, actor=me, now=now)
    session.flush()
    return expense_view(e)


def restore_expense(
    session: Session, *, user_id: str, expense_id: str, now: datetime
) -> ExpenseView:
    group, me, members, e = _locked(session, expense_id, user_id=user_id)
    if e.deleted_at is None:
        raise DomainError("expense_not_deleted", "the expense is not deleted", status=409)
    e.version += 1
    e.posted_version = e.version
    e.deleted_at = None
    e.updated_at = now
    ops = _ops(members.accounts, group, e, e.version, reverse=False)
    ledger.create_transfers(session, ops, now=now, scope=group_scope(group.id))
    _record(session, e, action="restored", user_id=user_id, actor=me, now=now)
    session.flush()
    return expense_view(e)


def get_expense(session: Session, expense_id: str, *, user_id: str) -> ExpenseView:
    e = session.get(Expense, expense_id)
    if e is None:
        raise expense_not_found(expense_id)
    try:
        membership(session, e.group_id, user_id=user_id)
    except DomainError as exc:
        raise expense_not_found(expense_id) from exc
    return expense_view(e)


def expense_history(session: Session, expense_id: str) -> list[VersionView]:
    rows = session.execute(
        select(ExpenseVersion)
        .where(ExpenseVersion.expense_id == expense_id)
        .order_by(ExpenseVersion.version)
    ).scalars()
    return [
        VersionView(v.version, v.action, v.user_id, dict(v.snapshot), utc(v.created_at))
        for v in rows
    ]


def expense_comments(session: Session, expense_id: str) -> list[CommentView]:
    rows = session.execute(
        select(ExpenseComment)
        .where(ExpenseComment.expense_id == expense_id)
        .order_by(ExpenseComment.id)
    ).scalars()
    return [CommentView(c.id, c.expense_id, c.member_id, c.text, utc(c.created_at)) for c in rows]


def list_expenses(
    session: Session,
    *,
    user_id: str,
    group_id: str,
    limit: int,
    starting_after: str | None = None,
    include_deleted: bool = False,
) -> tuple[list[ExpenseView], bool]:
    """The group's expenses, newest first."""
    group, _ = membership(session, group_id, user_id=user_id)
    query = select(Expense).where(Expense.group_id == group.id)
    if not include_deleted:
        query = query.where(Expense.deleted_at.is_(None))
    if starting_after is not None:
        if (
            session.scalar(
                select(Expense.id).where(Expense.id == starting_after, Expense.group_id == group.id)
            )
            is None
        ):
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no expense {starting_after} in this group",
                field="starting_after",
            )
        query = query.where(Expense.id < starting_after)
    rows = session.execute(query.order_by(Expense.id.desc()).limit(limit + 1)).scalars().all()
    return [expense_view(e) for e in rows[:limit]], len(rows) > limit


def add_comment(
    session: Session, *, user_id: str, expense_id: str, text: str, now: datetime
) -> CommentView:
    e = session.get(Expense, expense_id)
    if e is None:
        raise expense_not_found(expense_id)
    try:
        _, me = membership(session, e.group_id, user_id=user_id)
    except DomainError as exc:
        raise expense_not_found(expense_id) from exc
    text = _text(text, "text", COMMENT_MAX, required=True)
    c = ExpenseComment(
        id=new_id("cmt"), expense_id=e.id, member_id=me.id, text=text, created_at=now
    )
    session.add(c)
    record_activity(
        session,
        group_id=e.group_id,
        type="comment.added",
        actor=me.id,
        subject=e.id,
        data={"comment_id": c.id, "text": text},
        now=now,
    )
    session.flush()
    return CommentView(c.id, c.expense_id, c.member_id, c.text, utc(c.created_at))
