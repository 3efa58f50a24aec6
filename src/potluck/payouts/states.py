"""The payout state machine: a table of allowed transitions.

    pending ──► processing ──► completed
       │             │
       └──► failed ◄─┘

``pending``: the amount is held on the wallet, nothing sent yet. ``processing``: a worker has
taken it and talks to the bank (retries stay in ``processing``). ``completed``: the bank paid,
the hold was posted. ``failed``: declined, retries exhausted, or cancelled while still
``pending``; the hold was voided. ``completed`` and ``failed`` are terminal: nothing leaves them.
"""

from __future__ import annotations

from typing import Any

from potluck.errors import DomainError

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({PROCESSING, FAILED}),
    PROCESSING: frozenset({COMPLETED, FAILED}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
}
TERMINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)

# The event each status publishes when a payout enters it.
EVENT_OF = {
    PENDING: "payout.created",
    PROCESSING: "payout.processing",
    COMPLETED: "payout.completed",
    FAILED: "payout.failed",
}


class InvalidPayoutTransition(DomainError):
    """A transition the table does not allow (409). Raised before anything is written."""

    def __init__(
        self, payout_id: str, current: str, target: str, *, message: str | None = None
    ) -> None:
        super().__init__(
            "invalid_payout_transition",
            message or f"payout {payout_id} is {current}; it cannot become {target}",
            status=409,
        )
        self.payout_id = payout_id
        self.current = current
        self.target = target

    def problem_extra(self) -> dict[str, Any]:
        return {"payout_status": self.current, "requested_status": self.target}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(payout_id: str, current: str, target: str) -> None:
    if not can_transition(current, target):
        raise InvalidPayoutTransition(payout_id, current, target)
