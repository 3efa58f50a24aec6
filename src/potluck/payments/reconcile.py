"""Reconciliation: ask the provider about what we are unsure of, and compare a day's records.

* The timer ``payments.reconcile.tick`` (every ``payment_reconcile_interval_seconds``, a
  self-renewing chain like payouts' recovery tick) asks the provider about intents stuck in
  ``processing``, and ``requires_payment`` ones older than ``payment_stale_after_seconds``,
  and corrects them through the same transition function as webhooks (a lost webhook costs
  a delay, never money).
* ``report(app, day)`` (``potluck reconcile --date D``) compares every intent and refund of
  that day with the provider's records, stores a ``reconciliation_reports`` row and returns
  the mismatches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import Event, publish
from potluck.bus.registry import HandlerContext
from potluck.ids import new_id
from potluck.maintenance import next_due
from potluck.payments import service, states
from potluck.payments.models import PaymentIntent, PaymentRefund, ReconciliationReport
from potluck.payments.providers import bound_session

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()

TICK = "payments.reconcile.tick"
BATCH = 100


# ------------------------------------------------------------------ the timer


def schedule(session: Session, *, now: datetime, interval: int) -> None:
    """Make sure the next tick exists (one per due time, whoever schedules it)."""
    due = next_due(now, interval)
    try:
        with session.begin_nested():
            publish(
                session,
                TICK,
                {"interval_seconds": interval},
                now=now,
                deliver_after=due,
                dedupe_key=f"{TICK}:{int(due.timestamp())}",
            )
    except IntegrityError:
        pass  # scheduled by someone else: that tick is ours too


def ensure_scheduled(app: Potluck) -> None:
    """Call when workers start (the first tick; later ticks schedule their successor)."""
    try:
        with app.db.transaction() as s:
            schedule(
                s, now=app.clock.now(), interval=app.settings.payment_reconcile_interval_seconds
            )
    except IntegrityError:
        pass


def fix_stuck(session: Session, app: Potluck, *, now: datetime, limit: int = BATCH) -> list[str]:
    """Ask the provider about open intents we have not heard of for a while; apply what it
    says. Returns the ids of the intents that changed."""
    stale = now - timedelta(seconds=app.settings.payment_stale_after_seconds)
    stuck = (
        session.execute(
            select(PaymentIntent)
            .where(
                or_(
                    PaymentIntent.status == states.PROCESSING,
                    and_(
                        PaymentIntent.status == states.REQUIRES_PAYMENT,
                        PaymentIntent.created_at <= stale,
                    ),
                ),
                PaymentIntent.provider_ref.is_not(None),
            )
            .order_by(PaymentIntent.updated_at, PaymentIntent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    changed: list[str] = []
    for intent in stuck:
        provider = app.providers.get(intent.provider)
        if provider is None or intent.provider_ref is None:
            continue
        try:
            with bound_session(session):
                remote = provider.retrieve_intent(intent.provider_ref)
        except Exception:  # a provider outage: ask again next tick
            log.warning("payments.reconcile_lookup_failed", intent=intent.id, exc_info=True)
            continue
        if service.sync_from_provider(session, intent, remote, now=now):
            log.info("payments.reconciled", intent=intent.id, status=intent.status)
            changed.append(intent.id)
    return changed


def on_tick(ctx: HandlerContext, event: Event) -> None:
    interval = int(
        event.data.get("interval_seconds", ctx.app.settings.payment_reconcile_interval_seconds)
    )
    schedule(ctx.session, now=ctx.now, interval=interval)  # the next link first
    try:
        with ctx.session.begin_nested():
            fix_stuck(ctx.session, ctx.app, now=ctx.now)
    except Exception:
        log.exception("payments.reconcile_failed")


# ------------------------------------------------------------------ the daily report


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str  # intent | refund
    id: str
    field: str
    ours: Any
    provider: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "field": self.field,
            "ours": self.ours,
            "provider": self.provider,
        }


@dataclass(slots=True)
class Report:
    id: str
    day: date
    intents_checked: int = 0
    refunds_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def report(app: Potluck, day: date) -> Report:
    """Compare the day's intents (status, amount, currency, captured) and refunds (amount,
    status; where the provider can list them) with the provider's records; store the report.
    Provider lookups happen outside our transactions."""
    start, end = _day_bounds(day)
    with app.db.read() as s:
        intents = (
            s.execute(
                select(PaymentIntent)
                .where(PaymentIntent.created_at >= start, PaymentIntent.created_at < end)
                .order_by(PaymentIntent.id)
            )
            .scalars()
            .all()
        )
        refunds = (
            s.execute(
                select(PaymentRefund)
                .where(PaymentRefund.created_at >= start, PaymentRefund.created_at < end)
                .order_by(PaymentRefund.id)
            )
            .scalars()
            .all()
        )
        refund_intents = {
            p.id: p
            for p in s.execute(
                select(PaymentIntent).where(PaymentIntent.id.in_({r.intent_id for r in refunds}))
            ).scalars()
        }
        s.expunge_all()  # plain objects from here on (the read's rollback would expire them)
    result = Report(id=new_id("rec"), day=day)
    for intent in intents:
        result.intents_checked += 1
        result.mismatches.extend(_compare_intent(app, intent))
    for refund in refunds:
        result.refunds_checked += 1
        result.mismatches.extend(_compare_refund(app, refund, refund_intents.get(refund.intent_id)))
    with app.db.transaction() as s:
        s.add(
            ReconciliationReport(
                id=result.id,
                day=day,
                intents_checked=result.intents_checked,
                refunds_checked=result.refunds_checked,
                mismatch_count=len(result.mismatches),
                mismatches=[m.as_dict() for m in result.mismatches],
                created_at=app.clock.now(),
            )
        )
    return result


def _compare_intent(app: Potluck, intent: PaymentIntent) -> list[Mismatch]:
    provider = app.providers.get(intent.provider)
    if provider is None:
        return [Mismatch("intent", intent.id, "provider", intent.provider, None)]
    if intent.provider_ref is None:
        return [Mismatch("intent", intent.id, "provider_ref", None, None)]
    try:
        remote = provider.retrieve_intent(intent.provider_ref)
    except Exception as exc:
        return [Mismatch("intent", intent.id, "provider_ref", intent.provider_ref, repr(exc))]
    found: list[Mismatch] = []
    for name, ours, theirs in (
        ("status", intent.status, str(remote.status)),
        ("amount", intent.amount, remote.amount),
        ("currency", intent.currency, remote.currency),
        ("captured_amount", intent.captured_amount, remote.captured_amount),
    ):
        if ours != theirs:
            found.append(Mismatch("intent", intent.id, name, ours, theirs))
    return found


def _compare_refund(
    app: Potluck, refund: PaymentRefund, intent: PaymentIntent | None
) -> list[Mismatch]:
    if intent is None or intent.provider_ref is None:
        return [Mismatch("refund", refund.id, "intent", refund.intent_id, None)]
    provider = app.providers.get(intent.provider)
    lister = getattr(provider, "list_refunds", None)
    if lister is None:
        return []  # this provider cannot list refunds: checked through its webhooks only
    theirs = {r.provider_ref: r for r in lister(intent.provider_ref)}
    remote = theirs.get(refund.provider_ref or "")
    if remote is None:
        return [Mismatch("refund", refund.id, "provider_ref", refund.provider_ref, None)]
    found: list[Mismatch] = []
    if remote.amount != refund.amount:
        found.append(Mismatch("refund", refund.id, "amount", refund.amount, remote.amount))
    if remote.status != refund.status:
        found.append(Mismatch("refund", refund.id, "status", refund.status, remote.status))
    return found
