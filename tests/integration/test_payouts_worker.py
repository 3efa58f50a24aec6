"""Payouts through the worker: holds, the state machine, retries with backoff, recovery.
SQLite and PostgreSQL; time moves only with the FakeClock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from potluck.bus.models import OutboxEvent
from potluck.payouts import service, states, worker
from potluck.payouts.bank import BankOutcome, BankResult, SimulatedBank
from potluck.payouts.models import Payout
from potluck.payouts.states import InvalidPayoutTransition
from tests.integration.test_payouts_helpers import (
    DECLINED,
    PAID,
    TRANSIENT,
    ScriptedBank,
    count_history,
    get_payout,
    request_payout,
    setup_party,
    wallet,
)


class Crash(BaseException):
    """The worker process dying: not an Exception, so nothing on the way catches it."""


@pytest.fixture
def bank(potluck):
    b = ScriptedBank()
    potluck.bank = b
    return b


def statuses(payout_view):
    return [h.status for h in payout_view.history]


def events(potluck, payout_id):
    with potluck.db.read() as s:
        rows = s.execute(select(OutboxEvent).order_by(OutboxEvent.id)).scalars().all()
        return [(e.type, e.data) for e in rows if e.data.get("payout_id") == payout_id]


def test_hold_then_completion_moves_the_balances(potluck, bank):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    assert payout.status == "pending"
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)

    potluck.bus.drain()

    done = get_payout(potluck, payout)
    assert done.status == "completed"
    assert statuses(done) == ["pending", "processing", "completed"]
    assert done.attempts == 1
    assert done.bank_reference == "ref"
    assert wallet(potluck, party) == (60_000, 0, 60_000)
    assert bank.sends[payout.id] == 1
    assert bank.paid[payout.id] == 1
    published = events(potluck, payout.id)
    assert [t for t, _ in published] == ["payout.created", "payout.processing", "payout.completed"]
    for _, data in published:
        assert data["platform_id"] == pid
        assert data["amount"] == 40_000
        assert data["currency"] == "EUR"
        assert data["party_id"] == party.id


def test_a_decline_fails_the_payout_and_releases_the_hold(potluck, bank):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    bank.script(payout.id, DECLINED)

    potluck.bus.drain()

    failed = get_payout(potluck, payout)
    assert failed.status == "failed"
    assert statuses(failed) == ["pending", "processing", "failed"]
    assert failed.history[-1].reason == "declined by the bank"
    assert failed.last_error == "declined by the bank"
    assert wallet(potluck, party) == (100_000, 0, 100_000)
    assert bank.sends[payout.id] == 1  # a decline is final: never sent again
    assert [t for t, _ in events(potluck, payout.id)][-1] == "payout.failed"


def test_a_decline_with_its_own_code_names_it_once(potluck, bank):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    bank.script(payout.id, BankResult(BankOutcome.FAILED, code="account_closed", message="no"))
    potluck.bus.drain()
    failed = get_payout(potluck, payout)
    assert failed.status == "failed"
    assert failed.last_error == failed.history[-1].reason == "declined by the bank: account_closed"


def test_transient_failures_retry_with_exponential_backoff(potluck, bank, clock):
    base = potluck.settings.payout_retry_base_seconds
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    bank.script(payout.id, TRANSIENT, TRANSIENT, PAID)

    potluck.bus.drain()
    p = get_payout(potluck, payout)
    assert (p.status, p.attempts) == ("processing", 1)
    assert p.last_error == "busy: try later"
    assert p.next_attempt_at == clock.now() + _seconds(base)
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)  # still held

    clock.advance(base - 1)
    potluck.bus.drain()
    assert bank.sends[payout.id] == 1  # not due yet

    clock.advance(1)
    potluck.bus.drain()
    p = get_payout(potluck, payout)
    assert (p.status, p.attempts) == ("processing", 2)
    assert p.next_attempt_at == clock.now() + _seconds(2 * base)  # doubled

    clock.advance(2 * base - 1)
    potluck.bus.drain()
    assert bank.sends[payout.id] == 2

    clock.advance(1)
    potluck.bus.drain()
    p = get_payout(potluck, payout)
    assert (p.status, p.attempts) == ("completed", 3)
    assert p.last_error is None  # paid: the earlier failures are no longer its error
    # Retries stay in processing: one transition each way, not one per attempt.
    assert statuses(p) == ["pending", "processing", "completed"]
    assert wallet(potluck, party) == (60_000, 0, 60_000)
    assert bank.paid[payout.id] == 1


def test_the_final_failure_voids_the_hold(potluck, bank, clock):
    bank.default = TRANSIENT
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    for _ in range(10):
        potluck.bus.drain()
        clock.advance(3600)
    p = get_payout(potluck, payout)
    assert p.status == "failed"
    assert p.attempts == potluck.settings.payout_max_attempts == 3
    assert bank.sends[payout.id] == 3
    assert "retries exhausted after 3 attempts" in p.history[-1].reason
    assert wallet(potluck, party) == (100_000, 0, 100_000)


def test_a_bank_exception_is_retried_and_the_bank_dedupes(potluck, bank, clock):
    """An exception may mean the bank paid and the answer was lost: sending again is safe
    because the bank dedupes on the payout id."""
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)

    def lose_the_answer(payment):
        bank.after_send = None
        raise TimeoutError("read timed out")

    bank.after_send = lose_the_answer
    potluck.bus.drain()
    p = get_payout(potluck, payout)
    assert p.status == "processing"
    assert "TimeoutError" in p.last_error
    clock.advance(potluck.settings.payout_retry_base_seconds)
    potluck.bus.drain()
    assert get_payout(potluck, payout).status == "completed"
    assert bank.sends[payout.id] == 2
    assert bank.paid[payout.id] == 1
    assert wallet(potluck, party) == (60_000, 0, 60_000)


def test_exhausted_after_an_ambiguous_error_asks_the_bank_before_giving_up(potluck, clock):
    """The last attempt raised after the bank paid: failing then would release money that
    has left. The worker asks the bank first."""
    bank = ScriptedBank(default=TRANSIENT)
    potluck.bank = bank
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    potluck.bus.drain()
    clock.advance(3600)
    potluck.bus.drain()  # attempt 2
    bank.default = PAID

    def lose_the_answer(payment):
        raise TimeoutError("read timed out")

    bank.after_send = lose_the_answer
    clock.advance(3600)
    potluck.bus.drain()  # attempt 3: paid, answer lost
    assert bank.paid[payout.id] == 1
    clock.advance(3600)
    potluck.bus.drain()  # asks the bank instead of failing
    p = get_payout(potluck, payout)
    assert p.status == "completed"
    assert bank.status_calls[payout.id] == 1
    assert bank.sends[payout.id] == 3
    assert wallet(potluck, party) == (60_000, 0, 60_000)


# --- recovery ---------------------------------------------------------------------------


def _crash_after_bank_call(bank):
    def crash(payment):
        bank.after_send = None
        raise Crash()

    bank.after_send = crash


def _stuck_until_recovered(potluck, clock):
    """Past the lease, and the recovery tick due."""
    clock.advance(potluck.settings.payout_processing_timeout_seconds + 1)
    clock.advance(potluck.settings.payout_recovery_interval_seconds)


def test_a_worker_dying_after_the_bank_paid_is_recovered_without_paying_twice(potluck, bank, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    _crash_after_bank_call(bank)

    with pytest.raises(Crash):
        potluck.bus.drain()
    # The bank paid; we never heard. The payout sits in processing under the dead lease.
    assert bank.paid[payout.id] == 1
    p = get_payout(potluck, payout)
    assert p.status == "processing"
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)

    # Before the lease expires nobody touches it: no second send.
    clock.advance(potluck.settings.payout_processing_timeout_seconds - 1)
    potluck.bus.drain()
    assert bank.sends[payout.id] == 1
    assert get_payout(potluck, payout).status == "processing"

    _stuck_until_recovered(potluck, clock)
    potluck.bus.drain()

    p = get_payout(potluck, payout)
    assert p.status == "completed"
    assert p.last_error is None  # not "worker lease expired; …": it was paid
    assert bank.status_calls[payout.id] == 1  # asked …
    assert bank.sends[payout.id] == 1  # … and never sent again
    assert bank.paid[payout.id] == 1
    assert wallet(potluck, party) == (60_000, 0, 60_000)


def test_a_worker_dying_before_the_bank_heard_of_it_is_sent_again(potluck, bank, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)

    def crash(payment):
        bank.before_send = None
        raise Crash()

    bank.before_send = crash
    with pytest.raises(Crash):
        potluck.bus.drain()
    assert bank.sends[payout.id] == 0

    _stuck_until_recovered(potluck, clock)
    potluck.bus.drain()

    p = get_payout(potluck, payout)
    assert p.status == "completed"
    assert bank.status_calls[payout.id] == 1  # unknown → sent again
    assert bank.sends[payout.id] == 1
    assert bank.paid[payout.id] == 1
    assert p.attempts == 2


def test_recovery_finds_a_declined_payout_and_fails_it(potluck, bank, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    bank.script(payout.id, DECLINED)
    _crash_after_bank_call(bank)
    with pytest.raises(Crash):
        potluck.bus.drain()
    _stuck_until_recovered(potluck, clock)
    potluck.bus.drain()
    assert get_payout(potluck, payout).status == "failed"
    assert wallet(potluck, party) == (100_000, 0, 100_000)
    assert bank.sends[payout.id] == 1


def test_recovery_leaves_a_payout_the_bank_is_still_processing(potluck, bank, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    _crash_after_bank_call(bank)
    with pytest.raises(Crash):
        potluck.bus.drain()
    bank.status_override[payout.id] = BankResult(BankOutcome.PROCESSING)
    _stuck_until_recovered(potluck, clock)
    potluck.bus.drain()
    assert get_payout(potluck, payout).status == "processing"
    assert bank.status_calls[payout.id] == 1
    # The bank settles; the next check completes it, still without a second send.
    del bank.status_override[payout.id]
    clock.advance(potluck.settings.payout_retry_base_seconds)
    potluck.bus.drain()
    assert get_payout(potluck, payout).status == "completed"
    assert bank.status_calls[payout.id] == 2
    assert bank.sends[payout.id] == 1


def test_a_late_answer_from_a_presumed_dead_worker_is_ignored(potluck, bank, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    [claim] = worker.claim_due(potluck)
    result, ambiguous = worker.call_bank(potluck, claim)  # paid; the worker then stalls
    clock.advance(potluck.settings.payout_processing_timeout_seconds + 1)
    with potluck.db.transaction() as s:
        assert worker.recover_stuck(s, now=clock.now()) == [payout.id]
    potluck.bus.drain()  # recovery asks the bank and completes it
    assert get_payout(potluck, payout).status == "completed"
    history = count_history(potluck, payout.id)
    # The old worker wakes up: its claim is gone, its answer changes nothing.
    assert worker.record_outcome(potluck, claim, result, ambiguous=ambiguous) is False
    assert count_history(potluck, payout.id) == history
    assert bank.paid[payout.id] == 1
    assert wallet(potluck, party) == (60_000, 0, 60_000)


def test_the_recovery_timer_renews_itself(potluck, clock):
    worker.ensure_recovery_scheduled(potluck)
    worker.ensure_recovery_scheduled(potluck)  # idempotent
    interval = potluck.settings.payout_recovery_interval_seconds

    def ticks():
        with potluck.db.read() as s:
            return s.execute(
                select(OutboxEvent.id).where(OutboxEvent.type == worker.RECOVERY_TICK)
            ).all()

    assert len(ticks()) == 1
    for _ in range(3):
        clock.advance(interval)
        potluck.bus.drain()
    assert len(ticks()) == 4  # three ran, each scheduled its successor


def test_the_simulated_bank_is_recovered_without_paying_twice(potluck, clock):
    """The shipped simulated bank, remembered in its own table, through a crash."""
    sim = potluck.bank
    assert isinstance(sim, SimulatedBank)
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)

    class Crashing:
        def send(self, payment):
            sim.send(payment)
            raise Crash()

        def status(self, payout_id):
            return sim.status(payout_id)

    potluck.bank = Crashing()
    with pytest.raises(Crash):
        potluck.bus.drain()
    assert sim.times_paid(payout.id) == 1
    potluck.bank = sim
    _stuck_until_recovered(potluck, clock)
    potluck.bus.drain()
    assert get_payout(potluck, payout).status == "completed"
    assert sim.times_paid(payout.id) == 1
    assert sim.sends_received(payout.id) == 1
    assert wallet(potluck, party) == (60_000, 0, 60_000)


def test_simulated_bank_declines_and_transient_failures(potluck, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    declined = request_payout(potluck, pid, party, ba, 10_000)
    potluck.bank = SimulatedBank(potluck.db, clock, decline_rate=1.0)
    potluck.bus.drain()
    assert get_payout(potluck, declined).status == "failed"
    assert potluck.bank.times_paid(declined.id) == 0

    flaky = request_payout(potluck, pid, party, ba, 10_000)
    potluck.bank = SimulatedBank(potluck.db, clock, transient_failure_rate=1.0)
    for _ in range(5):
        potluck.bus.drain()
        clock.advance(3600)
    p = get_payout(potluck, flaky)
    assert (p.status, p.attempts) == ("failed", 3)
    assert potluck.bank.sends_received(flaky.id) == 0  # never reached the bank's books
    assert wallet(potluck, party) == (100_000, 0, 100_000)


# --- the state machine ------------------------------------------------------------------


def _load(potluck, payout_id):
    with potluck.db.read() as s:
        p = s.get(Payout, payout_id)
        return SimpleNamespace(status=p.status, last_error=p.last_error, updated_at=p.updated_at)


def _force(potluck, payout_id, target):
    with potluck.db.transaction() as s:
        p = service.lock_payout(s, payout_id)
        p.last_error = "must be rolled back"
        service.transition(s, p, target, now=potluck.clock.now(), reason="test")


@pytest.mark.parametrize(
    ("drive", "illegal"),
    [
        ("pending", ["completed", "pending"]),
        ("completed", ["pending", "processing", "failed", "completed"]),
        ("failed", ["pending", "processing", "completed", "failed"]),
    ],
)
def test_illegal_transitions_raise_and_persist_nothing(potluck, bank, clock, drive, illegal):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    if drive == "failed":
        bank.script(payout.id, DECLINED)
    if drive != "pending":
        potluck.bus.drain()
    before = _load(potluck, payout.id)
    assert before.status == drive
    history, balances = count_history(potluck, payout.id), wallet(potluck, party)
    for target in illegal:
        with pytest.raises(InvalidPayoutTransition) as exc:
            _force(potluck, payout.id, target)
        assert exc.value.code == "invalid_payout_transition"
        assert exc.value.status == 409
    after = _load(potluck, payout.id)
    assert (after.status, after.last_error, after.updated_at) == (
        before.status,
        before.last_error,
        before.updated_at,
    )
    assert count_history(potluck, payout.id) == history
    assert wallet(potluck, party) == balances


@pytest.mark.parametrize("terminal", ["completed", "failed"])
def test_terminal_states_never_change(potluck, bank, clock, terminal):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    if terminal == "failed":
        bank.script(payout.id, DECLINED)
    potluck.bus.drain()
    balances = wallet(potluck, party)
    # Neither the bank nor recovery nor a cancel moves it again.
    with pytest.raises(InvalidPayoutTransition), potluck.db.transaction() as s:
        service.complete(s, service.lock_payout(s, payout.id), now=clock.now(), reference="x")
    with pytest.raises(InvalidPayoutTransition), potluck.db.transaction() as s:
        service.fail(s, service.lock_payout(s, payout.id), now=clock.now(), reason="x")
    with pytest.raises(InvalidPayoutTransition), potluck.db.transaction() as s:
        service.cancel_payout(s, payout.id, platform_id=pid, now=clock.now())
    clock.advance(10_000)
    with potluck.db.transaction() as s:
        assert worker.recover_stuck(s, now=clock.now()) == []
    potluck.bus.drain()
    p = get_payout(potluck, payout)
    assert p.status == terminal
    assert len(p.history) == 3
    assert wallet(potluck, party) == balances
    assert bank.sends[payout.id] == 1


def test_a_pending_payout_can_be_cancelled_but_not_a_processing_one(potluck, bank, clock):
    pid, party, ba = setup_party(potluck, 100_000)
    payout = request_payout(potluck, pid, party, ba, 40_000)
    with potluck.db.transaction() as s:
        cancelled = service.cancel_payout(s, payout.id, platform_id=pid, now=clock.now())
    assert cancelled.status == "failed"
    assert cancelled.history[-1].reason == "cancelled"
    assert wallet(potluck, party) == (100_000, 0, 100_000)
    potluck.bus.drain()
    assert bank.sends[payout.id] == 0

    other = request_payout(potluck, pid, party, ba, 40_000)
    worker.claim_due(potluck)  # processing now
    with pytest.raises(InvalidPayoutTransition), potluck.db.transaction() as s:
        service.cancel_payout(s, other.id, platform_id=pid, now=clock.now())
    assert _load(potluck, other.id).status == states.PROCESSING


def _seconds(n):
    from datetime import timedelta

    return timedelta(seconds=n)


def test_a_flaky_simulated_bank_settles_every_payout_exactly_once(potluck, clock):
    """Thirty payouts through a bank that fails transiently 30 % of the time and declines
    10 %: every payout ends terminal, completed exactly when the bank paid it (once), and the
    wallet lost exactly the completed amounts."""
    sim = SimulatedBank(potluck.db, clock, transient_failure_rate=0.3, decline_rate=0.1, seed=7)
    potluck.bank = sim
    pid, party, ba = setup_party(potluck, 1_000_000)
    payouts = [request_payout(potluck, pid, party, ba, 1_000 + i) for i in range(30)]
    for _ in range(20):
        potluck.bus.drain()
        clock.advance(potluck.settings.payout_retry_base_seconds * 4)
    final = [get_payout(potluck, p) for p in payouts]
    assert {p.status for p in final} <= states.TERMINAL
    completed = [p for p in final if p.status == "completed"]
    assert completed
    for p in final:
        assert sim.times_paid(p.id) == (1 if p.status == "completed" else 0)
        assert 1 <= p.attempts <= potluck.settings.payout_max_attempts
    paid_out = sum(p.amount for p in completed)
    assert wallet(potluck, party) == (1_000_000 - paid_out, 0, 1_000_000 - paid_out)
