"""The payment intent's state machine, as a table of allowed transitions.

``requires_payment → processing → succeeded | failed | canceled``; a provider may report
``succeeded`` or ``failed`` without a ``processing`` first (webhooks arrive in any order).
Terminal states never change: a ``processing`` that arrives after ``succeeded`` is ignored.
"""

from __future__ import annotations

from potluck.payments.providers.base import IntentStatus

REQUIRES_PAYMENT = IntentStatus.REQUIRES_PAYMENT.value
PROCESSING = IntentStatus.PROCESSING.value
SUCCEEDED = IntentStatus.SUCCEEDED.value
FAILED = IntentStatus.FAILED.value
CANCELED = IntentStatus.CANCELED.value

STATUSES = (REQUIRES_PAYMENT, PROCESSING, SUCCEEDED, FAILED, CANCELED)

ALLOWED: dict[str, frozenset[str]] = {
    REQUIRES_PAYMENT: frozenset({PROCESSING, SUCCEEDED, FAILED, CANCELED}),
    PROCESSING: frozenset({SUCCEEDED, FAILED, CANCELED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    CANCELED: frozenset(),
}

TERMINAL = frozenset(s for s, nxt in ALLOWED.items() if not nxt)
OPEN = frozenset({REQUIRES_PAYMENT, PROCESSING})

# The event each status publishes when an intent enters it.
EVENT_OF: dict[str, str] = {
    PROCESSING: "payment.processing",
    SUCCEEDED: "payment.succeeded",
    FAILED: "payment.failed",
    CANCELED: "payment.canceled",
}


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())
