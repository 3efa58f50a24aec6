"""Fraud figures for analytics, read through the risk product's
``potluck.risk.service.decision_counts(session, start, end)`` (never its tables)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session


def decision_counts(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Payments scored in [start, end): ``scored``, ``flagged`` (review or block),
    ``blocked``, ``in_review``."""
    from potluck.risk import service as risk

    return dict(risk.decision_counts(session, start, end))
