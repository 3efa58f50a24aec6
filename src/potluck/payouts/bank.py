"""Bank adapters: the interface a real bank API implements, and a simulated bank.

An adapter speaks in our own dataclasses (``BankPayment`` in, ``BankResult`` out); a bank
SDK's types never leave its adapter. Both calls are made by the payouts worker outside any
database transaction of ours.

- ``send(payment)`` asks the bank to pay. It must be idempotent by ``payment.payout_id``:
  the bank dedupes on it, so sending the same payout again returns what happened the first
  time and never pays twice. Returns ``completed`` (paid), ``failed`` with ``retryable=False``
  (a permanent decline), ``failed`` with ``retryable=True`` (a transient failure: the bank
  did not take the instruction; sending again is safe), or ``processing`` (accepted, not
  settled yet). An exception means "we do not know": the worker retries, and the bank's
  dedupe makes that safe.
- ``status(payout_id)`` says what the bank knows: ``completed``, ``failed``, ``processing``
  or ``unknown`` (never received).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from potluck.clock import Clock
from potluck.db import Database
from potluck.payouts.models import SimulatedBankPayment

if TYPE_CHECKING:
    from potluck.config import Settings


class BankOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    PROCESSING = "processing"
    UNKNOWN = "unknown"  # status(): the bank never received this payout id


@dataclass(frozen=True, slots=True)
class BankPayment:
    """What the bank needs to pay one payout."""

    payout_id: str  # the bank's idempotency key
    amount: int  # minor units
    currency: str
    holder_name: str
    account_number: str
    routing_type: str
    routing_value: str | None
    attempt: int  # 1, 2, …: which of our attempts this is (for logs, and the simulation)


@dataclass(frozen=True, slots=True)
class BankResult:
    outcome: BankOutcome
    retryable: bool = False  # for FAILED: the bank did not act, sending again is safe
    code: str | None = None
    message: str | None = None
    reference: str | None = None  # the bank's own id for the payment


class BankAdapter(Protocol):
    def send(self, payment: BankPayment) -> BankResult: ...

    def status(self, payout_id: str) -> BankResult: ...


class SimulatedBank:
    """A bank with configurable latency, transient failures and declines.

    Each decision is a function of ``seed``, payout id and attempt (a hash, not a shared
    random generator), so a run is reproducible whatever the threads do. What it accepted is
    kept in its own table (``bank_sim_payments``), written in its own transaction, so it
    outlives a restart, is shared by every process, and a second ``send`` of a payout id
    returns the first answer instead of paying again.

    For each first ``send`` of a payout id, a roll ``r`` in [0, 1): ``r < decline_rate`` →
    declined (remembered; permanent); ``r < decline_rate + transient_failure_rate`` →
    transient failure (not remembered: the bank never took it); otherwise paid.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        latency_ms: int = 0,
        transient_failure_rate: float = 0.0,
        decline_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.latency_ms = latency_ms
        self.transient_failure_rate = transient_failure_rate
        self.decline_rate = decline_rate
        self.seed = seed

    def roll(self, payout_id: str, attempt: int) -> float:
        digest = hashlib.sha256(f"{self.seed}:{payout_id}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def decide(self, payout_id: str, attempt: int) -> BankResult:
        """What the bank does with a first ``send`` (pure: no I/O)."""
        r = self.roll(payout_id, attempt)
        if r < self.decline_rate:
            return BankResult(
                BankOutcome.FAILED, code="declined", message="the bank declined the payment"
            )
        if r < self.decline_rate + self.transient_failure_rate:
            return BankResult(
                BankOutcome.FAILED,
                retryable=True,
                code="bank_unavailable",
                message="the bank is temporarily unavailable",
            )
        return BankResult(BankOutcome.COMPLETED, reference=f"sim_{payout_id}")

    def send(self, payment: BankPayment) -> BankResult:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        for _ in range(2):
            try:
                return self._send_once(payment)
            except IntegrityError:
                continue  # another worker's send of the same id won the insert: read it
        return self._send_once(payment)

    def _send_once(self, payment: BankPayment) -> BankResult:
        with self.db.transaction() as s:
            row = s.execute(
                select(SimulatedBankPayment)
                .where(SimulatedBankPayment.payout_id == payment.payout_id)
                .with_for_update()
            ).scalar_one_or_none()
            if row is not None:
                row.sends += 1
                return _result_of(row)
            decision = self.decide(payment.payout_id, payment.attempt)
            if decision.retryable:
                return decision
            s.add(
                SimulatedBankPayment(
                    payout_id=payment.payout_id,
                    amount=payment.amount,
                    currency=payment.currency,
                    outcome=decision.outcome.value,
                    code=decision.code,
                    reference=f"sim_{payment.payout_id}",
                    attempt=payment.attempt,
                    sends=1,
                    paid=1 if decision.outcome is BankOutcome.COMPLETED else 0,
                    received_at=self.clock.now(),
                )
            )
            s.flush()
            return decision

    def status(self, payout_id: str) -> BankResult:
        with self.db.read() as s:
            row = s.get(SimulatedBankPayment, payout_id)
            if row is None:
                return BankResult(BankOutcome.UNKNOWN)
            return _result_of(row)

    # ------------------------------------------------------------ for tests and operators

    def times_paid(self, payout_id: str) -> int:
        """How many times money actually left for this payout id (0 or 1, by construction)."""
        with self.db.read() as s:
            row = s.get(SimulatedBankPayment, payout_id)
            return 0 if row is None else row.paid

    def sends_received(self, payout_id: str) -> int:
        """How many ``send`` calls for this id reached the bank's books (transient failures
        never do)."""
        with self.db.read() as s:
            row = s.get(SimulatedBankPayment, payout_id)
            return 0 if row is None else row.sends

    def received_at(self, payout_id: str) -> datetime | None:
        with self.db.read() as s:
            row = s.get(SimulatedBankPayment, payout_id)
            return None if row is None else row.received_at


def _result_of(row: SimulatedBankPayment) -> BankResult:
    if row.outcome == BankOutcome.COMPLETED.value:
        return BankResult(BankOutcome.COMPLETED, reference=row.reference)
    return BankResult(
        BankOutcome.FAILED,
        code=row.code,
        message="the bank declined the payment",
        reference=row.reference,
    )


def make_bank_adapter(settings: Settings, db: Database, clock: Clock) -> BankAdapter:
    """The adapter ``POTLUCK_BANK_ADAPTER`` names (only ``simulated`` ships)."""
    if settings.bank_adapter == "simulated":
        return SimulatedBank(
            db,
            clock,
            latency_ms=settings.bank_sim_latency_ms,
            transient_failure_rate=settings.bank_sim_transient_failure_rate,
            decline_rate=settings.bank_sim_decline_rate,
            seed=settings.bank_sim_seed,
        )
    raise ValueError(f"unknown bank adapter {settings.bank_adapter!r}")
