"""Request and reply of ``POST /v1/groups/{id}/expenses/parse``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.nlp.parser import MAX_TEXT, Proposal
from potluck.sharing.schemas import (
    ExpenseCreate,
    ItemIn,
    MemberAmount,
    PaidByIn,
    ShareIn,
    SplitIn,
)


class ParseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)] = Field(
        description="One expense in plain words, e.g. 'I paid 90 for dinner with Bob and Ann, "
        "Bob had wine for 20'."
    )


def proposal_read(p: Proposal) -> ExpenseCreate:
    """The proposal as the body of ``POST /v1/groups/{id}/expenses`` (send it as is)."""
    split = p.split
    return ExpenseCreate(
        description=p.description,
        amount=p.amount,
        currency=p.currency,
        date=p.date,
        category=p.category,
        paid_by=[PaidByIn(user_id=u, amount=a) for u, a in p.paid_by],
        split=SplitIn(
            method=split.method,  # type: ignore[arg-type]
            shares=[ShareIn(user_id=s.user_id, value=s.value) for s in split.shares],
            items=[
                ItemIn(amount=i.amount, user_ids=list(i.user_ids), description=i.description)
                for i in split.items
            ],
            tax=split.tax,
            tip=split.tip,
        ),
    )


class ParseRead(BaseModel):
    proposal: ExpenseCreate = Field(
        description="The create-expense request the text reads as; nothing is saved."
    )
    owed: list[MemberAmount] = Field(
        description="Each member's share under the proposal (sums exactly to the amount)."
    )
    warnings: list[str] = Field(description="What the parser assumed; check before saving.")
    parser: Literal["rules", "llm"] = Field(description="Which backend read the text.")
