"""The payouts worker: send due payouts to the bank, record what it said, retry, recover.

One round (``send_due_payouts``, the ``payouts`` service's poller, run outside any
transaction):

1. **claim** (a short transaction): take due payouts — ``pending`` ones, and ``processing``
   ones whose retry or status check is due — with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
   ``pending`` → ``processing``; give each a lease (``locked_until`` = now +
   ``payout_processing_timeout_seconds``) and a ``claim_id``.
2. **call the bank**, outside any transaction: ``send`` (idempotent by payout id), or
   ``status`` when recovery asked for it.
3. **record** (a second short transaction), only if the payout still carries this claim:
   paid → post the hold, ``completed``; declined → void the hold, ``failed``; transient
   failure → attempts stay counted, the next one after ``base · 2^(attempts−1)`` seconds, and
   after ``payout_max_attempts`` the hold is voided and the payout ``failed``.

A worker that dies between 2 and 3 leaves its lease behind. The recovery timer
(``payouts.recovery.tick``) finds payouts whose lease has expired and marks them
``check_status``: the next round asks the bank what it knows about the payout id instead of
sending — completed → complete, failed → fail, processing → ask again later, unknown (never
received) → due for sending again. Together with the bank's dedupe by payout id, a payout is
never paid twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus.outbox import Event, publish
from potluck.bus.registry import HandlerContext
from potluck.ids import new_id
from potluck.maintenance import next_due
from potluck.payouts import service, states
from potluck.payouts.bank import BankOutcome, BankPayment, BankResult
from potluck.payouts.models import BankAccount, Payout

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck
    from potluck.config import Settings

log = structlog.get_logger()

SERVICE = "payouts"
RECOVERY_TICK = "payouts.recovery.tick"


@dataclass(frozen=True, slots=True)
class Claim:
    payout_id: str
    claim_id: str
    check_status: bool  # ask the bank first (recovery) instead of sending
    payment: BankPayment


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: base, 2·base, 4·base…"""
    return float(settings.payout_retry_base_seconds * 2 ** max(attempts - 1, 0))


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Payout.status == states.PENDING, Payout.next_attempt_at <= now),
        and_(
            Payout.status == states.PROCESSING,
            Payout.locked_until.is_(None),
            Payout.next_attempt_at <= now,
        ),
    )


def claim_due(app: Potluck, *, limit: int | None = None) -> list[Claim]:
    """Take due payouts under a lease (one short transaction)."""
    settings, now = app.settings, app.clock.now()
    limit = limit or settings.payout_batch_size
    # An idle round only reads (no SQLite write lock for nothing).
    with app.db.read() as s:
        if not s.scalar(select(exists().where(_due(now)))):
            return []
    claims: list[Claim] = []
    with app.db.transaction() as s:
        payouts = (
            s.execute(
                select(Payout)
                .where(_due(now))
                .order_by(Payout.next_attempt_at, Payout.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for p in payouts:
            if not p.check_status:
                p.attempts += 1
            if p.status == states.PENDING:
                service.transition(s, p, states.PROCESSING, now=now, reason="sending to the bank")
            p.claim_id = new_id("clm")
            p.locked_until = now + timedelta(seconds=settings.payout_processing_timeout_seconds)
            p.next_attempt_at = None
            p.updated_at = now
            bank_account = s.get(BankAccount, p.bank_account_id)
            assert bank_account is not None  # a foreign key
            claims.append(
                Claim(
                    payout_id=p.id,
                    claim_id=p.claim_id,
                    check_status=p.check_status,
                    payment=BankPayment(
                        payout_id=p.id,
                        amount=p.amount,
                        currency=p.currency,
                        holder_name=bank_account.holder_name,
                        account_number=bank_account.account_number,
                        routing_type=bank_account.routing_type,
                        routing_value=bank_account.routing_value,
                        attempt=p.attempts,
                    ),
                )
            )
        if claims:
            # Whoever sends payouts makes sure their recovery exists (one tick per due time).
            schedule_recovery(s, now=now, interval=settings.payout_recovery_interval_seconds)
    return claims


def call_bank(app: Potluck, claim: Claim) -> tuple[BankResult, bool]:
    """The bank's answer, and whether it is ambiguous (an exception: it may have acted)."""
    try:
        if claim.check_status:
            return app.bank.status(claim.payout_id), False
        return app.bank.send(claim.payment), False
    except Exception as exc:
        log.warning("payouts.bank_error", payout_id=claim.payout_id, error=repr(exc))
        return (
            BankResult(
                BankOutcome.FAILED,
                retryable=True,
                code="bank_error",
                message=f"{type(exc).__name__}: {exc}"[:300],
            ),
            True,
        )


def record_outcome(app: Potluck, claim: Claim, result: BankResult, *, ambiguous: bool) -> bool:
    """Apply the bank's answer if the payout still carries ``claim``; True if applied."""
    settings, now = app.settings, app.clock.now()
    with app.db.transaction() as s:
        p = service.lock_payout(s, claim.payout_id)
        if p.status != states.PROCESSING or p.claim_id != claim.claim_id:
            # Recovery (or another worker after it) owns the payout now; the bank's dedupe
            # means its answer will be the same as ours.
            log.info("payouts.stale_claim", payout_id=p.id, status=p.status)
            return False
        p.locked_until = None
        p.claim_id = None
        p.updated_at = now
        _apply(s, p, claim, result, ambiguous=ambiguous, settings=settings, now=now)
    return True


def decline_reason(result: BankResult) -> str:
    """ "declined by the bank", with the bank's code when it says more than "declined"."""
    if result.code and result.code != "declined":
        return f"declined by the bank: {result.code}"
    return "declined by the bank"


def _apply(
    s: Session,
    p: Payout,
    claim: Claim,
    result: BankResult,
    *,
    ambiguous: bool,
    settings: Settings,
    now: datetime,
) -> None:
    outcome = result.outcome
    if outcome is BankOutcome.COMPLETED:
        service.complete(s, p, now=now, reference=result.reference)
    elif outcome is BankOutcome.FAILED and not result.retryable:
        service.fail(s, p, now=now, reason=decline_reason(result))
    elif outcome is BankOutcome.PROCESSING:
        # Accepted, not settled: ask again later.
        p.check_status = True
        p.next_attempt_at = now + timedelta(seconds=settings.payout_retry_base_seconds)
    elif outcome is BankOutcome.UNKNOWN:
        # The bank never received it: send it again, unless no attempt is left.
        p.check_status = False
        if p.attempts >= settings.payout_max_attempts:
            service.fail(s, p, now=now, reason=f"retries exhausted after {p.attempts} attempts")
        else:
            p.next_attempt_at = now
    else:  # a transient failure, or an error talking to the bank
        error = f"{result.code}: {result.message}" if result.message else str(result.code)
        p.last_error = error[:500]
        delay = timedelta(seconds=backoff_seconds(settings, p.attempts))
        if claim.check_status or (ambiguous and p.attempts >= settings.payout_max_attempts):
            # We cannot tell whether the bank acted: ask it (later) rather than give up.
            p.check_status = True
            p.next_attempt_at = now + delay
        elif p.attempts >= settings.payout_max_attempts:
            service.fail(
                s, p, now=now, reason=f"retries exhausted after {p.attempts} attempts: {error}"
            )
        else:
            p.next_attempt_at = now + delay


def settle(app: Potluck, claim: Claim) -> bool:
    """Talk to the bank about one claimed payout and record the answer."""
    result, ambiguous = call_bank(app, claim)
    return record_outcome(app, claim, result, ambiguous=ambiguous)


def send_due_payouts(app: Potluck) -> int:
    """The poller: one round of claim → bank → record. Returns payouts handled.

    The claimed payouts are sent ``payout_send_concurrency`` at a time, so that a slow bank
    holds the worker (in embedded mode: the whole event loop) for one call's latency per
    group rather than per payout.
    """
    claims = claim_due(app)
    if not claims:
        return 0
    width = min(len(claims), app.settings.payout_send_concurrency)
    if width <= 1:
        for claim in claims:
            settle(app, claim)
        return len(claims)
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="payouts-send") as pool:
        futures = [pool.submit(settle, app, claim) for claim in claims]
        for future in futures:
            future.result()  # a failure (or a crash) surfaces here, as in the serial case
    return len(claims)


# ------------------------------------------------------------------ recovery


def schedule_recovery(session: Session, *, now: datetime, interval: int) -> None:
    """Make sure the next recovery tick exists (one per due time, whoever schedules it).

    In a savepoint: a concurrent transaction scheduling the same tick (two workers claiming
    at once, or a worker and the tick itself) then costs this insert only, not the caller's
    transaction.
    """
    due = next_due(now, interval)
    try:
        with session.begin_nested():
            publish(
                session,
                RECOVERY_TICK,
                {"interval_seconds": interval},
                now=now,
                deliver_after=due,
                dedupe_key=f"{RECOVERY_TICK}:{int(due.timestamp())}",
            )
    except IntegrityError:
        pass  # scheduled by someone else: that tick is ours too


def ensure_recovery_scheduled(app: Potluck) -> None:
    """Call when workers start (the first tick; later ticks schedule their successor)."""
    try:
        with app.db.transaction() as s:
            schedule_recovery(
                s, now=app.clock.now(), interval=app.settings.payout_recovery_interval_seconds
            )
    except IntegrityError:
        pass  # a concurrent process scheduled the same tick: that one is ours too


def recover_stuck(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Payouts whose worker lease has expired: ask the bank about them before anything else."""
    stuck = (
        session.execute(
            select(Payout)
            .where(
                Payout.status == states.PROCESSING,
                Payout.locked_until.is_not(None),
                Payout.locked_until <= now,
            )
            .order_by(Payout.locked_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for p in stuck:
        p.locked_until = None
        p.claim_id = None  # a late answer from the old worker is ignored
        p.check_status = True
        p.next_attempt_at = now
        p.last_error = "worker lease expired; asking the bank for the payout's status"
        p.updated_at = now
        log.warning("payouts.recovering", payout_id=p.id, attempts=p.attempts)
    return [p.id for p in stuck]


def on_recovery_tick(ctx: HandlerContext, event: Event) -> None:
    interval = int(
        event.data.get("interval_seconds", ctx.app.settings.payout_recovery_interval_seconds)
    )
    # The next link first, so that the chain outlives a failing scan.
    schedule_recovery(ctx.session, now=ctx.now, interval=interval)
    try:
        with ctx.session.begin_nested():
            recovered = recover_stuck(ctx.session, now=ctx.now)
    except Exception:
        log.exception("payouts.recovery_failed")
        return
    if recovered:
        log.info("payouts.recovery", recovered=len(recovered))
