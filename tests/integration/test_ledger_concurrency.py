"""The ledger under real concurrency: threads, each in its own transaction, started together
by a barrier. PostgreSQL (row locks in ascending id order) except where marked; the
60-out-of-100 race also runs on SQLite, where BEGIN IMMEDIATE serializes writers."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select, text

from potluck.ledger import service as ledger
from potluck.ledger.models import Entry
from potluck.ledger.service import AccountFlags, LedgerError, NewTransfer, PostPending, VoidPending

LIMITED = AccountFlags(debits_must_not_exceed_credits=True)
SEED = 20260101  # the random workload below is reproducible from this seed


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(0..n-1)`` on ``n`` threads released together; returns results or exceptions."""
    barrier = threading.Barrier(n)

    def call(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected and asserted on by the caller
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def open_accounts(db, clock, flags_list):
    with db.transaction() as s:
        return [
            ledger.create_account(s, currency="EUR", code="wallet", now=clock.now(), flags=f).id
            for f in flags_list
        ]


def move(db, clock, op):
    with db.transaction() as s:
        return ledger.create_transfer(s, op, now=clock.now())


def totals(db, ids):
    with db.read() as s:
        return [ledger.get_account(s, i).total for i in ids]


def running_balances(db, account_id) -> list[int]:
    """The account's posted balance after each of its entries, in the order they were written
    (under the account's lock, so in the order the transfers were applied)."""
    with db.read() as s:
        rows = s.execute(
            select(Entry.side, Entry.posted_delta)
            .where(Entry.account_id == account_id)
            .order_by(Entry.id)
        ).all()
    balance, out = 0, []
    for side, delta in rows:
        balance += delta if side == "C" else -delta
        out.append(balance)
    return out


def funded_wallet(db, clock, amount):
    clearing, wallet, shop = open_accounts(db, clock, [None, LIMITED, None])
    move(db, clock, NewTransfer(clearing, wallet, amount))
    return wallet, shop


def test_two_transfers_of_60_from_100_one_wins(db, clock):
    # Runs on SQLite too: there BEGIN IMMEDIATE makes the second writer wait for the first.
    wallet, shop = funded_wallet(db, clock, 100)
    results = race(2, lambda i: move(db, clock, NewTransfer(wallet, shop, 60)))
    won = [r for r in results if isinstance(r, ledger.TransferResult)]
    lost = [r for r in results if isinstance(r, LedgerError)]
    assert len(won) == 1, results
    assert len(lost) == 1, results
    assert (lost[0].status, lost[0].code) == (402, "insufficient_funds")
    assert totals(db, [wallet, shop]) == [40, 60]


@pytest.mark.postgres_only
def test_ten_transfers_of_15_from_100_only_six_fit(db, clock):
    wallet, shop = funded_wallet(db, clock, 100)
    results = race(10, lambda i: move(db, clock, NewTransfer(wallet, shop, 15)))
    outcomes = Counter(
        "ok" if isinstance(r, ledger.TransferResult) else (r.status, r.code) for r in results
    )
    assert outcomes == {"ok": 6, (402, "insufficient_funds"): 4}, results
    assert totals(db, [wallet, shop]) == [10, 90]
    history = running_balances(db, wallet)
    assert len(history) == 7
    assert min(history) >= 0


@pytest.mark.postgres_only
def test_random_transfers_with_a_hot_account(db, clock):
    """32 threads, 5,000 transfers (singles and small batches) among 20 accounts, one of them
    in ~40% of transfers; 12 accounts may not go negative, so some transfers are refused."""
    threads, total_transfers, n_accounts = 32, 5_000, 20
    flags = [None] * 8 + [LIMITED] * 12  # account 0 is the hot one
    ids = open_accounts(db, clock, flags)
    with db.transaction() as s:
        ledger.create_transfers(
            s, [NewTransfer(ids[1], ids[i], 300) for i in range(8, 20)], now=clock.now()
        )
    start_totals = totals(db, ids)

    def workload(thread: int) -> list[list[tuple[int, int, int]]]:
        rng = random.Random(SEED * 100 + thread)
        batches, left = [], total_transfers // threads + (thread < total_transfers % threads)
        while left:
            size = min(left, rng.choice([1, 1, 1, 2, 3]))
            batch = []
            for _ in range(size):
                debit, credit = rng.sample(range(n_accounts), 2)
                if rng.random() < 0.4:
                    debit, credit = (0, credit or 1) if rng.random() < 0.5 else (debit or 1, 0)
                batch.append((debit, credit, rng.randint(1, 60)))
            batches.append(batch)
            left -= size
        return batches

    plans = [workload(t) for t in range(threads)]
    assert sum(len(b) for plan in plans for b in plan) == total_transfers

    def worker(thread: int) -> tuple[list[tuple[int, int, int]], int, list[Exception]]:
        applied, refused, errors = [], 0, []
        for batch in plans[thread]:
            ops = [NewTransfer(ids[d], ids[c], a) for d, c, a in batch]
            try:
                with db.transaction() as s:
                    ledger.create_transfers(s, ops, now=clock.now())
                applied += batch
            except LedgerError as exc:
                if exc.status != 402:
                    errors.append(exc)
                refused += len(batch)
            except Exception as exc:  # a deadlock or anything else fails the test below
                errors.append(exc)
        return applied, refused, errors

    started = time.perf_counter()
    results = race(threads, worker)
    elapsed = time.perf_counter() - started
    assert not [r for r in results if isinstance(r, Exception)]
    errors = [e for _, _, errs in results for e in errs]
    assert errors == [], errors[:3]
    applied = [t for a, _, _ in results for t in a]
    refused = sum(r for _, r, _ in results)
    assert len(applied) + refused == total_transfers
    assert refused > 0  # the flagged accounts did refuse some transfers
    assert len(applied) > total_transfers // 2
    print(f"\n{total_transfers} transfers, {refused} refused (402), {elapsed:.1f} s")

    expected = list(start_totals)
    for d, c, a in applied:
        expected[d] -= a
        expected[c] += a
    final = totals(db, ids)
    assert final == expected
    assert sum(final) == 0  # money is conserved
    for i in range(8, 20):
        assert min(running_balances(db, ids[i])) >= 0, f"account {i} went negative"
    with db.read() as s:
        report = ledger.audit(s)
    assert report.ok, report.problems


@pytest.mark.postgres_only
def test_concurrent_post_and_void_of_one_hold(db, clock):
    wallet, shop = funded_wallet(db, clock, 1_000)
    for round_ in range(10):
        hold = f"h{round_}"
        move(db, clock, NewTransfer(wallet, shop, 50, client_id=hold, pending=True))
        ops = [PostPending(hold, amount=30), VoidPending(hold)]
        results = race(2, lambda i, ops=ops: move(db, clock, ops[i]))
        won = [r for r in results if isinstance(r, ledger.TransferResult)]
        lost = [r for r in results if isinstance(r, LedgerError)]
        assert len(won) == 1, results
        assert len(lost) == 1, results
        assert lost[0].status == 409
        winner = won[0].transfer.kind
        assert lost[0].code == (
            "pending_transfer_already_posted"
            if winner == "post_pending"
            else "pending_transfer_already_voided"
        )
    with db.read() as s:
        holds = [ledger.get_transfer(s, f"h{i}", scope="system") for i in range(10)]
        wallet_now = ledger.get_account(s, wallet)
    posted = sum(h.posted_amount or 0 for h in holds)
    assert {h.status for h in holds} <= {"posted", "voided"}
    assert (wallet_now.total, wallet_now.held) == (1_000 - posted, 0)


@pytest.mark.postgres_only
@pytest.mark.parametrize("kind", ["transfer", "post"])
def test_same_client_id_at_once_has_one_effect(db, clock, kind):
    wallet, shop = funded_wallet(db, clock, 1_000)
    if kind == "transfer":
        op = NewTransfer(wallet, shop, 70, client_id="once", metadata={"n": 1})
    else:
        move(db, clock, NewTransfer(wallet, shop, 70, client_id="hold", pending=True))
        op = PostPending("hold", amount=40, client_id="once")
    results = race(20, lambda i: move(db, clock, op))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert sum(r.created for r in results) == 1
    assert len({r.transfer.id for r in results}) == 1
    assert len({r.transfer.client_id for r in results}) == 1
    amount = 70 if kind == "transfer" else 40
    assert totals(db, [wallet, shop]) == [1_000 - amount, amount]


@pytest.mark.postgres_only
def test_expiring_due_holds_does_not_deadlock_with_a_concurrent_expiry(db, clock):
    """The sweeper must not hold account locks while it waits for a hold that another
    transaction (a timer handler, a post) has locked and that transaction then needs the
    same accounts. Here the other transaction holds the second due hold's row lock while the
    sweeper runs; the sweeper must finish without waiting for it."""
    wallet, shop = funded_wallet(db, clock, 100)
    h1 = move(db, clock, NewTransfer(wallet, shop, 10, pending=True, timeout_seconds=5)).transfer
    h2 = move(db, clock, NewTransfer(wallet, shop, 20, pending=True, timeout_seconds=5)).transfer
    clock.advance(10)
    swept: list[Any] = []

    def sweep() -> None:
        try:
            with db.transaction() as s:
                swept.append(ledger.expire_due_holds(s, now=clock.now()))
        except Exception as exc:
            swept.append(exc)

    with db.transaction() as other:
        other.execute(
            text("SELECT id FROM ledger_transfers WHERE id = :id FOR UPDATE"), {"id": h2.id}
        )
        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        sweeper.join(timeout=20)
        # The buggy sweeper would now be blocked on h2, holding the accounts' locks ...
        finished = not sweeper.is_alive()
        # ... and this would deadlock against it.
        assert ledger.expire_pending(other, h2.id, now=clock.now()) is True
    sweeper.join()
    assert finished, "the sweeper waited for a hold locked by another transaction"
    assert swept == [1]
    with db.read() as s:
        assert ledger.get_transfer(s, h1.client_id, scope="system").status == "expired"
        assert ledger.get_transfer(s, h2.client_id, scope="system").status == "expired"
        assert ledger.get_account(s, wallet).held == 0


@pytest.mark.postgres_only
def test_same_client_id_with_different_accounts_at_once_has_one_effect(db, clock):
    """Identical retries lock the same account rows, so they queue and the later ones read
    the first one's transfer. Two different transfers under one id lock different rows and
    meet only at the unique index: the second gets a 409 either way, never a second effect."""
    wallet, shop = funded_wallet(db, clock, 1_000)
    (courier,) = open_accounts(db, clock, [None])
    for round_ in range(5):
        cid = f"clash{round_}"
        ops = [
            NewTransfer(wallet, shop, 10, client_id=cid),
            NewTransfer(courier, shop, 10, client_id=cid),
        ]
        results = race(2, lambda i, ops=ops: move(db, clock, ops[i]))
        won = [r for r in results if isinstance(r, ledger.TransferResult)]
        lost = [r for r in results if isinstance(r, LedgerError)]
        assert len(won) == 1, results
        assert won[0].created
        assert len(lost) == 1, results
        assert lost[0].status == 409
        assert lost[0].code in {"transfer_exists", "transfer_exists_with_different_fields"}
    assert totals(db, [shop]) == [50]
