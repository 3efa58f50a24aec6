"""Cursor pagination: ``?limit=`` (default 20, max 100) and ``?starting_after=<id>``."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel):
    limit: int
    starting_after: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (max 100).")] = 20,
    starting_after: Annotated[
        str | None,
        Query(max_length=128, description="Return items after this id (cursor)."),
    ] = None,
) -> Page:
    return Page(limit=limit, starting_after=starting_after)


PageDep = Annotated[Page, Depends(page_params)]


class ListReply(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
