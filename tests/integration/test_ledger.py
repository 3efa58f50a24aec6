"""The ledger service on SQLite and PostgreSQL: transfers, balances, flags, idempotency,
batches, holds, entries and the audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from potluck.bus.models import OutboxEvent
from potluck.clock import utc
from potluck.ledger import service as ledger
from potluck.ledger.models import Entry, Transfer
from potluck.ledger.service import (
    AccountFlags,
    LedgerError,
    NewTransfer,
    PostPending,
    VoidPending,
)

LIMITED = AccountFlags(debits_must_not_exceed_credits=True)
CREDIT_LIMITED = AccountFlags(credits_must_not_exceed_debits=True)


def account(db, clock, *, currency="EUR", flags=None, book="money", scope="system", code="wallet"):
    with db.transaction() as s:
        return ledger.create_account(
            s, currency=currency, code=code, now=clock.now(), flags=flags, book=book, scope=scope
        ).id


def transfer(db, clock, op, *, scope="system"):
    with db.transaction() as s:
        return ledger.create_transfer(s, op, now=clock.now(), scope=scope)


def batch(db, clock, ops, *, scope="system"):
    with db.transaction() as s:
        return ledger.create_transfers(s, ops, now=clock.now(), scope=scope)


def refused(db, clock, op, *, scope="system") -> LedgerError:
    with pytest.raises(LedgerError) as info:
        transfer(db, clock, op, scope=scope)
    return info.value


def get(db, account_id):
    with db.read() as s:
        return ledger.get_account(s, account_id)


def balance(db, account_id):
    a = get(db, account_id)
    return a.total, a.available, a.held


def count(db, model):
    with db.read() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def funded(db, clock):
    """A clearing account, and a limited wallet holding 100."""
    clearing = account(db, clock, code="clearing")
    wallet = account(db, clock, flags=LIMITED)
    transfer(db, clock, NewTransfer(clearing, wallet, 100, client_id="fund"))
    return clearing, wallet


# ---------------------------------------------------------------- posted transfers


def test_posted_transfer_moves_money_and_updates_totals(db, clock):
    a, b = account(db, clock), account(db, clock)
    result = transfer(db, clock, NewTransfer(a, b, 250, client_id="t1", metadata={"x": 1}))
    assert result.created
    t = result.transfer
    assert (t.client_id, t.kind, t.status, t.amount, t.currency) == (
        "t1",
        "posted",
        "posted",
        250,
        "EUR",
    )
    assert (t.debit_account_id, t.credit_account_id, t.metadata) == (a, b, {"x": 1})
    da, cb = get(db, a), get(db, b)
    assert (da.debits_posted, da.credits_posted, da.debits_pending, da.credits_pending) == (
        250,
        0,
        0,
        0,
    )
    assert (cb.debits_posted, cb.credits_posted, cb.debits_pending, cb.credits_pending) == (
        0,
        250,
        0,
        0,
    )
    assert balance(db, a) == (-250, -250, 0)
    assert balance(db, b) == (250, 250, 0)
    with db.read() as s:
        assert ledger.get_transfer(s, "t1", scope="system") == t


def test_balances_follow_a_sequence_of_transfers(db, clock):
    a, b, c = account(db, clock), account(db, clock), account(db, clock)
    transfer(db, clock, NewTransfer(a, b, 100))
    transfer(db, clock, NewTransfer(b, c, 30))
    transfer(db, clock, NewTransfer(c, a, 5))
    assert [get(db, x).total for x in (a, b, c)] == [-95, 70, 25]


# ---------------------------------------------------------------- flags


def test_debits_must_not_exceed_credits_refuses_overdraft(db, clock, funded):
    clearing, wallet = funded
    shop = account(db, clock)
    transfer(db, clock, NewTransfer(wallet, shop, 60))
    error = refused(db, clock, NewTransfer(wallet, shop, 41))
    assert (error.status, error.code, error.field) == (402, "insufficient_funds", "debit_account")
    transfer(db, clock, NewTransfer(wallet, shop, 40))  # exactly the balance is fine
    assert balance(db, wallet) == (0, 0, 0)
    assert refused(db, clock, NewTransfer(wallet, shop, 1)).code == "insufficient_funds"
    assert get(db, shop).total == 100


def test_credits_must_not_exceed_debits_limits_credits(db, clock):
    # A credit line: it may be credited only as far as it has been debited.
    line = account(db, clock, flags=CREDIT_LIMITED, code="credit_line")
    other = account(db, clock)
    error = refused(db, clock, NewTransfer(other, line, 1))
    assert (error.status, error.code, error.field) == (
        402,
        "credit_limit_exceeded",
        "credit_account",
    )
    transfer(db, clock, NewTransfer(line, other, 50))
    transfer(db, clock, NewTransfer(other, line, 50))
    assert refused(db, clock, NewTransfer(other, line, 1)).code == "credit_limit_exceeded"
    assert get(db, line).total == 0


def test_both_flags_are_refused(db, clock):
    with pytest.raises(LedgerError) as info, db.transaction() as s:
        ledger.create_account(
            s,
            currency="EUR",
            code="wallet",
            now=clock.now(),
            flags=AccountFlags(True, True),
        )
    assert info.value.code == "flags_are_mutually_exclusive"


# ---------------------------------------------------------------- refusals


def test_currency_and_ledger_mismatch_are_422(db, clock):
    eur, usd = account(db, clock), account(db, clock, currency="USD")
    iou = account(db, clock, book="iou")
    error = refused(db, clock, NewTransfer(eur, usd, 10))
    assert (error.status, error.code) == (422, "currency_mismatch")
    error = refused(db, clock, NewTransfer(eur, iou, 10))
    assert (error.status, error.code) == (422, "ledger_mismatch")
    other = account(db, clock)
    error = refused(db, clock, NewTransfer(eur, other, 10, currency="USD"))
    assert (error.status, error.code, error.field) == (422, "currency_mismatch", "currency")
    error = refused(db, clock, NewTransfer(eur, other, 10, currency="ABC"))
    assert (error.status, error.code, error.field) == (422, "unknown_currency", "currency")
    assert count(db, Transfer) == 0


def test_self_transfer_is_422(db, clock):
    a = account(db, clock)
    error = refused(db, clock, NewTransfer(a, a, 10))
    assert (error.status, error.code, error.field) == (
        422,
        "accounts_must_be_different",
        "credit_account",
    )


@pytest.mark.parametrize("amount", [0, -1, -100, 1.5, 10.0, "10", True, ledger.MAX_AMOUNT + 1])
def test_bad_amounts_are_422(db, clock, amount):
    a, b = account(db, clock), account(db, clock)
    error = refused(db, clock, NewTransfer(a, b, amount))
    assert (error.status, error.field) == (422, "amount")
    assert count(db, Transfer) == 0


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"timeout_seconds": 10}, "timeout_requires_pending", "timeout_seconds"),
        ({"pending": True, "timeout_seconds": 0}, "invalid_timeout", "timeout_seconds"),
        ({"pending": True, "timeout_seconds": 1.5}, "invalid_timeout", "timeout_seconds"),
        ({"pending": True, "timeout_seconds": 10**12}, "invalid_timeout", "timeout_seconds"),
        ({"code": ""}, "invalid_code", "code"),
        ({"code": "x" * 65}, "invalid_code", "code"),
        ({"client_id": "has space"}, "invalid_transfer_id", "id"),
        ({"client_id": "x" * 65}, "invalid_transfer_id", "id"),
    ],
)
def test_bad_fields_are_422(db, clock, changes, code, field):
    a, b = account(db, clock), account(db, clock)
    error = refused(db, clock, NewTransfer(a, b, 10, **changes))
    assert (error.status, error.code, error.field) == (422, code, field)


def test_unknown_account_is_404(db, clock):
    a = account(db, clock)
    error = refused(db, clock, NewTransfer(a, "acc_missing", 10))
    assert (error.status, error.code, error.field) == (404, "account_not_found", "credit_account")
    error = refused(db, clock, NewTransfer("acc_missing", a, 10))
    assert (error.status, error.field) == (404, "debit_account")
    with pytest.raises(LedgerError) as info, db.read() as s:
        ledger.get_account(s, "acc_missing")
    assert info.value.status == 404


def test_scope_isolation(db, clock):
    a1 = account(db, clock, scope="platform:A")
    a2 = account(db, clock, scope="platform:A")
    b1 = account(db, clock, scope="platform:B")
    with db.read() as s:
        assert ledger.get_account(s, a1, scope="platform:A").id == a1
        assert ledger.get_account(s, a1).id == a1  # the system sees everything
        with pytest.raises(LedgerError) as info:
            ledger.get_account(s, a1, scope="platform:B")
        assert info.value.status == 404
        assert [x.id for x in ledger.list_accounts(s, scope="platform:B", limit=10)[0]] == [b1]
    # B can neither move A's money nor pay into it.
    error = refused(db, clock, NewTransfer(a1, b1, 10), scope="platform:B")
    assert (error.status, error.field) == (404, "debit_account")
    error = refused(db, clock, NewTransfer(b1, a1, 10), scope="platform:B")
    assert (error.status, error.field) == (404, "credit_account")
    # Client ids are per scope: the same id in two scopes is two transfers.
    transfer(db, clock, NewTransfer(a1, a2, 10, client_id="same"), scope="platform:A")
    b2 = account(db, clock, scope="platform:B")
    assert transfer(db, clock, NewTransfer(b1, b2, 7, client_id="same"), scope="platform:B").created
    with db.read() as s:
        assert ledger.get_transfer(s, "same", scope="platform:A").amount == 10
        assert ledger.get_transfer(s, "same", scope="platform:B").amount == 7
        with pytest.raises(LedgerError):
            ledger.get_transfer(s, "same", scope="platform:C")


# ---------------------------------------------------------------- idempotency


def test_identical_retry_returns_the_original_and_writes_nothing(db, clock):
    a, b = account(db, clock), account(db, clock)
    op = NewTransfer(a, b, 100, client_id="pay-1", metadata={"order": "o1"})
    first = transfer(db, clock, op)
    clock.advance(60)
    again = transfer(db, clock, op)
    assert first.created
    assert not again.created
    assert again.transfer == first.transfer
    same_with_currency = NewTransfer(
        a, b, 100, client_id="pay-1", currency="EUR", metadata={"order": "o1"}
    )
    assert transfer(db, clock, same_with_currency).transfer == first.transfer
    assert count(db, Transfer) == 1
    assert count(db, Entry) == 2
    assert get(db, b).total == 100


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 101}, "amount"),
        ({"debit_account_id": "other"}, "debit_account"),
        ({"credit_account_id": "other"}, "credit_account"),
        ({"code": "fee"}, "code"),
        ({"metadata": {"order": "o2"}}, "metadata"),
        ({"currency": "USD"}, "currency"),
        ({"pending": True}, "pending"),
    ],
)
def test_same_id_with_different_fields_is_409(db, clock, changes, field):
    a, b, other = account(db, clock), account(db, clock), account(db, clock)
    fields = {
        "debit_account_id": a,
        "credit_account_id": b,
        "amount": 100,
        "metadata": {"order": "o1"},
    }
    transfer(db, clock, NewTransfer(client_id="pay-1", **fields))
    fields.update({k: other if v == "other" else v for k, v in changes.items()})
    error = refused(db, clock, NewTransfer(client_id="pay-1", **fields))
    assert (error.status, error.code, error.field) == (
        409,
        "transfer_exists_with_different_fields",
        field,
    )
    assert count(db, Transfer) == 1
    assert get(db, b).total == 100


def test_replay_survives_a_later_lack_of_funds(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    op = NewTransfer(wallet, shop, 100, client_id="all-of-it")
    assert transfer(db, clock, op).created
    assert not transfer(db, clock, op).created  # not refused as insufficient funds


def test_a_refused_transfer_can_be_retried_with_the_same_id(db, clock, funded):
    clearing, wallet = funded
    shop = account(db, clock)
    op = NewTransfer(wallet, shop, 150, client_id="big")
    assert refused(db, clock, op).code == "insufficient_funds"
    transfer(db, clock, NewTransfer(clearing, wallet, 50))
    assert transfer(db, clock, op).created


# ---------------------------------------------------------------- batches


def test_batch_is_atomic(db, clock, funded):
    clearing, wallet = funded
    shop, courier = account(db, clock), account(db, clock)
    before = (count(db, Transfer), count(db, Entry), balance(db, wallet))
    ops = [
        NewTransfer(wallet, shop, 50, client_id="b1"),
        NewTransfer(wallet, courier, 30, client_id="b2"),
        NewTransfer(wallet, shop, 30, client_id="b3"),  # 110 > 100
        NewTransfer(clearing, shop, 1, client_id="b4"),
    ]
    with pytest.raises(LedgerError) as info:
        batch(db, clock, ops)
    assert (info.value.status, info.value.code, info.value.index) == (402, "insufficient_funds", 2)
    assert (count(db, Transfer), count(db, Entry), balance(db, wallet)) == before
    assert get(db, shop).total == 0
    with db.read() as s, pytest.raises(LedgerError):
        ledger.get_transfer(s, "b1", scope="system")
    # The same batch without its bad transfer goes through, all of it.
    results = batch(db, clock, [ops[0], ops[1], ops[3]])
    assert all(r.created for r in results)
    assert len({r.transfer.batch_id for r in results}) == 1
    assert results[0].transfer.batch_id is not None
    assert balance(db, wallet) == (20, 20, 0)


def test_batch_errors_name_their_index(db, clock):
    a, b = account(db, clock), account(db, clock)
    with pytest.raises(LedgerError) as info:
        batch(db, clock, [NewTransfer(a, b, 1), NewTransfer(a, b, 0)])
    assert (info.value.index, info.value.field) == (1, "amount")
    with pytest.raises(LedgerError) as info:
        batch(db, clock, [NewTransfer(a, b, 1, client_id="x"), NewTransfer(a, b, 1, client_id="x")])
    assert (info.value.code, info.value.index) == ("duplicate_transfer_id", 1)
    with pytest.raises(LedgerError) as info:
        batch(db, clock, [])
    assert info.value.code == "empty_batch"
    assert count(db, Transfer) == 0


def test_batch_replay(db, clock):
    a, b, c = account(db, clock), account(db, clock), account(db, clock)
    ops = [NewTransfer(a, b, 10, client_id="r1"), NewTransfer(b, c, 4, client_id="r2")]
    first = batch(db, clock, ops)
    again = batch(db, clock, ops)
    assert [r.created for r in first] == [True, True]
    assert [r.created for r in again] == [False, False]
    assert [r.transfer for r in again] == [r.transfer for r in first]
    assert count(db, Transfer) == 2
    # A batch that exists only in part is not silently half-applied.
    with pytest.raises(LedgerError) as info:
        batch(db, clock, [ops[0], NewTransfer(a, c, 1, client_id="r3")])
    assert (info.value.status, info.value.code, info.value.index) == (
        409,
        "batch_partially_exists",
        1,
    )
    # A retried batch whose second transfer had no id cannot be recognised: refused, not re-run.
    mixed = [ops[0], NewTransfer(a, c, 1)]
    with pytest.raises(LedgerError) as info:
        batch(db, clock, mixed)
    assert (info.value.code, info.value.index) == ("batch_partially_exists", 1)
    assert "has no id" in info.value.message
    changed = [ops[0], NewTransfer(b, c, 5, client_id="r2")]
    with pytest.raises(LedgerError) as info:
        batch(db, clock, changed)
    assert (info.value.code, info.value.field, info.value.index) == (
        "transfer_exists_with_different_fields",
        "amount",
        1,
    )
    assert [get(db, x).total for x in (a, b, c)] == [-10, 6, 4]


# ---------------------------------------------------------------- holds


def hold(db, clock, debit, credit, amount, client_id, **kw):
    return transfer(
        db, clock, NewTransfer(debit, credit, amount, client_id=client_id, pending=True, **kw)
    )


def test_a_hold_reduces_available_not_total(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    result = hold(db, clock, wallet, shop, 70, "h1")
    assert (result.transfer.kind, result.transfer.status) == ("pending", "pending")
    assert balance(db, wallet) == (100, 30, 70)
    s = get(db, shop)
    assert (s.total, s.credits_pending) == (0, 70)
    # The hold counts against the limit.
    assert refused(db, clock, NewTransfer(wallet, shop, 31)).code == "insufficient_funds"
    assert (
        refused(db, clock, NewTransfer(wallet, shop, 31, pending=True)).code == "insufficient_funds"
    )
    transfer(db, clock, NewTransfer(wallet, shop, 30))
    assert balance(db, wallet) == (70, 0, 70)


def test_post_in_full(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    post = transfer(db, clock, PostPending("h1")).transfer
    assert (post.kind, post.status, post.amount, post.pending_client_id) == (
        "post_pending",
        "posted",
        70,
        "h1",
    )
    assert balance(db, wallet) == (30, 30, 0)
    assert balance(db, shop) == (70, 70, 0)
    assert get(db, shop).credits_pending == 0
    with db.read() as s:
        h = ledger.get_transfer(s, "h1", scope="system")
    assert (h.status, h.posted_amount, h.resolved_at) == ("posted", 70, clock.now())


def test_partial_post_releases_the_rest(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    post = transfer(db, clock, PostPending("h1", amount=45, client_id="p1")).transfer
    assert (post.client_id, post.amount) == ("p1", 45)
    assert balance(db, wallet) == (55, 55, 0)
    assert balance(db, shop) == (45, 45, 0)
    with db.read() as s:
        assert ledger.get_transfer(s, "h1", scope="system").posted_amount == 45


def test_void_restores(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    void = transfer(db, clock, VoidPending("h1")).transfer
    assert (void.kind, void.status, void.amount) == ("void_pending", "voided", 70)
    assert balance(db, wallet) == (100, 100, 0)
    assert get(db, shop).credits_pending == 0
    with db.read() as s:
        h = ledger.get_transfer(s, "h1", scope="system")
    assert (h.status, h.posted_amount) == ("voided", None)


def test_post_twice(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    first = transfer(db, clock, PostPending("h1", amount=50))
    again = transfer(db, clock, PostPending("h1", amount=50))
    assert first.created
    assert not again.created
    assert again.transfer == first.transfer
    error = refused(db, clock, PostPending("h1", amount=60))
    assert (error.status, error.code, error.field) == (
        409,
        "transfer_exists_with_different_fields",
        "amount",
    )
    # A post with a new id finds the hold already posted.
    error = refused(db, clock, PostPending("h1", client_id="p-other"))
    assert (error.status, error.code) == (409, "pending_transfer_already_posted")
    assert balance(db, wallet) == (50, 50, 0)


def test_post_after_void_is_409(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    transfer(db, clock, VoidPending("h1"))
    error = refused(db, clock, PostPending("h1"))
    assert (error.status, error.code, error.field) == (
        409,
        "pending_transfer_already_voided",
        "pending_id",
    )
    error = refused(db, clock, VoidPending("h1", client_id="v2"))
    assert error.code == "pending_transfer_already_voided"
    assert balance(db, wallet) == (100, 100, 0)


def test_post_above_the_hold_is_422(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    error = refused(db, clock, PostPending("h1", amount=71))
    assert (error.status, error.code, error.field) == (
        422,
        "exceeds_pending_transfer_amount",
        "amount",
    )
    assert refused(db, clock, PostPending("h1", amount=0)).status == 422
    assert balance(db, wallet) == (100, 30, 70)


def test_resolving_what_is_not_a_hold(db, clock, funded):
    clearing, wallet = funded
    error = refused(db, clock, PostPending("nope"))
    assert (error.status, error.code) == (404, "pending_transfer_not_found")
    error = refused(db, clock, VoidPending("fund"))
    assert (error.status, error.code) == (409, "pending_transfer_not_pending")
    # Holds are per scope too.
    hold(db, clock, wallet, clearing, 10, "h1")
    assert refused(db, clock, PostPending("h1"), scope="platform:X").status == 404


def test_expired_hold_cannot_be_posted_and_expiry_releases_it(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    h = hold(db, clock, wallet, shop, 70, "h1", timeout_seconds=60).transfer
    assert h.timeout_at == clock.now() + timedelta(seconds=60)
    clock.advance(59)
    with db.transaction() as s:
        assert ledger.expire_pending(s, h.id, now=clock.now()) is False
        assert ledger.expire_due_holds(s, now=clock.now()) == 0
    clock.advance(1)
    error = refused(db, clock, PostPending("h1"))
    assert (error.status, error.code) == (409, "pending_transfer_expired")
    assert refused(db, clock, VoidPending("h1")).code == "pending_transfer_expired"
    assert balance(db, wallet) == (100, 30, 70)  # still held until expired
    with db.transaction() as s:
        assert ledger.expire_pending(s, h.id, now=clock.now()) is True
    with db.transaction() as s:
        assert ledger.expire_pending(s, h.id, now=clock.now()) is False  # only once
    assert balance(db, wallet) == (100, 100, 0)
    assert get(db, shop).credits_pending == 0
    with db.read() as s:
        assert ledger.get_transfer(s, "h1", scope="system").status == "expired"
        assert ledger.get_transfer(s, "h1.expire", scope="system").kind == "expire_pending"
    assert (
        refused(db, clock, PostPending("h1", client_id="late")).code
        == "pending_transfer_already_expired"
    )


def test_expire_due_holds_expires_only_due_holds(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 10, "soon", timeout_seconds=10)
    hold(db, clock, wallet, shop, 20, "later", timeout_seconds=100)
    hold(db, clock, wallet, shop, 30, "never")
    hold(db, clock, wallet, shop, 5, "posted", timeout_seconds=10)
    transfer(db, clock, PostPending("posted"))
    clock.advance(50)
    with db.transaction() as s:
        assert ledger.expire_due_holds(s, now=clock.now()) == 1
    assert balance(db, wallet) == (95, 45, 50)
    clock.advance(50)
    with db.transaction() as s:
        assert ledger.expire_due_holds(s, now=clock.now()) == 1
        assert ledger.expire_due_holds(s, now=clock.now()) == 0
    assert balance(db, wallet) == (95, 65, 30)


def test_hold_with_timeout_publishes_a_timer(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    h = hold(db, clock, wallet, shop, 10, "h1", timeout_seconds=30).transfer
    hold(db, clock, wallet, shop, 10, "h2")  # no timeout: no timer
    with db.read() as s:
        events = s.execute(
            select(OutboxEvent.data, OutboxEvent.deliver_after).where(
                OutboxEvent.type == ledger.HOLD_TIMEOUT_EVENT
            )
        ).all()
    assert [(data, utc(at)) for data, at in events] == [({"transfer_id": h.id}, h.timeout_at)]


def test_hold_and_post_in_one_batch(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    results = batch(
        db,
        clock,
        [
            NewTransfer(wallet, shop, 80, client_id="h1", pending=True, timeout_seconds=30),
            PostPending("h1", amount=60),
        ],
    )
    assert [r.transfer.kind for r in results] == ["pending", "post_pending"]
    assert balance(db, wallet) == (40, 40, 0)
    with db.read() as s:
        h = ledger.get_transfer(s, "h1", scope="system")
    assert (h.status, h.posted_amount) == ("posted", 60)
    # A retry of the whole batch replays it.
    again = batch(
        db,
        clock,
        [
            NewTransfer(wallet, shop, 80, client_id="h1", pending=True, timeout_seconds=30),
            PostPending("h1", amount=60),
        ],
    )
    assert [r.created for r in again] == [False, False]


def test_post_and_void_of_one_hold_in_one_batch_is_refused(db, clock, funded):
    _, wallet = funded
    shop = account(db, clock)
    hold(db, clock, wallet, shop, 70, "h1")
    with pytest.raises(LedgerError) as info:
        batch(db, clock, [PostPending("h1"), VoidPending("h1")])
    assert (info.value.code, info.value.index) == ("pending_transfer_already_posted", 1)
    assert balance(db, wallet) == (100, 30, 70)


# ---------------------------------------------------------------- entries


def test_every_transfer_writes_exactly_two_entries(db, clock, funded):
    clearing, wallet = funded
    shop = account(db, clock)
    transfer(db, clock, NewTransfer(wallet, shop, 10))
    hold(db, clock, wallet, shop, 20, "h1")
    transfer(db, clock, PostPending("h1", amount=15))
    hold(db, clock, wallet, shop, 5, "h2")
    transfer(db, clock, VoidPending("h2"))
    with db.read() as s:
        per_transfer = s.execute(
            select(
                Entry.transfer_id, func.count(), func.min(Entry.side), func.max(Entry.side)
            ).group_by(Entry.transfer_id)
        ).all()
        transfers = s.execute(select(func.count()).select_from(Transfer)).scalar_one()
    assert len(per_transfer) == transfers == 6
    assert all((n, lo, hi) == (2, "C", "D") for _, n, lo, hi in per_transfer)


def test_list_entries_paginates(db, clock, funded):
    clearing, wallet = funded
    for i in range(5):
        transfer(db, clock, NewTransfer(clearing, wallet, i + 1, client_id=f"e{i}"))
    seen: list[dict] = []
    cursor = None
    pages = 0
    with db.read() as s:
        while True:
            page, more = ledger.list_entries(s, wallet, limit=2, starting_after=cursor)
            seen += page
            pages += 1
            if not more:
                break
            cursor = page[-1]["id"]
    assert pages == 3
    assert [e["transfer"] for e in seen] == ["fund", "e0", "e1", "e2", "e3", "e4"]
    assert [e["posted_delta"] for e in seen] == [100, 1, 2, 3, 4, 5]
    assert {e["side"] for e in seen} == {"C"}
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)
    with db.read() as s:
        page, more = ledger.list_entries(s, wallet, limit=6)
        assert (len(page), more) == (6, False)


# ---------------------------------------------------------------- audit


def test_audit_passes_on_a_busy_ledger(db, clock, funded):
    clearing, wallet = funded
    shop = account(db, clock)
    usd = account(db, clock, currency="USD"), account(db, clock, currency="USD")
    transfer(db, clock, NewTransfer(*usd, 5))
    hold(db, clock, wallet, shop, 20, "h1")
    with db.read() as s:
        report = ledger.audit(s)
    assert report.ok, report.problems
    assert (report.ledgers, report.accounts, report.transfers, report.entries) == (2, 5, 3, 6)


@pytest.mark.corrupts_ledger
def test_audit_reports_a_corrupted_account(db, clock, funded):
    _, wallet = funded
    with db.transaction() as s:
        s.execute(
            text("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = :id"),
            {"id": wallet},
        )
    with db.read() as s:
        report = ledger.audit(s)
    assert not report.ok
    assert any(wallet in p and "credits_posted" in p for p in report.problems)
    assert any("debits posted" in p for p in report.problems)  # the ledger no longer balances


@pytest.mark.corrupts_ledger
def test_audit_reports_a_missing_entry_and_a_broken_limit(db, clock, funded):
    clearing, wallet = funded
    with db.transaction() as s:
        s.execute(text("DELETE FROM ledger_entries WHERE account_id = :id"), {"id": wallet})
    with db.read() as s:
        report = ledger.audit(s)
    assert any(wallet in p for p in report.problems)
    with db.transaction() as s:
        s.execute(
            text("UPDATE ledger_accounts SET debits_posted = 500 WHERE id = :id"), {"id": wallet}
        )
    with db.read() as s:
        report = ledger.audit(s)
    assert any(wallet in p and "exceed credits" in p for p in report.problems)
