"""Wallet payments under real concurrency (PostgreSQL, threads): reviews resolved once, and
thousands of random payments that conserve money with one effect per client id."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from potluck.errors import DomainError
from potluck.ledger import service as ledger
from potluck.ledger.tables import _TRANSFERS
from potluck.risk import service as risk
from potluck.wallets import service as wallets
from potluck.wallets.models import WalletAccount, WalletTransfer
from tests.integration.test_wallets_helpers import available, fund, person, quick_people

pytestmark = pytest.mark.postgres_only


def test_concurrent_approve_and_reject_have_exactly_one_outcome(potluck, monkeypatch):
    ann, _ = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 10_000)

    def review(session, app, **kw):
        return risk.Decision(id="", score=60, action="review", reasons=[])

    monkeypatch.setattr(wallets, "_score", review)
    outcomes = Counter()
    for round_ in range(6):
        with potluck.db.transaction() as s:
            t = wallets.send(
                s,
                potluck,
                payer_user_id=ann,
                to=bob,
                amount=100,
                currency="EUR",
                now=potluck.clock.now(),
            )
        assert t.status == "in_review"
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}

        def resolve(fn, name, transfer_id=t.id):
            barrier.wait()
            try:
                with potluck.db.transaction() as s:
                    fn(
                        s,
                        potluck,
                        transfer_id=transfer_id,
                        reviewer_id=name,
                        now=potluck.clock.now(),
                    )
                results[name] = "ok"
            except DomainError as exc:
                results[name] = exc.code

        threads = [
            threading.Thread(target=resolve, args=(wallets.approve_review, "approve")),
            threading.Thread(target=resolve, args=(wallets.reject_review, "reject")),
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(results.values()) == ["invalid_state", "ok"], (round_, results)
        with potluck.db.read() as s:
            status = wallets.get_transfer(s, t.id).status
            hold = ledger.get_transfer(s, f"wtr-{t.id}-1", scope=ledger.SYSTEM_SCOPE)
        winner = "approve" if results["approve"] == "ok" else "reject"
        assert status == {"approve": "completed", "reject": "rejected"}[winner]
        assert hold.status == {"approve": "posted", "reject": "voided"}[winner]
        outcomes[status] += 1
    completed = outcomes["completed"] * 100
    a, b = available(potluck, ann), available(potluck, bob)
    assert (a.total, a.held, b.total) == (10_000 - completed, 0, completed)


def _allow(session, app, **kw):
    return risk.Decision(id="", score=0, action="allow", reasons=[])


PEOPLE = 100
PAYMENTS = 5_000
THREADS = 16
START = 10_000


def test_random_concurrent_payments_conserve_money(potluck, monkeypatch):
    # Risk's own concurrency is risk's test; here every payment is allowed at once (the
    # scoring's five statements would double this test's time on a loaded machine).
    monkeypatch.setattr(wallets, "_score", _allow)
    rng = random.Random(7)
    people = quick_people(potluck, PEOPLE)
    now = potluck.clock.now()
    with potluck.db.transaction() as s:
        source = ledger.create_account(s, currency="EUR", code="test_funding", now=now).id
        ops = []
        for user_id in people:
            wallet = wallets.wallet_account(s, user_id=user_id, currency="EUR", now=now)
            ops.append(
                ledger.NewTransfer(debit_account_id=source, credit_account_id=wallet, amount=START)
            )
        ledger.create_transfers(s, ops, now=now)

    # The work: each payment once, ~5 % of them twice in a row (two threads race on them).
    tasks: list[tuple[str, str, int, str]] = []
    retried = 0
    for i in range(PAYMENTS):
        payer, payee = rng.sample(people, 2)
        task = (payer, payee, rng.randint(1, 1_500), f"rnd-{i}")
        tasks.append(task)
        if rng.random() < 0.05:
            tasks.append(task)
            retried += 1
    work: queue.SimpleQueue[tuple[str, str, int, str]] = queue.SimpleQueue()
    for task in tasks:
        work.put(task)
    replies: dict[str, set[str]] = {}
    statuses: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                payer, payee, amount, client_id = work.get_nowait()
            except queue.Empty:
                return
            try:
                with potluck.db.transaction() as s:
                    t = wallets.send(
                        s,
                        potluck,
                        payer_user_id=payer,
                        to=payee,
                        amount=amount,
                        currency="EUR",
                        client_id=client_id,
                        now=potluck.clock.now(),
                    )
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return
            with lock:
                replies.setdefault(client_id, set()).add(t.id)
                statuses[t.status] += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - started
    print(
        f"{PAYMENTS + retried} sends in {elapsed:.1f} s: "
        f"{(PAYMENTS + retried) / elapsed:.0f}/s {dict(statuses)}"
    )
    assert errors == []
    assert len(replies) == PAYMENTS
    assert all(len(ids) == 1 for ids in replies.values())  # one effect per client id
    assert sum(statuses.values()) == PAYMENTS + retried
    assert statuses["completed"] > PAYMENTS // 2, statuses

    with potluck.db.read() as s:
        assert s.scalar(select(func.count()).select_from(WalletTransfer)) == PAYMENTS
        accounts = s.execute(select(WalletAccount.account_id)).scalars().all()
        views = [ledger.get_account(s, a) for a in accounts]
        completed = s.scalar(
            select(func.count())
            .select_from(WalletTransfer)
            .where(WalletTransfer.status == "completed")
        )
        posted = s.scalar(
            select(func.count())
            .select_from(_TRANSFERS)
            .where(_TRANSFERS.c.code == "wallet_transfer", _TRANSFERS.c.kind == "posted")
        )
        report = ledger.audit(s)
    assert sum(v.total for v in views) == PEOPLE * START  # money conserved
    assert min(v.available for v in views) >= 0  # nobody below zero
    assert posted == completed
    assert report.ok, report.problems
