"""The ledger's vocabulary: limits, the error it refuses with, and the values it takes
and returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from potluck.errors import DomainError

MAX_AMOUNT = 10**15  # a quadrillion minor units per transfer
MAX_TOTAL = 2**63 - 1
MAX_TIMEOUT_SECONDS = 2**32 - 1  # TigerBeetle's u32; keeps timeout_at a valid datetime
MAX_CODE_LENGTH = 64  # the column's width
SYSTEM_SCOPE = "system"
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
HOLD_TIMEOUT_EVENT = "ledger.pending.timeout"


class LedgerError(DomainError):
    """A refused ledger operation. Nothing was written.

    ``index`` is the position of the refused transfer in a batch.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 422,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(code, message, status=status, field=field)
        self.index = index

    def problem_field(self) -> str | None:
        if self.field is None or self.index is None:
            return self.field
        return f"transfers.{self.index}.{self.field}"

    def problem_extra(self) -> dict[str, Any]:
        return {} if self.index is None else {"index": self.index}


@dataclass(frozen=True, slots=True)
class AccountFlags:
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


@dataclass(frozen=True, slots=True)
class AccountView:
    id: str
    book: str
    currency: str
    code: str
    scope: str
    owner: str | None
    flags: AccountFlags
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    metadata: dict[str, Any] | None
    created_at: datetime

    @property
    def total(self) -> int:
        """credits_posted − debits_posted (what a wallet holds)."""
        return self.credits_posted - self.debits_posted

    @property
    def held(self) -> int:
        return self.debits_pending

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True, slots=True)
class TransferView:
    id: str  # the internal id
    client_id: str
    scope: str
    kind: str
    status: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    book: str
    currency: str
    code: str
    pending_id: str | None
    pending_client_id: str | None
    posted_amount: int | None
    timeout_seconds: int | None
    timeout_at: datetime | None
    batch_id: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewTransfer:
    """A posted transfer, or a hold when ``pending`` is true."""

    debit_account_id: str
    credit_account_id: str
    amount: int
    client_id: str | None = None
    currency: str | None = None
    code: str = "transfer"
    pending: bool = False
    timeout_seconds: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PostPending:
    """Settle a hold; ``amount`` None posts it in full, a smaller amount releases the rest."""

    pending_client_id: str
    amount: int | None = None
    client_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VoidPending:
    pending_client_id: str
    client_id: str | None = None
    metadata: dict[str, Any] | None = None


Operation = NewTransfer | PostPending | VoidPending


@dataclass(slots=True)
class TransferResult:
    transfer: TransferView
    created: bool  # False when an identical transfer with this id already existed
