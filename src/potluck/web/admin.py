"""Administrators' pages at ``/admin/…``: system status, the risk review queue, analytics.

Anyone who is not an administrator gets the 404 page (a page does not tell a person that
an admin area exists). The data comes from the same functions as the admin API:
``bus.status.collect_status`` (``GET /v1/admin/status``), the risk service's reviews
(``/v1/risk/reviews``) and the analytics service (``GET /v1/admin/analytics``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from potluck.bus.status import collect_status
from potluck.errors import DomainError
from potluck.identity import service as identity
from potluck.money import exponent
from potluck.web.forms import run_once
from potluck.web.pages import CheckedForm, CurrentWebUser, app_of, redirect, render
from potluck.web.sessions import WebUser

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
REVIEW_STATUSES = ("pending", "approved", "rejected")
NOTE_MAX = 500


def require_admin(user: WebUser) -> None:
    """The 404 page for anyone but an administrator."""
    if not user.is_admin:
        raise DomainError("not_found", "no such page", status=404)


# ---------------------------------------------------------------- status


@router.get("/admin")
def status_page(request: Request, user: CurrentWebUser) -> Response:
    require_admin(user)
    report = collect_status(app_of(request))
    return render(request, "admin/status.html", section="status", report=report)


# ---------------------------------------------------------------- risk reviews


def _names(request: Request, user_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for user_id in sorted(user_ids):
        try:
            person = identity.get_user(app_of(request), user_id=user_id)
        except DomainError:
            continue
        names[user_id] = f"{person.name} <{person.email}>"
    return names


@router.get("/admin/reviews")
def reviews_page(request: Request, user: CurrentWebUser) -> Response:
    require_admin(user)
    from potluck.risk import service as risk

    status = request.query_params.get("status") or "pending"
    if status not in REVIEW_STATUSES:
        status = "pending"
    after = request.query_params.get("after") or None
    with app_of(request).db.read() as s:
        reviews, more = risk.list_reviews(
            s, status=status, limit=PAGE_SIZE, starting_after=after[:64] if after else None
        )
    people = {r.decision.payer_user_id for r in reviews} | {
        r.reviewer_id for r in reviews if r.reviewer_id
    }
    return render(
        request,
        "admin/reviews.html",
        section="reviews",
        reviews=reviews,
        has_more=more,
        status=status,
        statuses=REVIEW_STATUSES,
        names=_names(request, people),
    )


def _resolve(
    request: Request, user: WebUser, review_id: str, form: FormData, approve: bool
) -> Response:
    require_admin(user)
    from potluck.risk import service as risk

    app = app_of(request)
    raw_note = form.get("note")
    note = raw_note.strip()[:NOTE_MAX] if isinstance(raw_note, str) and raw_note.strip() else None

    def effect(s: Session) -> str:
        risk.resolve_review(
            s,
            app,
            review_id=review_id[:40],
            approve=approve,
            reviewer_id=user.id,
            note=note,
            now=app.clock.now(),
        )
        return "/admin/reviews"

    try:
        url = run_once(app, user_id=user.id, key=form.get("idempotency_key"), effect=effect)
    except DomainError as exc:
        if exc.status == 404:
            raise
        # review_already_resolved (another admin was quicker), or the wallet refused.
        return redirect("/admin/reviews", flash=exc.message, kind="error")
    verdict = "approved: the payment goes through" if approve else "rejected: the hold is released"
    return redirect(url, flash=f"Review {review_id[:40]} {verdict}.")


@router.post("/admin/reviews/{review_id}/approve")
def approve_review(
    request: Request, user: CurrentWebUser, review_id: str, form: CheckedForm
) -> Response:
    return _resolve(request, user, review_id, form, approve=True)


@router.post("/admin/reviews/{review_id}/reject")
def reject_review(
    request: Request, user: CurrentWebUser, review_id: str, form: CheckedForm
) -> Response:
    return _resolve(request, user, review_id, form, approve=False)


# ---------------------------------------------------------------- analytics

DEFAULT_DAYS = 30


def _day(text: str | None, default: date, field: str, errors: dict[str, str]) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        errors[field] = "write a date like 2026-01-31"
        return default


def chart_data(report: Any, *, currency: str) -> dict[str, Any]:
    """The report as Chart.js series for one currency: every day of the range (zero when
    nothing moved), per product; amounts stay integers of minor units (the page formats
    them with the currency's exponent)."""
    days: list[str] = []
    day = report.start
    while day <= report.end:
        days.append(day.isoformat())
        day += timedelta(days=1)
    index = {d: i for i, d in enumerate(days)}
    products = sorted({r.product for r in report.daily if r.currency == currency})
    volume = {p: [0] * len(days) for p in products}
    count = {p: [0] * len(days) for p in products}
    for r in report.daily:
        if r.currency == currency and r.date in index:
            volume[r.product][index[r.date]] += r.volume
            count[r.product][index[r.date]] += r.count
    merchants = [m for m in report.top_merchants if m.currency == currency]
    fraud = report.fraud
    return {
        "currency": currency,
        "exponent": exponent(currency),
        "days": days,
        "products": products,
        "volume": volume,
        "count": count,
        "merchants": {
            "names": [m.name for m in merchants],
            "volume": [m.volume for m in merchants],
        },
        "fraud": {
            "labels": ["scored", "flagged", "blocked", "in review"],
            "values": [fraud.scored, fraud.flagged, fraud.blocked, fraud.in_review],
        },
    }


@router.get("/admin/analytics")
def analytics_page(request: Request, user: CurrentWebUser) -> Response:
    """Volume and count per day and product, fraud rates, top merchants (Chart.js), from the
    analytics service that answers ``GET /v1/admin/analytics``."""
    require_admin(user)
    from potluck.analytics import service as analytics

    app = app_of(request)
    today = app.clock.now().date()
    errors: dict[str, str] = {}
    query = request.query_params
    end = _day(query.get("to"), today, "to", errors)
    start = _day(query.get("from"), end - timedelta(days=DEFAULT_DAYS - 1), "from", errors)
    values = {"from": start.isoformat(), "to": end.isoformat()}
    report = None
    if not errors:
        try:
            with app.db.read() as s:
                report = analytics.report(s, start=start, end=end)
        except DomainError as exc:
            errors[exc.field or "to"] = exc.message
    currencies: list[str] = []
    data = None
    if report is not None:
        by_volume: dict[str, int] = {}
        for t in report.totals:
            by_volume[t.currency] = by_volume.get(t.currency, 0) + t.volume
        currencies = sorted(by_volume, key=lambda c: (-by_volume[c], c))
        for m in report.top_merchants:
            if m.currency not in currencies:
                currencies.append(m.currency)
        wanted = (query.get("currency") or "").upper()
        currency = wanted if wanted in currencies else (currencies[0] if currencies else "")
        values["currency"] = currency
        if currency:
            data = chart_data(report, currency=currency)
    return render(
        request,
        "admin/analytics.html",
        status_code=422 if errors else 200,
        section="analytics",
        report=report,
        currencies=currencies,
        data=data,
        errors=errors,
        values=values,
    )
