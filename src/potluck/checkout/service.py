"""Group order use cases, in one place for the rest of Potluck to import: create, members,
open (``groups``), payments in, expire, cancel, force-finalize, finalize into a marketplace
order (``collecting``), reading (``views``); shared helpers in ``common``.

Each function takes the caller's session (one unit of work) and, where it talks to the
payments service, the app. Every function that changes a group order first locks its row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write transaction already serializes),
checks the state machine (``states.py``), and only then writes: a refused transition is a 409
``invalid_state`` naming the current state, with nothing changed.

Money: an ``escrow`` account per group order in the merchant's platform book; every payment
intent's destination is that escrow. Finalization records a marketplace order funded by the
escrow (escrow → platform clearing), and the marketplace's split pipeline credits the
merchant and partners. A cancelled or expired group refunds every payment that reached the
escrow, and a payment that succeeds after that is refunded as it arrives.
"""

from __future__ import annotations

from potluck.checkout.collecting import (
    cancel,
    cancel_group_order,
    expire,
    finalize,
    force_finalize,
    host_deadline_passed,
    payment_failed,
    payment_succeeded,
)
from potluck.checkout.common import (
    ESCROW_CODE,
    EXPIRY_TIMER,
    FALLBACKS,
    HOST_DEADLINE_SECONDS,
    HOST_DEADLINE_TIMER,
    MAX_MEMBERS,
    PURPOSE,
    SPLITS,
    lock_group,
)
from potluck.checkout.groups import (
    add_member,
    compute_shares,
    create_group_order,
    open_group_order,
    remove_member,
)
from potluck.checkout.views import (
    GroupOrderView,
    MemberView,
    PaymentView,
    TransitionView,
    get_group_order,
    list_group_orders,
    view,
)

__all__ = [
    "ESCROW_CODE",
    "EXPIRY_TIMER",
    "FALLBACKS",
    "HOST_DEADLINE_SECONDS",
    "HOST_DEADLINE_TIMER",
    "MAX_MEMBERS",
    "PURPOSE",
    "SPLITS",
    "GroupOrderView",
    "MemberView",
    "PaymentView",
    "TransitionView",
    "add_member",
    "cancel",
    "cancel_group_order",
    "compute_shares",
    "create_group_order",
    "expire",
    "finalize",
    "force_finalize",
    "get_group_order",
    "host_deadline_passed",
    "list_group_orders",
    "lock_group",
    "open_group_order",
    "payment_failed",
    "payment_succeeded",
    "remove_member",
    "view",
]
