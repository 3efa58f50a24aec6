"""The group order state machine: a table of allowed transitions.

    draft ──► open ──► pending ──► paid ──► confirmed
      │         │         │   ▲      │
      │         │         ▼   │      │
      │         └────► host_paying   │
      │         │         │          │
      └─────────┴─────────┴──────────┴──► cancelled / expired

``draft``: members are added and removed. ``open``: shares computed, one payment intent per
member. ``pending``: at least one share paid. ``host_paying``: the host covers what is unpaid
(expiry with fallback ``host_pays``, or force-finalize), with a short deadline. ``paid``:
every share (or the host's remainder) is in escrow; finalization places the merchant order.
``confirmed``, ``expired`` and ``cancelled`` are terminal: nothing leaves them.
"""

from __future__ import annotations

from typing import Any

from potluck.errors import DomainError

DRAFT = "draft"
OPEN = "open"
PENDING = "pending"
HOST_PAYING = "host_paying"
PAID = "paid"
CONFIRMED = "confirmed"
EXPIRED = "expired"
CANCELLED = "cancelled"
STATUSES = (DRAFT, OPEN, PENDING, HOST_PAYING, PAID, CONFIRMED, EXPIRED, CANCELLED)

TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({OPEN, CANCELLED, EXPIRED}),
    OPEN: frozenset({PENDING, HOST_PAYING, CANCELLED, EXPIRED}),
    PENDING: frozenset({PAID, HOST_PAYING, CANCELLED, EXPIRED}),
    HOST_PAYING: frozenset({PAID, CANCELLED, EXPIRED}),
    PAID: frozenset({CONFIRMED, CANCELLED}),
    CONFIRMED: frozenset(),
    EXPIRED: frozenset(),
    CANCELLED: frozenset(),
}
TERMINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
# Members may be added or removed only before payment starts.
EDITABLE = frozenset({DRAFT})
# Where a member's share payment is still welcome.
COLLECTING = frozenset({OPEN, PENDING})


class InvalidGroupTransition(DomainError):
    """A transition (or an action) the current state does not allow: 409, nothing written."""

    def __init__(self, group_id: str, current: str, action: str) -> None:
        super().__init__(
            "invalid_state",
            f"group order {group_id} is {current}; it cannot {action}",
            status=409,
        )
        self.group_id = group_id
        self.current = current
        self.action = action

    def problem_extra(self) -> dict[str, Any]:
        return {"status_current": self.current}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(group_id: str, current: str, target: str) -> None:
    if not can_transition(current, target):
        raise InvalidGroupTransition(group_id, current, f"become {target}")
