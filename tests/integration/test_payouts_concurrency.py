"""Payouts under real concurrency: threads, each in its own transaction, released together by
a barrier. PostgreSQL (row locks) except the 60,000-from-100,000 race, which also runs on
SQLite (one writer at a time)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text

from potluck.errors import DomainError
from potluck.ledger.models import Entry
from potluck.payouts import service, worker
from tests.integration.test_payouts_helpers import (
    ScriptedBank,
    count_holds,
    count_payouts,
    get_payout,
    request_payout,
    setup_party,
    wallet,
)


def race(n, fn):
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected and asserted on below
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def available_after_each_entry(potluck, account_id):
    """The wallet's available balance after each of its entries, in the order they were
    written (under the wallet's lock)."""
    with potluck.db.read() as s:
        rows = s.execute(
            select(Entry.side, Entry.posted_delta, Entry.pending_delta)
            .where(Entry.account_id == account_id)
            .order_by(Entry.id)
        ).all()
    available, out = 0, []
    for side, posted, pending in rows:
        available += posted if side == "C" else -(posted + pending)
        out.append(available)
    return out


def insufficient(results):
    return [
        r
        for r in results
        if isinstance(r, DomainError) and r.code == "insufficient_funds" and r.status == 402
    ]


def test_two_concurrent_payouts_of_60000_from_100000(potluck):
    pid, party, ba = setup_party(potluck, 100_000)
    results = race(2, lambda _: request_payout(potluck, pid, party, ba, 60_000))
    ok = [r for r in results if isinstance(r, service.PayoutView)]
    assert len(ok) == 1, results
    assert len(insufficient(results)) == 1, results
    assert insufficient(results)[0].status == 402
    assert count_payouts(potluck) == 1
    assert count_holds(potluck) == 1
    assert wallet(potluck, party) == (100_000, 60_000, 40_000)


@pytest.mark.postgres_only
def test_ten_concurrent_payouts_of_15000_never_overdraw(potluck):
    pid, party, ba = setup_party(potluck, 100_000)
    results = race(10, lambda _: request_payout(potluck, pid, party, ba, 15_000))
    ok = [r for r in results if isinstance(r, service.PayoutView)]
    refused = insufficient(results)
    assert len(ok) + len(refused) == 10, results
    assert len(ok) <= 6
    assert len(ok) == 6  # every one was tried while 15,000 was still available
    assert count_payouts(potluck) == len(ok) == count_holds(potluck)
    assert wallet(potluck, party) == (100_000, 90_000, 10_000)
    assert min(available_after_each_entry(potluck, party.wallet_account_id)) >= 0


@pytest.mark.postgres_only
def test_two_parties_paying_out_at_once_do_not_block_each_other(potluck):
    pid, first, first_ba = setup_party(potluck, 100_000)
    _, second, second_ba = setup_party(potluck, 100_000, platform=pid)
    # Both parties' payouts share the platform's in-transit account: make it exist.
    request_payout(potluck, pid, first, first_ba, 1_000)

    def waiting_on_a_lock():
        with potluck.db.read() as s:
            return s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )

    with ThreadPoolExecutor(max_workers=2) as pool, potluck.db.transaction() as holder:
        # Someone holds party 1's wallet (an open transaction with its row locked) …
        holder.execute(
            text("SELECT id FROM ledger_accounts WHERE id = :id FOR UPDATE"),
            {"id": first.wallet_account_id},
        )
        # … so party 1's payout waits for it,
        blocked = pool.submit(request_payout, potluck, pid, first, first_ba, 2_000)
        deadline = time.monotonic() + 10
        while waiting_on_a_lock() == 0:  # a condition, not a guess at a duration
            assert time.monotonic() < deadline, "party 1's payout never reached the lock"
            assert not blocked.done(), blocked.result()
        # … while party 2's goes through.
        other = pool.submit(request_payout, potluck, pid, second, second_ba, 3_000)
        assert other.result(timeout=10).status == "pending"
        assert wallet(potluck, second) == (100_000, 3_000, 97_000)
        assert not blocked.done()
    # The holder committed: party 1's payout proceeds.
    assert blocked.result(timeout=10).status == "pending"
    assert wallet(potluck, first) == (100_000, 3_000, 97_000)


@pytest.mark.postgres_only
def test_two_workers_never_send_the_same_payout(potluck):
    bank = ScriptedBank()
    potluck.bank = bank
    potluck.settings.payout_batch_size = 3
    pid, party, ba = setup_party(potluck, 100_000)
    payouts = [request_payout(potluck, pid, party, ba, 1_000) for _ in range(12)]

    def work(_):
        handled = 0
        while True:
            done = worker.send_due_payouts(potluck)
            if done == 0:
                return handled
            handled += done

    handled = race(2, work)
    assert sum(handled) == 12, handled
    assert all(bank.sends[p.id] == 1 for p in payouts), bank.sends
    assert all(get_payout(potluck, p).status == "completed" for p in payouts)
    assert wallet(potluck, party) == (88_000, 0, 88_000)


@pytest.mark.postgres_only
def test_concurrent_sends_of_one_payout_to_the_simulated_bank_pay_once(potluck):
    from potluck.payouts.bank import BankPayment, SimulatedBank

    sim = potluck.bank
    assert isinstance(sim, SimulatedBank)
    payment = BankPayment("po_race", 500, "EUR", "Jane", "DE89370400440532013000", "iban", None, 1)
    results = race(8, lambda _: sim.send(payment))
    assert {r.outcome.value for r in results} == {"completed"}, results
    assert sim.times_paid("po_race") == 1
    assert sim.sends_received("po_race") == 8
