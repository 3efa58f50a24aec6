"""The ledger's use cases, in one place for the rest of Potluck to import.

``from potluck.ledger import service as ledger`` then ``ledger.create_transfers``,
``ledger.NewTransfer``, ``ledger.LedgerError``, … The code lives in ``types`` (values, errors,
limits), ``accounts``, ``transfers`` (planning in ``planning``), ``holds`` (timeouts) and
``audit``; the ledger's semantics are described in the package docstring (``potluck.ledger``).
"""

from __future__ import annotations

from potluck.ledger.accounts import create_account, get_account, list_accounts, list_entries
from potluck.ledger.audit import AuditReport, audit
from potluck.ledger.holds import expire_due_holds, expire_pending
from potluck.ledger.transfers import (
    TRANSFER_STATUSES,
    create_transfer,
    create_transfers,
    get_transfer,
    list_transfers,
)
from potluck.ledger.types import (
    CLIENT_ID_PATTERN,
    HOLD_TIMEOUT_EVENT,
    MAX_AMOUNT,
    MAX_CODE_LENGTH,
    MAX_TIMEOUT_SECONDS,
    MAX_TOTAL,
    SYSTEM_SCOPE,
    AccountFlags,
    AccountView,
    LedgerError,
    NewTransfer,
    Operation,
    PostPending,
    TransferResult,
    TransferView,
    VoidPending,
)

__all__ = [
    "CLIENT_ID_PATTERN",
    "HOLD_TIMEOUT_EVENT",
    "MAX_AMOUNT",
    "MAX_CODE_LENGTH",
    "MAX_TIMEOUT_SECONDS",
    "MAX_TOTAL",
    "SYSTEM_SCOPE",
    "TRANSFER_STATUSES",
    "AccountFlags",
    "AccountView",
    "AuditReport",
    "LedgerError",
    "NewTransfer",
    "Operation",
    "PostPending",
    "TransferResult",
    "TransferView",
    "VoidPending",
    "audit",
    "create_account",
    "create_transfer",
    "create_transfers",
    "expire_due_holds",
    "expire_pending",
    "get_account",
    "get_transfer",
    "list_accounts",
    "list_entries",
    "list_transfers",
]
