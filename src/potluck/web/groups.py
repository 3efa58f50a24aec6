"""Sharing pages: groups, a group's expenses, balances, settle-up, charts, export, import.

Every read and write goes through the sharing services with the signed-in person's id, so a
group that is not theirs is the services' 404, shown as the 404 page.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from potluck.errors import DomainError
from potluck.money import MoneyError, exponent
from potluck.nlp import llm
from potluck.nlp.parser import MemberRef, owed
from potluck.nlp.schemas import proposal_read
from potluck.sharing import export, importer, reports
from potluck.sharing import service as sharing
from potluck.sharing.schemas import ExpenseCreate
from potluck.splits.expense import split_expense
from potluck.web.expense_form import (
    ITEM_ROWS,
    METHOD_LABELS,
    VALUE_HINTS,
    FormError,
    plain_message,
    read_expense_form,
)
from potluck.web.expense_form import form_field as expense_form_field
from potluck.web.forms import form_values, run_once, submit_once
from potluck.web.pages import (
    CheckedForm,
    CurrentWebUser,
    app_of,
    field_errors,
    redirect,
    render,
    sentence,
)

router = APIRouter(include_in_schema=False)

GROUPS_MAX = 200
EXPENSES_MAX = 500
IMPORT_MAX_BYTES = 900_000
CURRENCIES = ("EUR", "USD", "GBP", "INR", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN")


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- list, create, import -----------------------------------------------------------------


def _groups_page(request: Request, user_id: str, **ctx: Any) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        groups, _ = sharing.list_groups(s, user_id=user_id, limit=GROUPS_MAX)
    return render(request, "groups/list.html", groups=groups, currencies=CURRENCIES, **ctx)


@router.get("/groups")
def groups_list(request: Request, user: CurrentWebUser) -> Response:
    return _groups_page(request, user.id)


def _emails(raw: str) -> list[str]:
    return [e for e in re.split(r"[\s,;]+", raw) if e]


@router.post("/groups")
def create_group(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    app = app_of(request)
    name, currency = _text(form, "name"), _text(form, "currency").upper() or "EUR"

    def effect(s: Session) -> str:
        group = sharing.create_group(
            s,
            user_id=user.id,
            name=name,
            currency=currency,
            emails=_emails(_text(form, "members")),
            now=app.clock.now(),
        )
        return f"/groups/{group.id}"

    try:
        url = run_once(app, user_id=user.id, key=form.get("idempotency_key"), effect=effect)
    except DomainError as exc:
        return _groups_page(
            request, user.id, status_code=422, errors=field_errors(exc), values=form_values(form)
        )
    return redirect(url, flash=f"Group “{name}” created.")


@router.get("/groups/import")
def import_page(request: Request, user: CurrentWebUser) -> Response:
    return render(request, "groups/import.html", currencies=CURRENCIES)


def _pairs(raw: str, field: str) -> dict[str, str]:
    """``Name = value`` lines as a dict."""
    out: dict[str, str] = {}
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise FormError({field: f"line {n}: write it like 'Bob = bob@example.com'"})
        out[key.strip()] = value.strip()
    return out


@router.post("/groups/import")
async def import_group(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    from fastapi.concurrency import run_in_threadpool

    upload = form.get("file")
    text = ""
    errors: dict[str, str] = {}
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = "Choose the CSV file exported from Splitwise."
    else:
        raw = await upload.read(IMPORT_MAX_BYTES + 1)
        if len(raw) > IMPORT_MAX_BYTES:
            errors["file"] = "The file is too large (at most 900 kB)."
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors["file"] = "The file is not UTF-8 text (export it again as CSV)."
    return await run_in_threadpool(_import, request, user.id, form, text, errors)


def _import(
    request: Request, user_id: str, form: Any, text: str, errors: dict[str, str]
) -> Response:
    app = app_of(request)
    values = {k: v for k, v in form_values(form).items()}
    name, me = _text(form, "name"), _text(form, "me")
    if not name:
        errors["name"] = "Name the new group."
    if not me:
        errors["me"] = "Write your name as it appears in the file's columns."
    try:
        members = _pairs(_text(form, "members"), "members")
    except FormError as exc:
        errors.update(exc.errors)
        members = {}
    currency = _text(form, "currency").upper() or None
    if errors:
        return render(
            request,
            "groups/import.html",
            status_code=422,
            errors=errors,
            values=values,
            currencies=CURRENCIES,
        )
    counts: dict[str, Any] = {}

    def effect(s: Session) -> str:
        result = importer.import_splitwise(
            s,
            user_id=user_id,
            name=name,
            text=text,
            me=me,
            members=members,
            currency=currency,
            now=app.clock.now(),
        )
        counts.update(expenses=result.expenses, payments=result.payments)
        return f"/groups/{result.group_id}"

    try:
        url = run_once(app, user_id=user_id, key=form.get("idempotency_key"), effect=effect)
    except DomainError as exc:
        field = exc.field or "__all__"
        if field not in ("name", "me", "members", "currency"):
            field = "file" if field in ("csv", "text") or field.startswith("csv") else "__all__"
        return render(
            request,
            "groups/import.html",
            status_code=422,
            errors={field: sentence(exc.message)},
            values=values,
            currencies=CURRENCIES,
        )
    flash = "Imported."
    if counts:
        flash = f"Imported {counts['expenses']} expenses and {counts['payments']} payments."
    return redirect(url, flash=flash)


# --- one group ------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip() for k in ("member", "category", "from", "to")}


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _filtered(rows: list[sharing.ExpenseView], f: dict[str, str]) -> list[sharing.ExpenseView]:
    start, end = _date(f["from"]), _date(f["to"])
    out = []
    for e in rows:
        if f["member"] and f["member"] not in {m for m, _ in e.paid_by} | {m for m, _ in e.owed}:
            continue
        if f["category"] and e.category != f["category"]:
            continue
        if start and e.date < start:
            continue
        if end and e.date > end:
            continue
        out.append(e)
    return out


def _group_page(request: Request, user_id: str, group_id: str, **ctx: Any) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        group = sharing.get_group(s, group_id, user_id=user_id)
        balances = sharing.group_balances(s, group_id, user_id=user_id)
        payments = sharing.settle_up(s, group_id, user_id=user_id)
        expenses, more = sharing.list_expenses(
            s, user_id=user_id, group_id=group_id, limit=EXPENSES_MAX
        )
        by_category = reports.group_report(s, group_id, user_id=user_id, by="category")
        by_month = reports.group_report(s, group_id, user_id=user_id, by="month")
        me = sharing.member_for_user(s, group_id, user_id=user_id)
    names = {b.member.id: b.member.name for b in balances} | {m.id: m.name for m in group.members}
    f = _filters(request)
    charts = {
        "exponent": exponent(group.currency),
        "currency": group.currency,
        "category": [[r.key, r.amount] for r in by_category.rows],
        "month": [[r.key, r.amount] for r in sorted(by_month.rows, key=lambda r: r.key)],
    }
    return render(
        request,
        "groups/detail.html",
        group=group,
        me=me,
        balances=balances,
        payments=payments,
        expenses=_filtered(expenses, f),
        expenses_more=more,
        categories=sorted({e.category for e in expenses if e.category}),
        filters=f,
        names=names,
        by_category=by_category,
        by_month=by_month,
        charts_json=json.dumps(charts).replace("<", "\\u003c"),
        **ctx,
    )


@router.get("/groups/{group_id}")
def group_page(request: Request, group_id: str, user: CurrentWebUser) -> Response:
    return _group_page(request, user.id, group_id)


@router.post("/groups/{group_id}/members")
def add_member(
    request: Request, group_id: str, user: CurrentWebUser, form: CheckedForm
) -> Response:
    app = app_of(request)
    email = _text(form, "email")

    def effect(s: Session) -> str:
        sharing.add_member(s, user_id=user.id, group_id=group_id, email=email, now=app.clock.now())
        return f"/groups/{group_id}"

    url = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(url, DomainError):
        return _group_page(
            request,
            user.id,
            group_id,
            status_code=422,
            errors={"email": sentence(url.message)},
            values={"email": email},
        )
    return redirect(url, flash=f"{email} added.")


@router.post("/groups/{group_id}/settlements")
def record_payment(
    request: Request, group_id: str, user: CurrentWebUser, form: CheckedForm
) -> Response:
    app = app_of(request)
    method = _text(form, "method") or "cash"
    from_id, to_id = _text(form, "from"), _text(form, "to")
    try:
        amount = int(_text(form, "amount"))
    except ValueError:
        amount = 0
    outcome: dict[str, str] = {}

    def effect(s: Session) -> str:
        if method == "wallet":
            try:
                from potluck.sharing.wallet_settlement import settle_with_wallet
            except ImportError as exc:  # pragma: no cover - until wallets ship it
                raise DomainError(
                    "wallet_unavailable", "Paying from a wallet is not available yet."
                ) from exc
            result = settle_with_wallet(
                s,
                app,
                user_id=user.id,
                group_id=group_id,
                from_member_id=from_id,
                to_member_id=to_id,
                amount=amount,
                now=app.clock.now(),
            )
            outcome["status"] = result.status
            if result.status in ("failed", "blocked"):
                reason = result.transfer.failure_reason
                outcome["error"] = "The wallet payment was refused" + (
                    f": {reason.replace('_', ' ')}." if reason else "."
                )
        else:
            sharing.record_settlement(
                s,
                user_id=user.id,
                group_id=group_id,
                from_member_id=from_id,
                to_member_id=to_id,
                amount=amount,
                method=method,
                now=app.clock.now(),
            )
            outcome["status"] = "recorded"
        return f"/groups/{group_id}"

    url = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(url, DomainError):
        return _group_page(
            request,
            user.id,
            group_id,
            status_code=url.status if url.status < 500 else 422,
            settle_error=sentence(url.message),
        )
    if outcome.get("error"):
        return redirect(url, flash=outcome["error"], kind="error")
    if outcome.get("status") == "in_review":
        return redirect(url, flash="The wallet payment is held for review.", kind="info")
    return redirect(url, flash="Payment recorded.")


@router.get("/groups/{group_id}/export.{fmt}")
def export_group(request: Request, group_id: str, fmt: str, user: CurrentWebUser) -> Response:
    if fmt not in ("csv", "json"):
        raise DomainError("not_found", "no such export", status=404)
    app = app_of(request)
    with app.db.read() as s:
        data = export.export_group(s, group_id, user_id=user.id)
    disposition = {"Content-Disposition": f'attachment; filename="{export.filename(data, fmt)}"'}
    if fmt == "json":
        return JSONResponse(export.to_json(data), headers=disposition)
    return Response(export.to_csv(data), media_type="text/csv; charset=utf-8", headers=disposition)


# --- adding an expense ----------------------------------------------------------------------


def _expense_ctx(request: Request, user_id: str, group_id: str) -> dict[str, Any]:
    app = app_of(request)
    with app.db.read() as s:
        group = sharing.get_group(s, group_id, user_id=user_id)
        me = sharing.member_for_user(s, group_id, user_id=user_id)
    return {
        "group": group,
        "me": me,
        "methods": list(METHOD_LABELS.items()),
        "hints": VALUE_HINTS,
        "item_rows": range(ITEM_ROWS),
        "today": app.clock.now().date().isoformat(),
    }


def _new_expense_page(request: Request, user_id: str, group_id: str, **ctx: Any) -> Response:
    base = _expense_ctx(request, user_id, group_id)
    values: dict[str, str] = ctx.pop("values", None) or {}
    if not values:  # a fresh form: everyone ticked, I paid, today
        values = {"paid_by": base["me"].id, "date": base["today"], "method": "equal"}
        values |= {f"include_{m.id}": "on" for m in base["group"].members}
    return render(request, "groups/expense_new.html", values=values, **base, **ctx)


@router.get("/groups/{group_id}/expenses/new")
def new_expense(request: Request, group_id: str, user: CurrentWebUser) -> Response:
    return _new_expense_page(request, user.id, group_id)


def _read(form: Any, group: sharing.GroupView, me: sharing.MemberView) -> Any:
    return read_expense_form(
        form, members=group.members, currency=group.currency, default_payer=me.id
    )


@router.post("/groups/{group_id}/expenses/preview")
def preview_expense(
    request: Request, group_id: str, user: CurrentWebUser, form: CheckedForm
) -> Response:
    """The share of each member under the form as it stands (htmx partial; writes nothing)."""
    ctx = _expense_ctx(request, user.id, group_id)
    group = ctx["group"]
    shares: list[tuple[str, int]] = []
    problems: dict[str, str] = {}
    # The shares need an amount and a split, not a description yet.
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    fields["description"] = fields.get("description", "").strip() or "preview"
    try:
        if not fields.get("amount", "").strip():
            raise FormError({})  # nothing typed yet: the hint, not an error
        data = _read(fields, group, ctx["me"])
        shares = split_expense(data.amount, data.split, [m.id for m in group.members])
    except FormError as exc:
        problems = exc.errors
    except DomainError as exc:
        problems = {"__all__": plain_message(exc.code, exc.message, data, group.currency)}
    names = {m.id: m.name for m in group.members}
    return render(
        request,
        "groups/_preview.html",
        shares=shares,
        names=names,
        problems=problems,
        group=group,
    )


@router.post("/groups/{group_id}/expenses")
def create_expense(
    request: Request, group_id: str, user: CurrentWebUser, form: CheckedForm
) -> Response:
    app = app_of(request)
    ctx = _expense_ctx(request, user.id, group_id)
    group = ctx["group"]
    try:
        data = _read(form, group, ctx["me"])
    except FormError as exc:
        return _new_expense_page(
            request, user.id, group_id, status_code=422, errors=exc.errors, values=form_values(form)
        )

    def effect(s: Session) -> str:
        sharing.create_expense(
            s,
            user_id=user.id,
            group_id=group_id,
            description=data.description,
            amount=data.amount,
            date=data.date,
            category=data.category,
            notes=data.notes,
            paid_by=data.paid_by,
            split=data.split,
            now=app.clock.now(),
        )
        return f"/groups/{group_id}"

    url = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(url, DomainError):
        field = expense_form_field(url.field, data.split)
        message = plain_message(url.code, url.message, data, group.currency)
        return _new_expense_page(
            request,
            user.id,
            group_id,
            status_code=422,
            errors={field: message},
            values=form_values(form),
        )
    return redirect(url, flash=f"Expense “{data.description}” added.")


@router.post("/groups/{group_id}/parse")
def parse_text(
    request: Request, group_id: str, user: CurrentWebUser, form: CheckedForm
) -> Response:
    """The plain-language parse of the "type it" box (writes nothing): an htmx partial, or,
    without JavaScript, the add-expense page with the parse in it."""
    app = app_of(request)
    ctx = _expense_ctx(request, user.id, group_id)
    group, me = ctx["group"], ctx["me"]
    text = _text(form, "text")
    result: dict[str, Any] = {"text": text}
    if not text:
        result["problem"] = "Type what happened, like “I paid 90 for dinner with Bob and Ann”."
    else:
        refs = [MemberRef(m.id, m.name, m.email) for m in group.members]
        try:
            proposal, source = llm.parse(
                text,
                members=refs,
                me=me.id,
                today=app.clock.now().date(),
                currency=group.currency,
                settings=app.settings,
            )
        except DomainError as exc:
            result["problem"] = sentence(exc.message)
        else:
            result |= {
                "proposal": proposal,
                "shares": owed(proposal, [m.id for m in group.members]),
                "names": {m.id: m.name for m in group.members},
                "proposal_json": proposal_read(proposal).model_dump_json(exclude_none=True),
                "source": source,
            }
    if request.headers.get("hx-request"):
        return render(request, "groups/_parse.html", group=group, **result)
    return _new_expense_page(request, user.id, group_id, parsed=True, text_value=text, **result)


@router.post("/groups/{group_id}/expenses/parsed")
def create_parsed_expense(
    request: Request, group_id: str, user: CurrentWebUser, form: CheckedForm
) -> Response:
    """Save the proposal that was previewed (the create request, as the preview showed it)."""
    app = app_of(request)
    try:
        body = ExpenseCreate.model_validate_json(_text(form, "proposal") or "{}")
    except ValidationError as exc:
        return _new_expense_page(
            request,
            user.id,
            group_id,
            status_code=422,
            errors={
                "text": "The preview could not be saved: "
                + next(iter(field_errors(exc).values()), "not valid")
            },
        )

    def effect(s: Session) -> str:
        sharing.create_expense(
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
            now=app.clock.now(),
        )
        return f"/groups/{group_id}"

    try:
        url = run_once(app, user_id=user.id, key=form.get("idempotency_key"), effect=effect)
    except (DomainError, MoneyError) as exc:
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        message = sentence(exc.message if isinstance(exc, DomainError) else str(exc))
        return _new_expense_page(
            request,
            user.id,
            group_id,
            status_code=422,
            errors={"text": message},
            text_value=_text(form, "text"),
        )
    return redirect(url, flash=f"Expense “{body.description}” added.")
