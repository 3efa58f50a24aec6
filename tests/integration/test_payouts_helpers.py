"""Factories and a scripted bank shared by the payouts tests (no tests in this module)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable

from sqlalchemy import func, select

from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.ledger.models import Transfer as LedgerTransfer
from potluck.marketplace import service as marketplace
from potluck.payouts import service
from potluck.payouts.bank import BankOutcome, BankPayment, BankResult
from potluck.payouts.models import Payout, PayoutTransition

IBAN = "DE89 3704 0044 0532 0130 00"  # the textbook valid IBAN
PAID = BankResult(BankOutcome.COMPLETED, reference="ref")
DECLINED = BankResult(BankOutcome.FAILED, code="declined", message="no")
TRANSIENT = BankResult(BankOutcome.FAILED, retryable=True, code="busy", message="try later")


def make_platform(potluck, name="Acme"):
    platform, secret = create_platform(potluck, name=name)
    return platform.id, {"Authorization": f"Bearer {secret}"}


def make_party(potluck, platform_id, *, currency="EUR", name="Shop"):
    with potluck.db.transaction() as s:
        return marketplace.create_party(
            s,
            platform_id=platform_id,
            name=name,
            kind="merchant",
            currency=currency,
            now=potluck.clock.now(),
        )


def fund(potluck, platform_id, party, amount):
    """Money into the party's wallet straight from a funding account of the platform."""
    with potluck.db.transaction() as s:
        funding = ledger.create_account(
            s,
            currency=party.currency,
            code="test_funding",
            now=potluck.clock.now(),
            book=f"platform:{platform_id}",
            scope=f"platform:{platform_id}",
        )
        ledger.create_transfer(
            s,
            ledger.NewTransfer(funding.id, party.wallet_account_id, amount),
            now=potluck.clock.now(),
            scope=f"platform:{platform_id}",
        )


def add_bank_account(potluck, platform_id, party):
    with potluck.db.transaction() as s:
        return service.add_bank_account(
            s,
            platform_id=platform_id,
            party_id=party.id,
            holder_name="Jane Shop",
            account_number=IBAN,
            routing_type="iban",
            routing_value=None,
            now=potluck.clock.now(),
        )


def setup_party(potluck, amount=100_000, *, platform=None, currency="EUR"):
    """(platform_id, party, bank_account) with ``amount`` in the wallet."""
    platform_id = platform or make_platform(potluck)[0]
    party = make_party(potluck, platform_id, currency=currency)
    if amount:
        fund(potluck, platform_id, party, amount)
    bank_account = add_bank_account(potluck, platform_id, party)
    return platform_id, party, bank_account


def request_payout(potluck, platform_id, party, bank_account, amount):
    with potluck.db.transaction() as s:
        return service.create_payout(
            s,
            platform_id=platform_id,
            party_id=party.id,
            bank_account_id=bank_account.id,
            amount=amount,
            currency=party.currency,
            now=potluck.clock.now(),
        )


def get_payout(potluck, payout):
    with potluck.db.read() as s:
        return service.get_payout(s, payout.id, platform_id=payout.platform_id)


def wallet(potluck, party):
    """(total, held, available) of the party's wallet."""
    with potluck.db.read() as s:
        a = ledger.get_account(s, party.wallet_account_id)
    return a.total, a.held, a.available


def count(potluck, model, *where):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def count_payouts(potluck):
    return count(potluck, Payout)


def count_holds(potluck):
    return count(potluck, LedgerTransfer, LedgerTransfer.kind == "pending")


def count_history(potluck, payout_id):
    return count(potluck, PayoutTransition, PayoutTransition.payout_id == payout_id)


class ScriptedBank:
    """A bank adapter for tests: answers ``send`` from a script (per payout id, else the
    default), dedupes by payout id like a real bank, and counts every call."""

    def __init__(self, default: BankResult = PAID) -> None:
        self.default = default
        self.scripts: dict[str, list[BankResult]] = defaultdict(list)
        self.paid: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        self.status_calls: Counter[str] = Counter()
        self.settled: dict[str, BankResult] = {}  # what the bank knows, by payout id
        self.status_override: dict[str, BankResult] = {}
        self.before_send: Callable[[BankPayment], None] | None = None
        self.after_send: Callable[[BankPayment], None] | None = None
        self._lock = threading.Lock()

    def script(self, payout_id: str, *results: BankResult) -> None:
        self.scripts[payout_id].extend(results)

    def send(self, payment: BankPayment) -> BankResult:
        if self.before_send:
            self.before_send(payment)
        with self._lock:
            self.sends[payment.payout_id] += 1
            known = self.settled.get(payment.payout_id)
            if known is not None:
                result = known
            else:
                queue = self.scripts.get(payment.payout_id)
                result = queue.pop(0) if queue else self.default
                if not result.retryable:
                    self.settled[payment.payout_id] = result
                    if result.outcome is BankOutcome.COMPLETED:
                        self.paid[payment.payout_id] += 1
        if self.after_send:
            self.after_send(payment)
        return result

    def status(self, payout_id: str) -> BankResult:
        with self._lock:
            self.status_calls[payout_id] += 1
            if payout_id in self.status_override:
                return self.status_override[payout_id]
            return self.settled.get(payout_id, BankResult(BankOutcome.UNKNOWN))
