"""Keyset pages for the services' lists: ``starting_after`` an id, ``limit + 1`` rows read to
know whether there are more. The API side (``?limit=``, ``?starting_after=``) is
``api/pagination.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from potluck.errors import DomainError


def page_of(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    *,
    visible: ColumnElement[bool],
    limit: int,
    starting_after: str | None,
    noun: str,
) -> tuple[Sequence[Any], bool]:
    """One page of ``query``'s entities in id order, and whether more follow.

    A cursor that is not one of the caller's rows (``visible``) is 422 ``invalid_cursor``
    naming ``starting_after``, rather than an empty page that looks like the end.
    """
    if starting_after is not None:
        known = session.scalar(select(id_column).where(visible, id_column == starting_after))
        if known is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no {noun} {starting_after}",
                field="starting_after",
            )
        query = query.where(id_column > starting_after)
    rows = session.execute(query.order_by(id_column).limit(limit + 1)).scalars().all()
    return rows[:limit], len(rows) > limit
