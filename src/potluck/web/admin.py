"""Administrators' pages at ``/admin/…``: system status, the risk review queue, analytics.

Anyone who is not an administrator gets the 404 page (a page does not tell a person that
an admin area exists). The data comes from the same functions as the admin API:
``bus.status.collect_status`` (``GET /v1/admin/status``), the risk service's reviews
(``/v1/risk/reviews``) and the analytics service (``GET /v1/admin/analytics``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from potluck.bus.status import collect_status
from potluck.errors import DomainError
from potluck.identity import service as identity
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
