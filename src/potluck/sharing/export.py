"""A group's export: Splitwise's CSV shape, or JSON with every detail.

The CSV is what Splitwise's "Export as spreadsheet" writes: a header ``Date, Description,
Category, Cost, Currency`` then one column per member (named by display name, made unique
with `` (2)``, `` (3)`` … when two members share a name); one row per expense and per
settlement (Category ``Payment``), oldest first, each member's cell holding that row's NET
effect on the member (paid − owed; a payment raises the payer's balance and lowers the
receiver's), so every row sums to zero; then a blank line and one ``Total balance`` row per
currency with each member's net. Amounts are written from minor units with the currency's
exponent (``12.50``, ``-3.33``, ``1500`` for JPY), never through a float. Deleted expenses are
left out. A row's currency is the currency the ledger holds it in (the group's), so the
Total balance row is exactly the group's balances; an expense entered in another currency
keeps its original amount, currency and rate in the JSON export.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.money import exponent
from potluck.sharing.balances import balances_of
from potluck.sharing.expenses import expense_view
from potluck.sharing.groups import (
    GroupView,
    _group_view,
    membership,
)
from potluck.sharing.models import Expense, Settlement

FORMATS = ("csv", "json")
CSV_HEADER = ("Date", "Description", "Category", "Cost", "Currency")
PAYMENT_CATEGORY = "Payment"
TOTAL_BALANCE = "Total balance"


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One line of the CSV: an expense or a payment."""

    kind: str  # expense | payment
    id: str
    date: date
    created_at: datetime
    description: str
    category: str
    cost: int
    currency: str
    nets: dict[str, int]  # member id → paid − owed (minor units of ``currency``)


@dataclass(frozen=True, slots=True)
class GroupExport:
    group: GroupView  # members include removed ones (old rows name them)
    columns: dict[str, str]  # member id → unique column name, in member order
    rows: list[ExportRow]
    expenses: list[dict[str, Any]]
    settlements: list[dict[str, Any]]
    balances: dict[str, int]  # member id → balance (ledger), group currency


def format_minor(amount: int, currency: str) -> str:
    """``-1234`` EUR → ``-12.34``; JPY ``1500`` → ``1500``. Integer arithmetic only."""
    digits = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def column_names(names: list[tuple[str, str]]) -> dict[str, str]:
    """member id → column name: the display name, `` (2)`` … added to later duplicates."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for member_id, name in names:
        base = name.strip() or member_id
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base} ({n})"
        taken.add(candidate.lower())
        out[member_id] = candidate
    return out


def _expense_doc(e: Expense) -> dict[str, Any]:
    v = expense_view(e)
    doc: dict[str, Any] = {
        "id": v.id,
        "date": v.date.isoformat(),
        "description": v.description,
        "category": v.category,
        "notes": v.notes,
        "amount": v.amount,
        "currency": v.currency,
        "paid_by": [{"member_id": m, "amount": a} for m, a in v.paid_by],
        "owed": [{"member_id": m, "amount": a} for m, a in v.owed],
        "split": v.split,
        "created_by": v.created_by,
        "created_at": v.created_at.isoformat(),
        "updated_at": v.updated_at.isoformat(),
        # entered in another currency (converted to the group's): what was entered
        "original_amount": v.original_amount,
        "original_currency": v.original_currency,
        "fx_rate": v.fx_rate,
    }
    return doc


def _nets(paid_by: Any, owed: Any) -> dict[str, int]:
    nets: dict[str, int] = defaultdict(int)
    for m, a in paid_by:
        nets[str(m)] += int(a)
    for m, a in owed:
        nets[str(m)] -= int(a)
    return dict(nets)


def export_group(session: Session, group_id: str, *, user_id: str) -> GroupExport:
    """Everything a member may export (404 ``group_not_found`` for anyone else)."""
    group_row, _ = membership(session, group_id, user_id=user_id)
    group = _group_view(session, group_row, include_removed=True)
    columns = column_names([(m.id, m.name) for m in group.members])
    expenses = (
        session.execute(
            select(Expense)
            .where(Expense.group_id == group.id, Expense.deleted_at.is_(None))
            .order_by(Expense.date, Expense.created_at, Expense.id)
        )
        .scalars()
        .all()
    )
    settlements = (
        session.execute(
            select(Settlement)
            .where(Settlement.group_id == group.id)
            .order_by(Settlement.created_at, Settlement.id)
        )
        .scalars()
        .all()
    )
    names = {m.id: columns[m.id] for m in group.members}
    rows = [
        ExportRow(
            "expense",
            e.id,
            e.date,
            e.created_at,
            e.description,
            e.category,
            e.amount,
            e.currency,
            _nets(e.paid_by, e.owed),
        )
        for e in expenses
    ]
    rows += [
        ExportRow(
            "payment",
            st.id,
            st.created_at.date(),
            st.created_at,
            f"{names[st.from_member_id]} paid {names[st.to_member_id]}",
            PAYMENT_CATEGORY,
            st.amount,
            st.currency,
            {st.from_member_id: st.amount, st.to_member_id: -st.amount},
        )
        for st in settlements
    ]
    # oldest first; a stable order for one day: expenses before payments, then by creation
    rows.sort(key=lambda r: (r.date, r.kind != "expense", r.created_at, r.id))
    return GroupExport(
        group=group,
        columns=columns,
        rows=rows,
        expenses=[_expense_doc(e) for e in expenses],
        settlements=[
            {
                "id": st.id,
                "from": st.from_member_id,
                "to": st.to_member_id,
                "amount": st.amount,
                "currency": st.currency,
                "method": st.method,
                "created_at": st.created_at.isoformat(),
            }
            for st in settlements
        ],
        balances={b.member.id: b.balance for b in balances_of(session, group.id)},
    )


def to_csv(export: GroupExport) -> str:
    """The export in Splitwise's CSV shape (see the module docstring)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    member_ids = list(export.columns)
    writer.writerow([*CSV_HEADER, *(export.columns[m] for m in member_ids)])
    totals: dict[str, dict[str, int]] = {}
    for r in export.rows:
        per = totals.setdefault(r.currency, dict.fromkeys(member_ids, 0))
        for m, v in r.nets.items():
            per[m] += v
        writer.writerow(
            [
                r.date.isoformat(),
                r.description,
                r.category,
                format_minor(r.cost, r.currency),
                r.currency,
                *(format_minor(r.nets.get(m, 0), r.currency) for m in member_ids),
            ]
        )
    if not totals:  # an empty group still has its (zero) balances
        totals[export.group.currency] = dict.fromkeys(member_ids, 0)
    writer.writerow([])
    for currency in sorted(totals):
        writer.writerow(
            [
                "",
                TOTAL_BALANCE,
                "",
                "",
                currency,
                *(format_minor(totals[currency][m], currency) for m in member_ids),
            ]
        )
    return out.getvalue()


def to_json(export: GroupExport) -> dict[str, Any]:
    g = export.group
    return {
        "format": "potluck.group.v1",
        "group": {
            "id": g.id,
            "name": g.name,
            "currency": g.currency,
            "kind": g.kind,
            "created_at": g.created_at.isoformat(),
        },
        "members": [
            {
                "id": m.id,
                "user_id": m.user_id,
                "email": m.email,
                "name": m.name,
                "column": export.columns[m.id],
                "active": m.active,
            }
            for m in g.members
        ],
        "expenses": export.expenses,
        "settlements": export.settlements,
        "balances": [
            {"member_id": m, "balance": export.balances.get(m, 0)} for m in export.columns
        ],
    }


def filename(export: GroupExport, fmt: str) -> str:
    """A safe attachment name: the group's name reduced to ASCII letters, digits, - and _."""
    name = export.group.name
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in name)
    stem = "-".join(p for p in stem.split("-") if p)[:60] or "group"
    return f"{stem}-{export.group.id}.{fmt}"
