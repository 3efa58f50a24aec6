"""Fraud figures for analytics, read through the risk product.

``potluck.risk.service.decision_counts(session, start, end)`` is the interface analytics asks
of risk. Until risk provides it, the stand-in below counts risk's decisions table the same
way (read-only), and is used only when risk's own function is missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session


def decision_counts(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Payments scored in [start, end): ``scored``, ``flagged`` (review or block),
    ``blocked``, ``in_review`` (held for a reviewer)."""
    from potluck.risk import service as risk

    own = getattr(risk, "decision_counts", None)
    if own is not None:
        return dict(own(session, start, end))
    return _stand_in(session, start, end)


def _stand_in(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    from potluck.risk.models import RiskDecision

    def n(action: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((RiskDecision.action == action, 1), else_=0)), 0)

    row = session.execute(
        select(func.count(), n("review"), n("block")).where(
            RiskDecision.created_at >= start, RiskDecision.created_at < end
        )
    ).one()
    scored, review, block = (int(v or 0) for v in row)
    return {"scored": scored, "flagged": review + block, "blocked": block, "in_review": review}
