"""HTTP routes of nlp: ``POST /v1/groups/{id}/expenses/parse`` (reads, saves nothing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from potluck.api.deps import AppDep, CurrentUser
from potluck.api.errors import problem_responses
from potluck.nlp import llm
from potluck.nlp.parser import MemberRef, owed
from potluck.nlp.schemas import ParseCreate, ParseRead, proposal_read
from potluck.sharing import service as sharing
from potluck.sharing.schemas import MemberAmount

router = APIRouter(prefix="/v1", tags=["nlp"])

GroupId = Annotated[str, Path(max_length=40)]


@router.post(
    "/groups/{group_id}/expenses/parse",
    response_model=ParseRead,
    responses=problem_responses(404, 422),
)
def parse_expense(
    group_id: GroupId, body: ParseCreate, app: AppDep, user: CurrentUser
) -> ParseRead:
    """Read an expense from plain words; the reply is a create request to check and send."""
    with app.db.read() as s:
        members = sharing.group_members(s, group_id, user_id=user.id)
        me = sharing.member_for_user(s, group_id, user_id=user.id)
        group = sharing.get_group(s, group_id, user_id=user.id)
    # the session is closed: an LLM call holds no database connection
    refs = [MemberRef(m.id, m.name, m.email) for m in members]
    proposal, source = llm.parse(
        body.text,
        members=refs,
        me=me.id,
        today=app.clock.now().date(),
        currency=group.currency,
        settings=app.settings,
    )
    shares = owed(proposal, [m.id for m in members])
    return ParseRead(
        proposal=proposal_read(proposal),
        owed=[MemberAmount(user_id=u, amount=a) for u, a in shares],
        warnings=proposal.warnings,
        parser=source,  # type: ignore[arg-type]
    )
