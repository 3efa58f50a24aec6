"""HTTP routes of risk: the review queue, decisions and the blocklist (administrators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from potluck.api.deps import AppDep, CurrentAdmin
from potluck.api.errors import problem_responses
from potluck.api.pagination import PageDep
from potluck.risk import service
from potluck.risk.schemas import (
    BlocklistCreate,
    BlocklistKind,
    BlocklistList,
    BlocklistRead,
    DecisionList,
    DecisionRead,
    ReviewList,
    ReviewRead,
    ReviewResolve,
    ReviewStatus,
)

router = APIRouter(prefix="/v1/risk", tags=["risk"])

ReviewId = Annotated[str, Path(max_length=40)]
EntryId = Annotated[str, Path(max_length=40)]


@router.get("/reviews", response_model=ReviewList, responses=problem_responses(403))
def list_reviews(
    app: AppDep,
    admin: CurrentAdmin,
    page: PageDep,
    status: Annotated[ReviewStatus | None, Query(description="Only in this status.")] = None,
) -> ReviewList:
    with app.db.read() as s:
        rows, more = service.list_reviews(
            s, status=status, limit=page.limit, starting_after=page.starting_after
        )
    return ReviewList(data=[ReviewRead.of(r) for r in rows], has_more=more)


@router.get(
    "/reviews/{review_id}", response_model=ReviewRead, responses=problem_responses(403, 404)
)
def get_review(review_id: ReviewId, app: AppDep, admin: CurrentAdmin) -> ReviewRead:
    with app.db.read() as s:
        return ReviewRead.of(service.get_review(s, review_id))


def _resolve(
    review_id: str, body: ReviewResolve | None, app: AppDep, admin: CurrentAdmin, approve: bool
) -> ReviewRead:
    with app.db.transaction() as s:
        review = service.resolve_review(
            s,
            app,
            review_id=review_id,
            approve=approve,
            reviewer_id=admin.id,
            note=body.note if body is not None else None,
            now=app.clock.now(),
        )
    return ReviewRead.of(review)


@router.post(
    "/reviews/{review_id}/approve",
    response_model=ReviewRead,
    responses=problem_responses(403, 404, 409),
)
def approve_review(
    review_id: ReviewId, app: AppDep, admin: CurrentAdmin, body: ReviewResolve | None = None
) -> ReviewRead:
    """Approve a held payment: the wallet transfer is posted."""
    return _resolve(review_id, body, app, admin, approve=True)


@router.post(
    "/reviews/{review_id}/reject",
    response_model=ReviewRead,
    responses=problem_responses(403, 404, 409),
)
def reject_review(
    review_id: ReviewId, app: AppDep, admin: CurrentAdmin, body: ReviewResolve | None = None
) -> ReviewRead:
    """Reject a held payment: the hold on the payer's wallet is released."""
    return _resolve(review_id, body, app, admin, approve=False)


@router.get("/decisions", response_model=DecisionList, responses=problem_responses(403))
def list_decisions(
    app: AppDep,
    admin: CurrentAdmin,
    page: PageDep,
    payer: Annotated[str | None, Query(max_length=40, description="Only this payer's.")] = None,
) -> DecisionList:
    with app.db.read() as s:
        rows, more = service.list_decisions(
            s, payer_user_id=payer, limit=page.limit, starting_after=page.starting_after
        )
    return DecisionList(data=[DecisionRead.of(d) for d in rows], has_more=more)


@router.get("/blocklist", response_model=BlocklistList, responses=problem_responses(403))
def list_blocklist(
    app: AppDep,
    admin: CurrentAdmin,
    page: PageDep,
    kind: Annotated[BlocklistKind | None, Query(description="Only this kind.")] = None,
) -> BlocklistList:
    with app.db.read() as s:
        rows, more = service.list_blocklist(
            s, kind=kind, limit=page.limit, starting_after=page.starting_after
        )
    return BlocklistList(data=[BlocklistRead.of(b) for b in rows], has_more=more)


@router.post(
    "/blocklist",
    status_code=201,
    response_model=BlocklistRead,
    responses=problem_responses(403, 409),
)
def add_to_blocklist(body: BlocklistCreate, app: AppDep, admin: CurrentAdmin) -> BlocklistRead:
    """Block every payment of (or to) a user, from a device, or of an email address."""
    with app.db.transaction() as s:
        entry = service.add_to_blocklist(
            s,
            kind=body.kind,
            value=body.value,
            reason=body.reason,
            created_by=admin.id,
            now=app.clock.now(),
        )
    return BlocklistRead.of(entry)


@router.delete(
    "/blocklist/{entry_id}", response_model=BlocklistRead, responses=problem_responses(403, 404)
)
def remove_from_blocklist(entry_id: EntryId, app: AppDep, admin: CurrentAdmin) -> BlocklistRead:
    with app.db.transaction() as s:
        return BlocklistRead.of(service.remove_from_blocklist(s, entry_id=entry_id))
