"""Merchant settlement: every day, each merchant party's available wallet balance goes to its
bank account as one payout, and a report of what happened is kept.

* The timer ``wallets.merchant_settlement.tick`` fires once a day at
  ``merchant_settlement_time`` (UTC) and settles the day before (the business day). It is a
  self-renewing chain like the maintenance tick: the next day's tick is scheduled first,
  de-duplicated by its business day, so any number of processes scheduling it make one.
  It fans out: one ``wallets.merchant_settlement.due`` event per merchant party, each settled
  in its own delivery transaction (a merchant's trouble is retried by the bus and never holds
  up the others, and the platform's in-transit account is locked for one payout at a time).
* ``settle_party`` is the unit: one report row per (party, day, currency), inserted *before*
  the payout in the same transaction. The unique key is the settlement's idempotency key
  (``settlement:<party>:<day>``): a rerun, a second timer or a concurrent CLI run waits for
  the first and then returns its report, so a merchant is never paid twice for one day.
  Only a ``failed`` report is tried again by a rerun.
* The payout is ``payouts.service.create_payout`` (a hold on the wallet until the bank
  answers); the amount is the wallet's *available* balance, so money already held by another
  pending payout is never swept twice.
* "Default bank account": payouts has no such notion (nor a verified/active flag), so it is
  the party's earliest bank account (ids are time-ordered). The payout's currency is the
  party's (a party has one wallet, in one currency).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import Event, publish
from potluck.bus.registry import HandlerContext, HandlerRegistry
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.ledger.models import Entry
from potluck.marketplace import service as marketplace
from potluck.marketplace.models import Party
from potluck.payouts import service as payouts
from potluck.wallets.settlement_models import MerchantSettlement

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck
    from potluck.config import Settings

log = structlog.get_logger()

SERVICE = "wallets"
TICK = "wallets.merchant_settlement.tick"
DUE = "wallets.merchant_settlement.due"
SETTLED = "merchant.settled"
MERCHANT = "merchant"

PAID_OUT = "paid_out"
NOTHING_TO_SETTLE = "nothing_to_settle"
NO_BANK_ACCOUNT = "no_bank_account"
FAILED = "failed"
STATUSES = (PAID_OUT, NOTHING_TO_SETTLE, NO_BANK_ACCOUNT, FAILED)

# A payment leaving the wallet between reading the balance and placing the hold makes the
# hold fail with insufficient_funds; read again and retry a few times before giving up.
_HOLD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class MerchantSettlementView:
    id: str
    platform_id: str
    party_id: str
    date: date
    currency: str
    opening_available: int
    credits_received: int
    amount_swept: int
    payout_id: str | None
    bank_account_id: str | None
    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime

    def event_data(self) -> dict[str, Any]:
        return {
            "platform_id": self.platform_id,
            "settlement_id": self.id,
            "party_id": self.party_id,
            "date": self.date.isoformat(),
            "currency": self.currency,
            "opening_available": self.opening_available,
            "credits_received": self.credits_received,
            "amount_swept": self.amount_swept,
            "payout_id": self.payout_id,
            "status": self.status,
        }


def _view(r: MerchantSettlement) -> MerchantSettlementView:
    return MerchantSettlementView(
        id=r.id,
        platform_id=r.platform_id,
        party_id=r.party_id,
        date=r.day,
        currency=r.currency,
        opening_available=r.opening_available,
        credits_received=r.credits_received,
        amount_swept=r.amount_swept,
        payout_id=r.payout_id,
        bank_account_id=r.bank_account_id,
        status=r.status,
        reason=r.reason,
        created_at=utc(r.created_at),
        updated_at=utc(r.updated_at),
    )


# ------------------------------------------------------------------ when


def settlement_time(settings: Settings) -> time:
    hours, minutes = settings.merchant_settlement_time.split(":")
    return time(int(hours), int(minutes), tzinfo=UTC)


def next_run(now: datetime, at: time) -> datetime:
    """The next ``at`` (UTC) strictly after ``now``."""
    now = utc(now)
    due = datetime.combine(now.date(), at)
    return due if due > now else due + timedelta(days=1)


def business_day(run_at: datetime) -> date:
    """The day a run settles: the one before it (a 02:00 run closes yesterday)."""
    return utc(run_at).date() - timedelta(days=1)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


# ------------------------------------------------------------------ the timer


def schedule(session: Session, *, now: datetime, at: time) -> str | None:
    """Make sure the next daily tick exists (one per business day, whoever schedules it)."""
    due = next_run(now, at)
    day = business_day(due)
    try:
        with session.begin_nested():
            return publish(
                session,
                TICK,
                {"date": day.isoformat()},
                now=now,
                deliver_after=due,
                dedupe_key=f"{TICK}:{day.isoformat()}",
            )
    except IntegrityError:
        return None  # scheduled by someone else: that tick is ours too


def ensure_scheduled(app: Potluck) -> None:
    """Call when the wallets workers start (the first tick; later ticks schedule the next)."""
    if not app.settings.merchant_settlement_enabled:
        return
    try:
        with app.db.transaction() as s:
            schedule(s, now=app.clock.now(), at=settlement_time(app.settings))
    except IntegrityError:
        pass


def on_tick(ctx: HandlerContext, event: Event) -> None:
    if not ctx.app.settings.merchant_settlement_enabled:
        return  # the chain stops; ensure_scheduled starts it again once re-enabled
    # The next link first, so that nothing below can cost the chain its next day.
    schedule(ctx.session, now=ctx.now, at=settlement_time(ctx.app.settings))
    day = str(event.data["date"])
    parties = merchant_parties(ctx.session)
    ctx.publish_many(
        [(DUE, {"platform_id": pl, "party_id": pa, "date": day}) for pl, pa in parties]
    )
    log.info("wallets.merchant_settlement", date=day, merchants=len(parties))


def on_due(ctx: HandlerContext, event: Event) -> None:
    """One merchant's sweep, in this delivery's transaction (a redelivery finds the report)."""
    settle_party(
        ctx.session,
        platform_id=str(event.data["platform_id"]),
        party_id=str(event.data["party_id"]),
        day=date.fromisoformat(str(event.data["date"])),
        now=ctx.now,
    )


def register(registry: HandlerRegistry) -> None:
    registry.register(SERVICE, TICK, on_tick)
    registry.register(SERVICE, DUE, on_due)


# ------------------------------------------------------------------ settling


def merchant_parties(session: Session) -> list[tuple[str, str]]:
    """(platform_id, party_id) of every merchant party, in id order.

    Read straight from marketplace's table: it has no cross-platform list of parties.
    """
    rows = session.execute(
        select(Party.platform_id, Party.id).where(Party.kind == MERCHANT).order_by(Party.id)
    ).all()
    return [(platform_id, party_id) for platform_id, party_id in rows]


def credits_received(session: Session, account_id: str, day: date) -> int:
    """What was credited (posted) to the account during ``day`` (UTC)."""
    start, end = day_bounds(day)
    total = session.execute(
        select(func.coalesce(func.sum(Entry.posted_delta), 0)).where(
            Entry.account_id == account_id,
            Entry.side == "C",
            Entry.created_at >= start,
            Entry.created_at < end,
        )
    ).scalar_one()
    return int(total)


def default_bank_account(session: Session, *, platform_id: str, party_id: str) -> str | None:
    """The party's earliest bank account (payouts keeps no "default" nor "verified" flag)."""
    accounts, _ = payouts.list_bank_accounts(
        session, platform_id=platform_id, party_id=party_id, limit=1
    )
    return accounts[0].id if accounts else None


def _find(session: Session, party_id: str, day: date, currency: str) -> MerchantSettlement | None:
    return session.execute(
        select(MerchantSettlement)
        .where(
            MerchantSettlement.party_id == party_id,
            MerchantSettlement.day == day,
            MerchantSettlement.currency == currency,
        )
        .with_for_update()
    ).scalar_one_or_none()


def _claim(
    session: Session, *, platform_id: str, party_id: str, day: date, currency: str, now: datetime
) -> tuple[MerchantSettlement, bool]:
    """The day's report row, inserted now if there is none: (row, whether to settle)."""
    row = _find(session, party_id, day, currency)
    if row is None:
        row = MerchantSettlement(
            id=new_id("mst"),
            platform_id=platform_id,
            party_id=party_id,
            day=day,
            currency=currency,
            opening_available=0,
            credits_received=0,
            amount_swept=0,
            status=FAILED,  # until settled below, in this same transaction
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return row, True
        except IntegrityError:
            # A concurrent run inserted it (PostgreSQL: we waited for its commit): its report.
            row = _find(session, party_id, day, currency)
            if row is None:  # pragma: no cover - the conflicting row was committed
                raise
    return row, row.status == FAILED


def settle_party(
    session: Session, *, platform_id: str, party_id: str, day: date, now: datetime
) -> MerchantSettlementView:
    """Sweep the party's available balance to its bank account, once per day.

    Runs in the caller's transaction; a second call for the same day returns the stored
    report (a ``failed`` one is tried again).
    """
    party = marketplace.get_party(session, party_id, platform_id=platform_id)
    row, todo = _claim(
        session,
        platform_id=platform_id,
        party_id=party.id,
        day=day,
        currency=party.currency,
        now=now,
    )
    if not todo:
        return _view(row)
    row.credits_received = credits_received(session, party.wallet_account_id, day)
    row.bank_account_id = default_bank_account(session, platform_id=platform_id, party_id=party.id)
    row.reason = None
    row.updated_at = now
    for _ in range(_HOLD_ATTEMPTS):
        available = ledger.get_account(session, party.wallet_account_id).available
        row.opening_available = available
        if available <= 0:
            row.status = NOTHING_TO_SETTLE
            break
        if row.bank_account_id is None:
            row.status = NO_BANK_ACCOUNT
            break
        try:
            with session.begin_nested():
                payout = payouts.create_payout(
                    session,
                    platform_id=platform_id,
                    party_id=party.id,
                    bank_account_id=row.bank_account_id,
                    amount=available,
                    currency=party.currency,
                    now=now,
                )
        except DomainError as exc:
            row.status, row.reason = FAILED, f"{exc.code}: {exc.message}"[:500]
            if exc.code == "insufficient_funds":
                continue  # spent meanwhile: read the balance again
            break
        row.status, row.reason = PAID_OUT, None
        row.amount_swept, row.payout_id = available, payout.id
        break
    session.flush()
    view = _view(row)
    publish(session, SETTLED, view.event_data(), now=now)
    return view


def _record_failure(
    session: Session, platform_id: str, party_id: str, day: date, now: datetime, exc: Exception
) -> MerchantSettlementView:
    party = marketplace.get_party(session, party_id, platform_id=platform_id)
    row, _ = _claim(
        session,
        platform_id=platform_id,
        party_id=party_id,
        day=day,
        currency=party.currency,
        now=now,
    )
    row.status, row.reason, row.updated_at = FAILED, repr(exc)[:500], now
    session.flush()
    return _view(row)


def run(app: Potluck, day: date) -> list[MerchantSettlementView]:
    """``potluck wallets settle --date D``: every merchant, one transaction each."""
    with app.db.read() as s:
        parties = merchant_parties(s)
    out: list[MerchantSettlementView] = []
    for platform_id, party_id in parties:
        try:
            with app.db.transaction() as s:
                out.append(
                    settle_party(
                        s, platform_id=platform_id, party_id=party_id, day=day, now=app.clock.now()
                    )
                )
        except Exception as exc:
            log.exception("wallets.merchant_settlement_failed", party=party_id)
            with app.db.transaction() as s:
                out.append(_record_failure(s, platform_id, party_id, day, app.clock.now(), exc))
    return out


# ------------------------------------------------------------------ reading


def list_settlements(
    session: Session,
    *,
    platform_id: str,
    party_id: str,
    limit: int,
    starting_after: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[list[MerchantSettlementView], bool]:
    """A party's reports, newest day first; another platform's party is 404."""
    marketplace.get_party(session, party_id, platform_id=platform_id)
    query = select(MerchantSettlement).where(MerchantSettlement.party_id == party_id)
    if date_from is not None:
        query = query.where(MerchantSettlement.day >= date_from)
    if date_to is not None:
        query = query.where(MerchantSettlement.day <= date_to)
    if starting_after is not None:
        cursor = session.execute(
            select(MerchantSettlement.day, MerchantSettlement.id).where(
                MerchantSettlement.id == starting_after, MerchantSettlement.party_id == party_id
            )
        ).one_or_none()
        if cursor is None:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no settlement {starting_after}",
                field="starting_after",
            )
        query = query.where(
            tuple_(MerchantSettlement.day, MerchantSettlement.id) < tuple_(cursor[0], cursor[1])
        )
    rows = (
        session.execute(
            query.order_by(MerchantSettlement.day.desc(), MerchantSettlement.id.desc()).limit(
                limit + 1
            )
        )
        .scalars()
        .all()
    )
    return [_view(r) for r in rows[:limit]], len(rows) > limit
