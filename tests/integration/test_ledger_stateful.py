"""The ledger against a simple in-memory model (hypothesis stateful testing), on both backends.

Every example gets its own scope (so its accounts and client ids never meet another
example's) and its own clock. After every step each account's four running totals must equal
the model's and the audit must pass.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from potluck.clock import FakeClock
from potluck.ledger import service as ledger
from potluck.ledger.service import AccountFlags, LedgerError, NewTransfer, PostPending, VoidPending

# Two plain accounts, two wallets that cannot go below zero, one credit line.
FLAGS = [
    AccountFlags(),
    AccountFlags(),
    AccountFlags(debits_must_not_exceed_credits=True),
    AccountFlags(debits_must_not_exceed_credits=True),
    AccountFlags(credits_must_not_exceed_debits=True),
]
accounts_ix = st.integers(min_value=0, max_value=len(FLAGS) - 1)
amounts = st.integers(min_value=1, max_value=150)
timeouts = st.one_of(st.none(), st.integers(min_value=1, max_value=90))


@dataclass
class ModelAccount:
    flags: AccountFlags
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    def totals(self) -> tuple[int, int, int, int]:
        return (self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending)


@dataclass
class ModelHold:
    debit: int
    credit: int
    amount: int
    timeout_at: datetime | None
    status: str = "pending"


@dataclass
class Model:
    accounts: list[ModelAccount]
    holds: dict[str, ModelHold] = field(default_factory=dict)

    def copy(self) -> Model:
        return Model(
            [ModelAccount(**vars(a)) for a in self.accounts],
            {k: ModelHold(**vars(h)) for k, h in self.holds.items()},
        )

    def apply_new(
        self,
        client_id: str,
        debit: int,
        credit: int,
        amount: int,
        pending: bool,
        timeout_at: datetime | None,
    ) -> tuple[int, str] | None:
        """Apply a new transfer; returns (status, code) if the ledger must refuse it."""
        d, c = self.accounts[debit], self.accounts[credit]
        if d.flags.debits_must_not_exceed_credits and (
            d.debits_posted + d.debits_pending + amount > d.credits_posted
        ):
            return 402, "insufficient_funds"
        if c.flags.credits_must_not_exceed_debits and (
            c.credits_posted + c.credits_pending + amount > c.debits_posted
        ):
            return 402, "credit_limit_exceeded"
        if pending:
            d.debits_pending += amount
            c.credits_pending += amount
            self.holds[client_id] = ModelHold(debit, credit, amount, timeout_at)
        else:
            d.debits_posted += amount
            c.credits_posted += amount
        return None

    def resolve(self, hold_id: str, post: int | None, now: datetime) -> tuple[int, str] | None:
        """Post ``post`` of the hold (None: void it); returns (status, code) if refused."""
        h = self.holds[hold_id]
        if h.status != "pending":
            return 409, f"pending_transfer_already_{h.status}"
        if h.timeout_at is not None and h.timeout_at <= now:
            return 409, "pending_transfer_expired"
        if post is not None and post > h.amount:
            return 422, "exceeds_pending_transfer_amount"
        d, c = self.accounts[h.debit], self.accounts[h.credit]
        d.debits_pending -= h.amount
        c.credits_pending -= h.amount
        if post is None:
            h.status = "voided"
        else:
            d.debits_posted += post
            c.credits_posted += post
            h.status = "posted"
        return None

    def expire(self, now: datetime) -> int:
        n = 0
        for h in self.holds.values():
            if h.status == "pending" and h.timeout_at is not None and h.timeout_at <= now:
                self.accounts[h.debit].debits_pending -= h.amount
                self.accounts[h.credit].credits_pending -= h.amount
                h.status = "expired"
                n += 1
        return n


def make_machine(db):  # noqa: C901 - one class of rules
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = FakeClock()
            self.scope = f"platform:{uuid.uuid4().hex[:12]}"
            self.ids: list[str] = []
            self.model = Model([ModelAccount(f) for f in FLAGS])
            self.counter = itertools.count()
            # Successful operations, for replays: client id -> (op, transfer id).
            self.done: dict[str, tuple[object, str]] = {}

        def next_id(self, prefix: str) -> str:
            return f"{prefix}{next(self.counter)}"

        def run(self, ops):
            with db.transaction() as s:
                return ledger.create_transfers(s, ops, now=self.clock.now(), scope=self.scope)

        def expect_refusal(self, ops, status: int, code: str, index: int | None = None) -> None:
            with pytest.raises(LedgerError) as info:
                self.run(ops)
            assert (info.value.status, info.value.code) == (status, code), info.value.message
            if index is not None:
                assert info.value.index == index

        def timeout_at(self, timeout: int | None) -> datetime | None:
            return None if timeout is None else self.clock.now() + timedelta(seconds=timeout)

        @initialize()
        def open_accounts(self) -> None:
            with db.transaction() as s:
                self.ids = [
                    ledger.create_account(
                        s,
                        currency="EUR",
                        code="wallet",
                        now=self.clock.now(),
                        scope=self.scope,
                        flags=f,
                    ).id
                    for f in FLAGS
                ]

        @rule(
            debit=accounts_ix,
            credit=accounts_ix,
            amount=amounts,
            pending=st.booleans(),
            timeout=timeouts,
        )
        def new_transfer(self, debit, credit, amount, pending, timeout) -> None:
            cid = self.next_id("t")
            timeout = timeout if pending else None
            op = NewTransfer(
                self.ids[debit],
                self.ids[credit],
                amount,
                client_id=cid,
                pending=pending,
                timeout_seconds=timeout,
            )
            if debit == credit:
                self.expect_refusal([op], 422, "accounts_must_be_different")
                return
            refusal = self.model.apply_new(
                cid, debit, credit, amount, pending, self.timeout_at(timeout)
            )
            if refusal:
                self.expect_refusal([op], *refusal)
                return
            (result,) = self.run([op])
            assert result.created
            assert (result.transfer.amount, result.transfer.status) == (
                amount,
                "pending" if pending else "posted",
            )
            self.done[cid] = (op, result.transfer.id)

        @precondition(lambda self: self.model.holds)
        @rule(data=st.data(), partial=st.booleans(), extra=st.integers(0, 10))
        def post(self, data, partial, extra) -> None:
            hold_id = data.draw(st.sampled_from(sorted(self.model.holds)), label="hold")
            hold_amount = self.model.holds[hold_id].amount
            amount = None
            if partial:
                # Mostly within the hold, sometimes a little above it.
                amount = data.draw(st.integers(1, hold_amount + extra), label="amount")
            cid = self.next_id("p")
            op = PostPending(hold_id, amount=amount, client_id=cid)
            refusal = self.model.resolve(
                hold_id, hold_amount if amount is None else amount, self.clock.now()
            )
            if refusal:
                self.expect_refusal([op], *refusal)
                return
            (result,) = self.run([op])
            assert result.created
            assert result.transfer.amount == (hold_amount if amount is None else amount)
            self.done[cid] = (op, result.transfer.id)
            with db.read() as s:
                hold = ledger.get_transfer(s, hold_id, scope=self.scope)
            assert (hold.status, hold.posted_amount) == ("posted", result.transfer.amount)

        @precondition(lambda self: self.model.holds)
        @rule(data=st.data())
        def void(self, data) -> None:
            hold_id = data.draw(st.sampled_from(sorted(self.model.holds)), label="hold")
            cid = self.next_id("v")
            op = VoidPending(hold_id, client_id=cid)
            refusal = self.model.resolve(hold_id, None, self.clock.now())
            if refusal:
                self.expect_refusal([op], *refusal)
                return
            (result,) = self.run([op])
            assert result.created
            self.done[cid] = (op, result.transfer.id)

        @rule(seconds=st.integers(min_value=1, max_value=60))
        def advance_clock(self, seconds) -> None:
            self.clock.advance(seconds)

        @rule()
        def expire_due_holds(self) -> None:
            due = self.model.expire(self.clock.now())
            with db.transaction() as s:
                # Other examples' holds in the database may be due too: at least ours are.
                assert ledger.expire_due_holds(s, now=self.clock.now(), limit=10_000) >= due
            with db.read() as s:
                for hold_id, h in self.model.holds.items():
                    status = ledger.get_transfer(s, hold_id, scope=self.scope).status
                    assert status == h.status, hold_id

        @rule(
            specs=st.lists(
                st.tuples(accounts_ix, accounts_ix, amounts, st.booleans()),
                min_size=1,
                max_size=4,
            ),
            failure=st.one_of(st.none(), st.sampled_from(["unknown_account", "self"])),
            data=st.data(),
        )
        def batch(self, specs, failure, data) -> None:
            # Same-account pairs are nudged apart; an intended failure is put in on purpose.
            specs = [(d, c if c != d else (d + 1) % len(FLAGS), a, p) for d, c, a, p in specs]
            fail_at = None
            if failure:
                fail_at = data.draw(st.integers(0, len(specs)), label="fail_at")
                d, c, a, p = specs[0]
                specs.insert(fail_at, (d, "missing" if failure == "unknown_account" else d, a, p))
            ops, trial, expected = [], self.model.copy(), None
            for index, (d, c, a, p) in enumerate(specs):
                cid = self.next_id("b")
                credit_id = "acc_missing" if c == "missing" else self.ids[c]
                ops.append(NewTransfer(self.ids[d], credit_id, a, client_id=cid, pending=p))
                if expected is None and c == "missing":
                    expected = (404, "account_not_found", index)
                elif expected is None:
                    refusal = trial.apply_new(cid, d, c, a, p, None) if c != d else None
                    if refusal:
                        expected = (*refusal, index)
            if failure == "self":
                # Shape checks run over the whole batch before any balance is looked at.
                expected = (422, "accounts_must_be_different", fail_at)
            if expected:
                self.expect_refusal(ops, *expected)
                for op in ops:
                    with db.read() as s, pytest.raises(LedgerError):
                        ledger.get_transfer(s, op.client_id, scope=self.scope)
                return
            results = self.run(ops)
            assert all(r.created for r in results)
            assert len({r.transfer.batch_id for r in results}) == 1
            self.model = trial
            for op, r in zip(ops, results, strict=True):
                self.done[op.client_id] = (op, r.transfer.id)

        @precondition(lambda self: self.done)
        @rule(data=st.data(), change_amount=st.booleans())
        def replay(self, data, change_amount) -> None:
            cid = data.draw(st.sampled_from(sorted(self.done)), label="client_id")
            op, transfer_id = self.done[cid]
            if not change_amount:
                (result,) = self.run([op])
                assert not result.created
                assert result.transfer.id == transfer_id
                return
            if isinstance(op, VoidPending):
                return
            if isinstance(op, PostPending):
                changed = PostPending(
                    op.pending_client_id, amount=1 + (op.amount or 10**6), client_id=cid
                )
            else:
                changed = NewTransfer(
                    op.debit_account_id,
                    op.credit_account_id,
                    op.amount + 1,
                    client_id=cid,
                    pending=op.pending,
                    timeout_seconds=op.timeout_seconds,
                )
            self.expect_refusal([changed], 409, "transfer_exists_with_different_fields")

        @invariant()
        def balances_match_the_model(self) -> None:
            if not self.ids:
                return
            with db.read() as s:
                for acc_id, expected in zip(self.ids, self.model.accounts, strict=True):
                    a = ledger.get_account(s, acc_id, scope=self.scope)
                    totals = (
                        a.debits_posted,
                        a.credits_posted,
                        a.debits_pending,
                        a.credits_pending,
                    )
                    assert totals == expected.totals(), acc_id
                    if a.flags.debits_must_not_exceed_credits:
                        assert a.available >= 0

        @invariant()
        def audit_passes(self) -> None:
            with db.read() as s:
                report = ledger.audit(s)
            assert report.ok, report.problems

    return LedgerMachine


def test_ledger_matches_the_model(db):
    run_state_machine_as_test(
        make_machine(db),
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
