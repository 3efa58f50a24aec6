"""Marketplace use cases. Each takes the caller's session; the caller commits once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus import publish
from potluck.bus.outbox import publish_many
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.marketplace.models import (
    Allocation,
    Order,
    Party,
    PlatformAccount,
    Refund,
    SplitCredit,
    SplitRuleSet,
)
from potluck.money import MoneyError, allocate, check_currency
from potluck.splits import SplitError, SplitRules, allocate_split, validate_rules

PARTY_KINDS = ("merchant", "partner", "platform")
WALLET_CODE = "wallet"


def platform_scope(platform_id: str) -> str:
    return f"platform:{platform_id}"


def platform_book(platform_id: str) -> str:
    """A platform's money: its own book (one ledger per currency), as in the ledger API."""
    return f"platform:{platform_id}"


@dataclass(frozen=True, slots=True)
class PartyView:
    id: str
    platform_id: str
    name: str
    kind: str
    currency: str
    wallet_account_id: str
    created_at: datetime


def _view(p: Party) -> PartyView:
    return PartyView(
        id=p.id,
        platform_id=p.platform_id,
        name=p.name,
        kind=p.kind,
        currency=p.currency,
        wallet_account_id=p.wallet_account_id,
        created_at=utc(p.created_at),
    )


def create_party(
    session: Session, *, platform_id: str, name: str, kind: str, currency: str, now: datetime
) -> PartyView:
    """A party and its wallet (an account that can never go below zero)."""
    if kind not in PARTY_KINDS:
        raise DomainError(
            "invalid_party_kind", f"kind must be one of {', '.join(PARTY_KINDS)}", field="kind"
        )
    check_currency(currency)
    party_id = new_id("pty")
    wallet = ledger.create_account(
        session,
        currency=currency,
        code=WALLET_CODE,
        now=now,
        book=platform_book(platform_id),
        scope=platform_scope(platform_id),
        owner=party_id,
        flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
    )
    party = Party(
        id=party_id,
        platform_id=platform_id,
        name=name,
        kind=kind,
        currency=currency,
        wallet_account_id=wallet.id,
        created_at=now,
    )
    session.add(party)
    session.flush()
    return _view(party)


def get_party(session: Session, party_id: str, *, platform_id: str) -> PartyView:
    """The platform's party, or 404 ``party_not_found`` (another platform's party included)."""
    party = session.execute(
        select(Party).where(Party.id == party_id, Party.platform_id == platform_id)
    ).scalar_one_or_none()
    if party is None:
        raise DomainError("party_not_found", f"no party {party_id}", status=404)
    return _view(party)


def list_parties(
    session: Session, *, platform_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[PartyView], bool]:
    query = select(Party).where(Party.platform_id == platform_id)
    if starting_after is not None:
        get_cursor = session.scalar(
            select(Party.id).where(Party.platform_id == platform_id, Party.id == starting_after)
        )
        if get_cursor is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no party {starting_after}",
                field="starting_after",
            )
        query = query.where(Party.id > starting_after)
    rows = session.execute(query.order_by(Party.id).limit(limit + 1)).scalars().all()
    return [_view(p) for p in rows[:limit]], len(rows) > limit


def wallet_balance(session: Session, party: PartyView) -> ledger.AccountView:
    """The party's wallet account, read from the ledger (total, available, held)."""
    return ledger.get_account(session, party.wallet_account_id)


# ---------------------------------------------------------------- platform accounts

PSP_RECEIVABLE_CODE = "psp_receivable"
CLEARING_CODE = "clearing"
# (platform_id, currency) -> {code: account_id}. Only rows read back from the database are
# cached; accounts are never deleted or changed, so an entry never goes stale.
_platform_accounts_cache: dict[tuple[str, str], dict[str, str]] = {}


def platform_accounts(
    session: Session, *, platform_id: str, currency: str, now: datetime
) -> dict[str, str]:
    """The platform's ``psp_receivable`` and ``clearing`` account ids for ``currency``,
    opened on first use.

    ``psp_receivable`` is what the PSP owes the platform (it goes negative as orders come
    in); ``clearing`` holds an order's money until the split credits the parties.
    """
    key = (platform_id, currency)
    cached = _platform_accounts_cache.get(key)
    if cached is not None:
        return cached
    query = select(PlatformAccount.code, PlatformAccount.account_id).where(
        PlatformAccount.platform_id == platform_id, PlatformAccount.currency == currency
    )
    found: dict[str, str] = {code: acc for code, acc in session.execute(query).all()}
    opened = False
    for code in (PSP_RECEIVABLE_CODE, CLEARING_CODE):
        if code not in found:
            found[code] = _open_platform_account(
                session, platform_id=platform_id, currency=currency, code=code, now=now
            )
            opened = True
    if opened:
        return found  # possibly opened in this transaction: cached once read back committed
    _platform_accounts_cache[key] = found
    return found


def _open_platform_account(
    session: Session, *, platform_id: str, currency: str, code: str, now: datetime
) -> str:
    postgres = session.get_bind().dialect.name == "postgresql"
    savepoint = session.begin_nested() if postgres else None
    try:
        account = ledger.create_account(
            session,
            currency=currency,
            code=code,
            now=now,
            book=platform_book(platform_id),
            scope=platform_scope(platform_id),
            owner=platform_scope(platform_id),
            flags=ledger.AccountFlags(),
        )
        session.execute(
            insert(PlatformAccount),
            [
                {
                    "platform_id": platform_id,
                    "currency": currency,
                    "code": code,
                    "account_id": account.id,
                }
            ],
        )
    except IntegrityError:
        # A concurrent first order opened it (PostgreSQL: we waited for its commit).
        if savepoint is None:
            raise
        savepoint.rollback()
        return session.execute(
            select(PlatformAccount.account_id).where(
                PlatformAccount.platform_id == platform_id,
                PlatformAccount.currency == currency,
                PlatformAccount.code == code,
            )
        ).scalar_one()
    if savepoint is not None:
        savepoint.commit()
    return account.id


def _currency(currency: str) -> str:
    try:
        return check_currency(currency)
    except MoneyError as exc:
        raise DomainError(exc.code, str(exc), field="currency") from None


# ---------------------------------------------------------------- split rules


@dataclass(frozen=True, slots=True)
class RuleSetView:
    id: str
    platform_id: str
    currency: str
    version: int
    split: SplitRules
    created_at: datetime


def _rule_set_view(r: SplitRuleSet) -> RuleSetView:
    return RuleSetView(
        id=r.id,
        platform_id=r.platform_id,
        currency=r.currency,
        version=r.version,
        split=SplitRules.from_dict({"rules": r.rules, "remainder_to": r.remainder_to}),
        created_at=utc(r.created_at),
    )


def check_split_parties(
    session: Session, split: SplitRules, *, platform_id: str, currency: str, field: str = ""
) -> None:
    """Every party of ``split`` is the platform's and holds ``currency`` (one query)."""
    rows = session.execute(
        select(Party.id, Party.currency).where(
            Party.platform_id == platform_id, Party.id.in_(split.parties)
        )
    ).all()
    currencies = {pid: cur for pid, cur in rows}
    named = [(f"{field}rules.{i}.party", r.party) for i, r in enumerate(split.rules)]
    named.append((f"{field}remainder_to", split.remainder_to))
    for where, party_id in named:
        if party_id not in currencies:
            raise SplitError("unknown_party", f"no party {party_id}", field=where)
        if currencies[party_id] != currency:
            raise SplitError(
                "currency_mismatch",
                f"party {party_id} holds {currencies[party_id]}, not {currency}",
                field=where,
            )


def put_split_rules(
    session: Session, *, platform_id: str, currency: str, split: SplitRules, now: datetime
) -> RuleSetView:
    """A new version of the platform's rules for ``currency`` (versions start at 1)."""
    _currency(currency)
    validate_rules(split)
    check_split_parties(session, split, platform_id=platform_id, currency=currency)
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(10):
        latest = session.scalar(
            select(func.max(SplitRuleSet.version)).where(
                SplitRuleSet.platform_id == platform_id, SplitRuleSet.currency == currency
            )
        )
        row = SplitRuleSet(
            id=new_id("srs"),
            platform_id=platform_id,
            currency=currency,
            version=(latest or 0) + 1,
            rules=[r.to_dict() for r in split.rules],
            remainder_to=split.remainder_to,
            created_at=now,
        )
        savepoint = session.begin_nested() if postgres else None
        try:
            session.add(row)
            session.flush()
        except IntegrityError:
            # A concurrent PUT took this version number; take the next one.
            if savepoint is None:
                raise
            savepoint.rollback()
            continue
        if savepoint is not None:
            savepoint.commit()
        return _rule_set_view(row)
    raise DomainError("split_rules_busy", "too many concurrent rule changes; retry", status=409)


def current_split_rules(session: Session, *, platform_id: str, currency: str) -> RuleSetView:
    """The platform's newest rules for ``currency``, or 404 ``split_rules_not_found``."""
    row = session.execute(
        select(SplitRuleSet)
        .where(SplitRuleSet.platform_id == platform_id, SplitRuleSet.currency == currency)
        .order_by(SplitRuleSet.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise DomainError(
            "split_rules_not_found", f"no split rules for {currency}", status=404, field="currency"
        )
    return _rule_set_view(row)


# ---------------------------------------------------------------- orders


@dataclass(frozen=True, slots=True)
class AllocationView:
    id: str
    party_id: str
    amount: int
    currency: str
    status: str
    refunded_amount: int
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefundView:
    id: str
    order: str
    amount: int
    currency: str
    parts: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    platform_id: str
    order_id: str
    amount: int
    currency: str
    split_status: str
    rules_version: int | None
    split: SplitRules
    refunded_amount: int
    allocations: list[AllocationView]
    refunds: list[RefundView]
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SplitCreditView:
    id: str
    order: str
    order_id: str
    allocation_id: str
    party_id: str
    amount: int
    currency: str
    transfer_id: str
    created_at: datetime


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _dialect_insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _refund_view(r: Refund) -> RefundView:
    return RefundView(
        id=r.id,
        order=r.order_pk,
        amount=r.amount,
        currency=r.currency,
        parts=list(r.parts),
        created_at=utc(r.created_at),
    )


def _order_views(session: Session, orders: Sequence[Order]) -> list[OrderView]:
    """Orders with their allocations and refunds: three queries whatever the page size."""
    ids = [o.id for o in orders]
    allocations: dict[str, list[AllocationView]] = {i: [] for i in ids}
    refunds: dict[str, list[RefundView]] = {i: [] for i in ids}
    if ids:
        for a in session.execute(
            select(Allocation)
            .where(Allocation.order_pk.in_(ids))
            .order_by(Allocation.order_pk, Allocation.position)
        ).scalars():
            allocations[a.order_pk].append(
                AllocationView(
                    id=a.id,
                    party_id=a.party_id,
                    amount=a.amount,
                    currency=a.currency,
                    status=a.status,
                    refunded_amount=a.refunded_amount,
                    applied_at=utc(a.applied_at) if a.applied_at else None,
                )
            )
        for r in session.execute(
            select(Refund).where(Refund.order_pk.in_(ids)).order_by(Refund.id)
        ).scalars():
            refunds[r.order_pk].append(_refund_view(r))
    return [
        OrderView(
            id=o.id,
            platform_id=o.platform_id,
            order_id=o.order_id,
            amount=o.amount,
            currency=o.currency,
            split_status=o.split_status,
            rules_version=o.rules_version,
            split=SplitRules.from_dict(o.split),
            refunded_amount=o.refunded_amount,
            allocations=allocations[o.id],
            refunds=refunds[o.id],
            created_at=utc(o.created_at),
            completed_at=utc(o.completed_at) if o.completed_at else None,
        )
        for o in orders
    ]


def _check_amount(amount: int, field: str = "amount") -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise DomainError("invalid_amount", "amount must be a positive integer", field=field)
    if amount > ledger.MAX_AMOUNT:
        raise DomainError("invalid_amount", f"amount is at most {ledger.MAX_AMOUNT}", field=field)


def _resolve_split(
    session: Session,
    *,
    platform_id: str,
    currency: str,
    split: SplitRules | None,
) -> tuple[SplitRules, int | None]:
    if split is not None:
        validate_rules(split, field="split.")
        check_split_parties(
            session, split, platform_id=platform_id, currency=currency, field="split."
        )
        return split, None
    try:
        current = current_split_rules(session, platform_id=platform_id, currency=currency)
    except DomainError:
        other = session.scalar(
            select(SplitRuleSet.currency).where(SplitRuleSet.platform_id == platform_id).limit(1)
        )
        if other is not None:
            raise DomainError(
                "currency_mismatch",
                f"the platform's split rules are for other currencies, not {currency}; "
                "send a split or PUT /v1/split-rules for this currency",
                field="currency",
            ) from None
        raise DomainError(
            "split_rules_missing",
            "no split rules: PUT /v1/split-rules first or send the order's own split",
            field="split",
        ) from None
    return current.split, current.version


def record_order(
    session: Session,
    *,
    platform_id: str,
    order_id: str,
    amount: int,
    currency: str,
    split: SplitRules | None = None,
    now: datetime,
) -> OrderView:
    """Record a paid order: PSP receivable → clearing, ``order.recorded``; split later.

    Refused before any write: bad amount or currency, rules that are missing, invalid or
    larger than the amount (422); the platform's ``order_id`` already recorded (409).
    """
    _check_amount(amount)
    _currency(currency)
    resolved, version = _resolve_split(
        session, platform_id=platform_id, currency=currency, split=split
    )
    try:
        allocate_split(amount, resolved)  # refuse now what the splitter could not split
    except SplitError as exc:
        raise SplitError(exc.code, exc.message, field="amount") from None
    pk = new_id("ord")
    inserted = session.execute(
        _dialect_insert(session)(Order)
        .values(
            id=pk,
            platform_id=platform_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            split_status="pending",
            rules_version=version,
            split=resolved.to_dict(),
            allocations_total=None,
            allocations_applied=0,
            refunded_amount=0,
            created_at=now,
        )
        # A concurrent twin waits for our commit, then inserts nothing: a 409, not a 500.
        .on_conflict_do_nothing(index_elements=["platform_id", "order_id"])
        .returning(Order.id)
    ).scalar_one_or_none()
    if inserted is None:
        raise DomainError(
            "order_exists", f"order {order_id} was already recorded", status=409, field="order_id"
        )
    publish(
        session,
        "order.recorded",
        {
            "platform_id": platform_id,
            "order": pk,
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
            "rules_version": version,
        },
        now=now,
    )
    # The ledger last: the platform's clearing account is held for the write and the commit.
    accounts = platform_accounts(session, platform_id=platform_id, currency=currency, now=now)
    ledger.create_transfer(
        session,
        ledger.NewTransfer(
            debit_account_id=accounts[PSP_RECEIVABLE_CODE],
            credit_account_id=accounts[CLEARING_CODE],
            amount=amount,
            currency=currency,
            client_id=f"order-{pk}",
            code="order_payment",
        ),
        now=now,
        scope=platform_scope(platform_id),
    )
    return OrderView(
        id=pk,
        platform_id=platform_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        split_status="pending",
        rules_version=version,
        split=resolved,
        refunded_amount=0,
        allocations=[],
        refunds=[],
        created_at=utc(now),
        completed_at=None,
    )


def get_order(session: Session, order_pk: str, *, platform_id: str) -> OrderView:
    order = session.execute(
        select(Order).where(Order.id == order_pk, Order.platform_id == platform_id)
    ).scalar_one_or_none()
    if order is None:
        raise DomainError("order_not_found", f"no order {order_pk}", status=404)
    return _order_views(session, [order])[0]


def list_orders(
    session: Session,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None = None,
    order_id: str | None = None,
) -> tuple[list[OrderView], bool]:
    """The platform's orders, oldest first; ``order_id`` filters on the platform's own id."""
    query = select(Order).where(Order.platform_id == platform_id)
    if order_id is not None:
        query = query.where(Order.order_id == order_id)
    if starting_after is not None:
        known = session.scalar(
            select(Order.id).where(Order.platform_id == platform_id, Order.id == starting_after)
        )
        if known is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no order {starting_after}",
                field="starting_after",
            )
        query = query.where(Order.id > starting_after)
    rows = session.execute(query.order_by(Order.id).limit(limit + 1)).scalars().all()
    return _order_views(session, rows[:limit]), len(rows) > limit


# ---------------------------------------------------------------- the split (event handlers)


def split_order(session: Session, *, order_pk: str, now: datetime) -> int:
    """Split one order (see ``split_orders``)."""
    return split_orders(session, order_pks=[order_pk], now=now)


def split_orders(session: Session, *, order_pks: Sequence[str], now: datetime) -> int:
    """Compute and store the orders' allocations and request one wallet credit per party.

    Returns the number of credits requested. An order already split is skipped (a duplicate
    ``order.recorded`` that got past the inbox changes nothing): the claim is a conditional
    UPDATE (``allocations_total IS NULL``) that only one caller wins.
    """
    wanted = sorted(set(order_pks))
    orders = {
        o.id: o
        for o in session.execute(
            select(
                Order.id,
                Order.platform_id,
                Order.order_id,
                Order.amount,
                Order.currency,
                Order.split,
            ).where(Order.id.in_(wanted))
        ).all()
    }
    if len(orders) != len(wanted):
        missing = sorted(set(wanted) - set(orders))
        raise DomainError("order_not_found", f"no order {missing[0]}", status=404)
    parts = {
        pk: allocate_split(o.amount, SplitRules.from_dict(o.split)) for pk, o in orders.items()
    }
    # One conditional UPDATE claims every order not split yet.
    claimed = set(
        session.execute(
            update(Order)
            .where(Order.id.in_(wanted), Order.allocations_total.is_(None))
            .values(allocations_total=case({pk: len(p) for pk, p in parts.items()}, value=Order.id))
            .returning(Order.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    rows = [
        {
            "id": new_id("alc"),
            "order_pk": pk,
            "platform_id": orders[pk].platform_id,
            "party_id": party_id,
            "amount": amount,
            "currency": orders[pk].currency,
            "status": "requested",
            "refunded_amount": 0,
            "position": position,
            "created_at": now,
            "applied_at": None,
        }
        for pk in wanted
        if pk in claimed
        for position, (party_id, amount) in enumerate(parts[pk].items())
    ]
    if not rows:
        return 0
    # Core executemany (one multi-row INSERT), not the ORM's bulk path: a hot loop.
    session.connection().execute(insert(_table(Allocation)), rows)
    publish_many(
        session,
        [
            (
                "wallet.credit.requested",
                {
                    "platform_id": row["platform_id"],
                    "order": row["order_pk"],
                    "order_id": orders[row["order_pk"]].order_id,
                    "allocation_id": row["id"],
                    "party_id": row["party_id"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                },
            )
            for row in rows
        ],
        now=now,
    )
    return len(rows)


def credit_transfer_id(allocation_id: str) -> str:
    """The ledger client id of an allocation's credit: one per allocation, ever."""
    return f"split-{allocation_id}"


def apply_credit(session: Session, *, allocation_id: str, now: datetime) -> bool:
    """Credit one allocation (see ``apply_credits``); False if it was already applied."""
    return apply_credits(session, allocation_ids=[allocation_id], now=now) == 1


def apply_credits(session: Session, *, allocation_ids: Sequence[str], now: datetime) -> int:
    """Credit allocations to their parties' wallets (clearing → wallet), record the split
    history and complete the orders whose last allocation this was. Returns how many
    credits were applied now.

    Exactly once per allocation, even if an event is applied twice: the allocation rows are
    locked (PostgreSQL) and flip requested → applied in a conditional UPDATE, so a twin
    waits and then finds nothing to do; and each ledger transfer has a client id derived from
    its allocation, so even a second post would be a replay that writes nothing. An order
    completes in an atomic increment of its row, so of several concurrent credits of one
    order exactly one sees the last one applied.

    Locks are taken in one order everywhere (allocations, then orders, then ledger accounts,
    each by ascending id), and the ledger goes last: the platform's clearing account, which
    every credit and order of the platform touches, is held only for the ledger write and the
    commit. Credits of one platform go to the ledger as one batch.
    """
    wanted = sorted(set(allocation_ids))
    rows = session.execute(
        select(
            Allocation.id,
            Allocation.order_pk,
            Allocation.platform_id,
            Allocation.party_id,
            Allocation.amount,
            Allocation.currency,
            Allocation.status,
            Party.wallet_account_id,
        )
        .join(Party, Party.id == Allocation.party_id)
        .where(Allocation.id.in_(wanted))
        .order_by(Allocation.id)
        .with_for_update(of=Allocation, key_share=True)
    ).all()
    if len(rows) != len(wanted):
        missing = sorted(set(wanted) - {r.id for r in rows})
        # Not committed yet or unknown: fail, so that the bus retries (then dead-letters).
        raise DomainError("allocation_not_found", f"no allocation {missing[0]}", status=404)
    todo = [r for r in rows if r.status == "requested"]
    if not todo:
        return 0
    won = set(
        session.execute(
            update(Allocation)
            .where(Allocation.id.in_([r.id for r in todo]), Allocation.status == "requested")
            .values(status="applied", applied_at=now)
            .returning(Allocation.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    applied = [r for r in todo if r.id in won]
    if not applied:
        return 0  # a concurrent twin applied them (SQLite, or a lock-free read)
    per_order: dict[str, list[Any]] = {}
    for r in applied:
        per_order.setdefault(r.order_pk, []).append(r)
    # One UPDATE for every order of the batch: add its credits and complete it if that was
    # the last one. Each row is updated under its row lock (PostgreSQL), and the new count
    # is RETURNed, so of concurrent credits of one order exactly one sees it complete.
    if session.get_bind().dialect.name == "postgresql":
        # Row locks in id order, so that two batches sharing orders cannot deadlock. NO KEY
        # UPDATE (key_share): what the UPDATE below takes anyway, and it does not conflict
        # with the KEY SHARE locks of foreign keys pointing at the order.
        session.execute(
            select(Order.id)
            .where(Order.id.in_(sorted(per_order)))
            .order_by(Order.id)
            .with_for_update(key_share=True)
        )
    added = case({pk: len(c) for pk, c in per_order.items()}, value=Order.id)
    now_applied = Order.allocations_applied + added
    last = now_applied == Order.allocations_total
    progress = session.execute(
        update(Order)
        .where(Order.id.in_(sorted(per_order)))
        .values(
            allocations_applied=now_applied,
            split_status=case((last, "completed"), else_=Order.split_status),
            completed_at=case((last, now), else_=Order.completed_at),
        )
        .returning(
            Order.id,
            Order.allocations_applied,
            Order.allocations_total,
            Order.order_id,
            Order.amount,
        )
        .execution_options(synchronize_session=False)
    ).all()
    events: list[tuple[str, dict[str, Any]]] = []
    for row in sorted(progress, key=lambda r: r.id):
        credits = per_order[row.id]
        common = {"platform_id": credits[0].platform_id, "order": row.id, "order_id": row.order_id}
        events.extend(
            (
                "wallet.credited",
                {
                    **common,
                    "allocation_id": r.id,
                    "party_id": r.party_id,
                    "amount": r.amount,
                    "currency": r.currency,
                    "transfer_id": credit_transfer_id(r.id),
                },
            )
            for r in credits
        )
        if row.allocations_applied == row.allocations_total:
            events.append(
                (
                    "split.completed",
                    {
                        **common,
                        "amount": row.amount,
                        "currency": credits[0].currency,
                        "allocations": row.allocations_total,
                    },
                )
            )
    # History after the order rows are locked: its foreign key takes a KEY SHARE lock on
    # the order, which must not come before our own lock on it.
    session.connection().execute(
        insert(_table(SplitCredit)),
        [
            {
                "id": new_id("spl"),
                "platform_id": r.platform_id,
                "order_pk": r.order_pk,
                "allocation_id": r.id,
                "party_id": r.party_id,
                "amount": r.amount,
                "currency": r.currency,
                "transfer_id": credit_transfer_id(r.id),
                "created_at": now,
            }
            for r in applied
        ],
    )
    publish_many(session, events, now=now)
    by_platform: dict[str, list[Any]] = {}
    for r in applied:
        by_platform.setdefault(r.platform_id, []).append(r)
    for platform_id in sorted(by_platform):  # a fixed order: no lock cycles between batches
        ops: list[ledger.Operation] = []
        for r in by_platform[platform_id]:
            accounts = platform_accounts(
                session, platform_id=platform_id, currency=r.currency, now=now
            )
            ops.append(
                ledger.NewTransfer(
                    debit_account_id=accounts[CLEARING_CODE],
                    credit_account_id=r.wallet_account_id,
                    amount=r.amount,
                    currency=r.currency,
                    client_id=credit_transfer_id(r.id),
                    code="split_credit",
                )
            )
        ledger.create_transfers(session, ops, now=now, scope=platform_scope(platform_id))
    return len(applied)


def list_split_history(
    session: Session,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None = None,
    order_pk: str | None = None,
    order_id: str | None = None,
) -> tuple[list[SplitCreditView], bool]:
    """Credits applied, oldest first: all the platform's, or one order's (by either id)."""
    query = (
        select(SplitCredit, Order.order_id)
        .join(Order, Order.id == SplitCredit.order_pk)
        .where(SplitCredit.platform_id == platform_id)
    )
    if order_pk is not None or order_id is not None:
        lookup = select(Order.id).where(Order.platform_id == platform_id)
        if order_pk is not None:
            lookup = lookup.where(Order.id == order_pk)
        if order_id is not None:
            lookup = lookup.where(Order.order_id == order_id)
        pk = session.scalar(lookup)
        if pk is None:
            raise DomainError("order_not_found", f"no order {order_id or order_pk}", status=404)
        query = query.where(SplitCredit.order_pk == pk)
    if starting_after is not None:
        known = session.scalar(
            select(SplitCredit.id).where(
                SplitCredit.platform_id == platform_id, SplitCredit.id == starting_after
            )
        )
        if known is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no split entry {starting_after}",
                field="starting_after",
            )
        query = query.where(SplitCredit.id > starting_after)
    rows = session.execute(query.order_by(SplitCredit.id).limit(limit + 1)).all()
    views = [
        SplitCreditView(
            id=c.id,
            order=c.order_pk,
            order_id=oid,
            allocation_id=c.allocation_id,
            party_id=c.party_id,
            amount=c.amount,
            currency=c.currency,
            transfer_id=c.transfer_id,
            created_at=utc(c.created_at),
        )
        for c, oid in rows[:limit]
    ]
    return views, len(rows) > limit


# ---------------------------------------------------------------- refunds


def refund_order(
    session: Session, *, platform_id: str, order_pk: str, amount: int, now: datetime
) -> RefundView:
    """Reverse ``amount`` of a split order from the parties' wallets, in proportion to what
    each still has from it, back through clearing to the PSP receivable: one ledger batch.

    409 ``split_pending`` before the split completed; 422 ``refund_exceeds_order`` past the
    order amount; 402 ``insufficient_funds`` (nothing written) if a wallet cannot pay its part.
    """
    _check_amount(amount)
    # The order row lock serializes refunds of one order (the refunded total is read under it).
    order = session.execute(
        select(Order)
        .where(Order.id == order_pk, Order.platform_id == platform_id)
        .with_for_update(key_share=True)
    ).scalar_one_or_none()
    if order is None:
        raise DomainError("order_not_found", f"no order {order_pk}", status=404)
    if order.split_status != "completed":
        raise DomainError(
            "split_pending", "the order's split is not completed yet; retry later", status=409
        )
    left = order.amount - order.refunded_amount
    if amount > left:
        raise DomainError(
            "refund_exceeds_order",
            f"at most {left} of this order is left to refund",
            field="amount",
        )
    locked = session.execute(
        select(
            Allocation.id,
            Allocation.party_id,
            Allocation.amount,
            Allocation.refunded_amount,
            Allocation.position,
        )
        .where(Allocation.order_pk == order.id)
        .order_by(Allocation.id)  # locks in id order, as apply_credits takes them
        .with_for_update(key_share=True)
    ).all()
    allocations = sorted(locked, key=lambda a: a.position)
    wallets = dict(
        session.execute(
            select(Party.id, Party.wallet_account_id).where(
                Party.id.in_([a.party_id for a in allocations])
            )
        ).all()
    )
    # Weights: what each party still has from this order, so no part exceeds it.
    shares = allocate(amount, [a.amount - a.refunded_amount for a in allocations])
    refund_id = new_id("rfd")
    accounts = platform_accounts(session, platform_id=platform_id, currency=order.currency, now=now)
    ops: list[ledger.Operation] = []
    parts: list[dict[str, Any]] = []
    for i, (a, share) in enumerate(zip(allocations, shares, strict=True)):
        if share == 0:
            continue
        ops.append(
            ledger.NewTransfer(
                debit_account_id=wallets[a.party_id],
                credit_account_id=accounts[CLEARING_CODE],
                amount=share,
                currency=order.currency,
                client_id=f"{refund_id}-{i}",
                code="refund_reversal",
            )
        )
        parts.append({"party": a.party_id, "allocation_id": a.id, "amount": share})
    ops.append(
        ledger.NewTransfer(
            debit_account_id=accounts[CLEARING_CODE],
            credit_account_id=accounts[PSP_RECEIVABLE_CODE],
            amount=amount,
            currency=order.currency,
            client_id=refund_id,
            code="refund",
        )
    )
    try:
        ledger.create_transfers(session, ops, now=now, scope=platform_scope(platform_id))
    except ledger.LedgerError as exc:
        exc.index = None  # the batch is ours, not the caller's: name no transfer in it
        raise
    allocations_table = _table(Allocation)
    session.connection().execute(
        update(allocations_table)
        .where(allocations_table.c.id == bindparam("alc_id"))
        .values(refunded_amount=allocations_table.c.refunded_amount + bindparam("share")),
        [{"alc_id": p["allocation_id"], "share": p["amount"]} for p in parts],
    )
    order.refunded_amount += amount
    refund = Refund(
        id=refund_id,
        platform_id=platform_id,
        order_pk=order.id,
        amount=amount,
        currency=order.currency,
        parts=[{"party": p["party"], "amount": p["amount"]} for p in parts],
        created_at=now,
    )
    session.add(refund)
    session.flush()
    publish(
        session,
        "order.refunded",
        {
            "platform_id": platform_id,
            "order": order.id,
            "order_id": order.order_id,
            "refund_id": refund_id,
            "amount": amount,
            "currency": order.currency,
            "refunded_amount": order.refunded_amount,
            "parts": refund.parts,
        },
        now=now,
    )
    return _refund_view(refund)
