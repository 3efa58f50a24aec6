"""Risk use cases: score a payment, record what happened to it, the review queue and the
blocklist.

``score_payment`` and ``record_outcome`` run inside the CALLER's transaction (the wallets
product scores a transfer in the transaction that stores it). Scoring reads the payer's own
decisions (this product's table, indexed by payer and time), evaluates the pure rules of
``risk/rules.py``, and writes one decision row (plus a review row and ``fraud.flagged`` when
the payment is held or blocked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import CursorResult, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.bus import outbox
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.paging import page_of
from potluck.risk import rules
from potluck.risk.models import BlocklistEntry, RiskDecision, RiskReview

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

Action = Literal["allow", "review", "block"]
Outcome = Literal["completed", "failed", "blocked", "in_review", "rejected"]
OUTCOMES: frozenset[str] = frozenset({"completed", "failed", "blocked", "in_review", "rejected"})
BLOCKLIST_KINDS: frozenset[str] = frozenset({"user", "device", "email"})
ReviewStatus = Literal["pending", "approved", "rejected", "closed"]


class RiskError(DomainError):
    pass


@dataclass(frozen=True)
class Decision:
    id: str
    score: int
    action: Action
    reasons: list[dict[str, Any]]


@dataclass(frozen=True)
class PayerAccount:
    """What scoring needs of the payer's account, when the caller has read it already (the
    wallets product reads both people in one query): no second read of the same row."""

    email: str | None
    created_at: datetime


@dataclass(frozen=True)
class Evaluation:
    """A scored payment not yet stored (``score_payment`` = ``evaluate`` + ``store``)."""

    payment: rules.Payment
    assessment: rules.Assessment


# --- scoring ---------------------------------------------------------------------------


# Prebuilt statements (built once, executed on the session's connection): scoring runs on
# every payment, and building and compiling a select per call cost more than the queries.
_d = RiskDecision
_b = BlocklistEntry
_BLOCKLIST_HITS = select(_b.kind, _b.value, _b.reason).where(
    or_(
        and_(_b.kind == "user", _b.value.in_([bindparam("payer"), bindparam("to_user")])),
        and_(_b.kind == "device", _b.value == bindparam("device")),
        and_(_b.kind == "email", _b.value == bindparam("email")),
    )
)
_HISTORY = (
    select(_d.amount, _d.currency, _d.recipient, _d.device_id, _d.outcome, _d.created_at)
    .where(_d.payer_user_id == bindparam("payer"), _d.created_at > bindparam("since"))
    .order_by(_d.created_at.desc())
    .limit(bindparam("rows"))
)
_PAID_BEFORE = (
    select(_d.id)
    .where(
        _d.payer_user_id == bindparam("payer"),
        _d.recipient == bindparam("recipient"),
        _d.outcome == "completed",
    )
    .limit(1)
)
_INBOUND_SENDERS = select(
    func.count(func.distinct(_d.payer_user_id)), func.coalesce(func.sum(_d.amount), 0)
).where(
    _d.recipient == bindparam("recipient"),
    _d.created_at > bindparam("since"),
    _d.outcome == "completed",
)

# The hot writes, prebuilt too (Core on the session's connection: no ORM bulk layer).
_DECISIONS = cast(Table, RiskDecision.__table__)
_INSERT_DECISION = insert(_DECISIONS)
_SET_OUTCOME = (
    update(_DECISIONS)
    .where(_DECISIONS.c.id == bindparam("decision_id"))
    .values(outcome=bindparam("outcome"), outcome_at=bindparam("outcome_at"))
)


def load_history(
    session: Session,
    app: Potluck,
    payment: rules.Payment,
    *,
    params: rules.RiskParams,
    payer: PayerAccount | None = None,
) -> rules.PayerHistory:
    """The payer's snapshot: three indexed reads (by primary key, by (kind, value), by (payer,
    created_at)), and for a recipient the payer has not paid before one or two more by
    (recipient, created_at); by (payer, recipient) only when the history read is full."""
    from potluck.identity.service import find_user_in

    settings = app.settings
    conn = session.connection()
    user = payer or find_user_in(session, user_id=payment.payer_user_id)
    to_user = payment.recipient[5:] if payment.recipient.startswith("user:") else None
    hits = conn.execute(
        _BLOCKLIST_HITS,
        {
            "payer": payment.payer_user_id,
            "to_user": to_user,
            "device": payment.device_id,
            "email": user.email if user is not None else None,
        },
    ).all()
    past = rules.PastPayment
    recent = [
        past(a, c, r, dev, o, at if at.tzinfo is not None else at.replace(tzinfo=UTC))
        for a, c, r, dev, o, at in conn.execute(
            _HISTORY,
            {
                "payer": payment.payer_user_id,
                "since": payment.now - timedelta(days=settings.risk_history_days),
                "rows": settings.risk_history_rows,
            },
        )
    ]
    paid_before = any(x.recipient == payment.recipient and x.outcome == "completed" for x in recent)
    if not paid_before and len(recent) >= settings.risk_history_rows:
        # Older than the rows we read: ask the (payer, recipient) index.
        paid_before = (
            conn.execute(
                _PAID_BEFORE, {"payer": payment.payer_user_id, "recipient": payment.recipient}
            ).first()
            is not None
        )
    inbound, inbound_amount, recipient_senders = 0, 0, 0
    if not paid_before:  # the fan-in rules only concern new recipients
        day = payment.now - timedelta(hours=24)
        inbound, inbound_amount = conn.execute(
            _INBOUND_SENDERS, {"recipient": f"user:{payment.payer_user_id}", "since": day}
        ).one()
        if to_user is not None:
            recipient_senders = conn.execute(
                _INBOUND_SENDERS, {"recipient": payment.recipient, "since": day}
            ).one()[0]
    return rules.PayerHistory(
        account_created_at=user.created_at if user is not None else None,
        recent=recent,
        paid_recipient_before=paid_before,
        inbound_senders_24h=int(inbound or 0),
        inbound_amount_24h=int(inbound_amount or 0),
        recipient_senders_24h=int(recipient_senders or 0),
        blocklist_hits=[(h[0], h[1], h[2]) for h in hits],
    )


def evaluate_payment(
    session: Session,
    app: Potluck,
    *,
    payer_user_id: str,
    recipient: str,
    amount: int,
    currency: str,
    device_id: str | None,
    now: datetime,
    payer: PayerAccount | None = None,
) -> Evaluation:
    """Score a payment without storing anything (``payer``: the payer's account if the caller
    has read it, else it is read here)."""
    params = rules.RiskParams.from_settings(app.settings)
    payment = rules.Payment(
        payer_user_id=payer_user_id,
        recipient=recipient,
        amount=amount,
        currency=currency,
        device_id=device_id,
        now=now,
    )
    history = load_history(session, app, payment, params=params, payer=payer)
    return Evaluation(payment, rules.assess(payment, history, params))


def store_decision(
    session: Session, evaluation: Evaluation, *, subject_id: str, now: datetime
) -> Decision:
    """Write the decision (and its review and ``fraud.flagged`` when held or blocked)."""
    p, a = evaluation.payment, evaluation.assessment
    decision = Decision(id=new_id("rdec"), score=a.score, action=a.action, reasons=a.reasons)
    session.connection().execute(
        _INSERT_DECISION,
        [
            {
                "id": decision.id,
                "subject_id": subject_id,
                "payer_user_id": p.payer_user_id,
                "recipient": p.recipient,
                "amount": p.amount,
                "currency": p.currency,
                "device_id": p.device_id,
                "score": a.score,
                "action": a.action,
                "reasons": a.reasons,
                "outcome": None,
                "outcome_at": None,
                "created_at": now,
            }
        ],
    )
    if a.action == "allow":
        return decision
    if a.action == "review":
        session.execute(
            insert(RiskReview),
            [
                {
                    "id": new_id("rrev"),
                    "decision_id": decision.id,
                    "subject_id": subject_id,
                    "status": "pending",
                    "reviewer_id": None,
                    "note": None,
                    "created_at": now,
                    "resolved_at": None,
                }
            ],
        )
    outbox.publish(
        session,
        "fraud.flagged",
        {
            "decision_id": decision.id,
            "subject_id": subject_id,
            "payer_user_id": p.payer_user_id,
            "recipient": p.recipient,
            "amount": p.amount,
            "currency": p.currency,
            "score": a.score,
            "action": a.action,
            "reasons": a.reasons,
        },
        now=now,
    )
    return decision


def score_payment(
    session: Session,
    app: Potluck,
    *,
    payer_user_id: str,
    recipient: str,
    amount: int,
    currency: str,
    device_id: str | None,
    subject_id: str,
    now: datetime,
    payer: PayerAccount | None = None,
) -> Decision:
    """Score a wallet payment and store the decision in the caller's transaction.

    ``recipient`` is ``"user:<id>"`` or ``"party:<id>"``; ``subject_id`` is the wallet
    transfer id. A ``review`` creates a pending review; review and block publish
    ``fraud.flagged``.
    """
    evaluation = evaluate_payment(
        session,
        app,
        payer_user_id=payer_user_id,
        recipient=recipient,
        amount=amount,
        currency=currency,
        device_id=device_id,
        now=now,
        payer=payer,
    )
    return store_decision(session, evaluation, subject_id=subject_id, now=now)


def record_outcome(session: Session, *, decision_id: str, outcome: Outcome, now: datetime) -> None:
    """What happened to the scored payment; the next scores of the payer read it."""
    if outcome not in OUTCOMES:
        raise RiskError("invalid_outcome", f"outcome must be one of {sorted(OUTCOMES)}")
    result: CursorResult[Any] = session.connection().execute(
        _SET_OUTCOME, {"decision_id": decision_id, "outcome": outcome, "outcome_at": now}
    )
    if result.rowcount == 0:
        raise RiskError("not_found", f"no risk decision {decision_id}", status=404)
    if outcome in ("failed", "blocked"):
        # Scored "review", but nothing was held (the wallet could not cover it): there is
        # nothing for a reviewer to approve, so the review leaves the queue, closed.
        session.execute(
            update(RiskReview)
            .where(RiskReview.decision_id == decision_id, RiskReview.status == "pending")
            .values(status="closed", note=f"the payment {outcome} before review", resolved_at=now)
        )


# --- decisions and reviews (administrators) --------------------------------------------


@dataclass(frozen=True)
class DecisionView:
    id: str
    subject_id: str
    payer_user_id: str
    recipient: str
    amount: int
    currency: str
    device_id: str | None
    score: int
    action: str
    reasons: list[dict[str, Any]]
    outcome: str | None
    created_at: datetime


@dataclass(frozen=True)
class ReviewView:
    id: str
    decision_id: str
    subject_id: str
    status: str
    reviewer_id: str | None
    note: str | None
    created_at: datetime
    resolved_at: datetime | None
    decision: DecisionView


def _decision_view(d: RiskDecision) -> DecisionView:
    return DecisionView(
        id=d.id,
        subject_id=d.subject_id,
        payer_user_id=d.payer_user_id,
        recipient=d.recipient,
        amount=d.amount,
        currency=d.currency,
        device_id=d.device_id,
        score=d.score,
        action=d.action,
        reasons=list(d.reasons),
        outcome=d.outcome,
        created_at=utc(d.created_at),
    )


def _review_view(r: RiskReview, d: RiskDecision) -> ReviewView:
    return ReviewView(
        id=r.id,
        decision_id=r.decision_id,
        subject_id=r.subject_id,
        status=r.status,
        reviewer_id=r.reviewer_id,
        note=r.note,
        created_at=utc(r.created_at),
        resolved_at=utc(r.resolved_at) if r.resolved_at else None,
        decision=_decision_view(d),
    )


def get_decision(session: Session, decision_id: str) -> DecisionView:
    d = session.get(RiskDecision, decision_id)
    if d is None:
        raise RiskError("not_found", f"no risk decision {decision_id}", status=404)
    return _decision_view(d)


def decision_counts(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Payments scored in [start, end), for admin analytics: ``scored``, ``flagged`` (review
    or block), ``blocked``, ``in_review`` (held for a reviewer). One aggregate query."""
    from sqlalchemy import case

    def n(action: str) -> Any:
        return func.coalesce(func.sum(case((RiskDecision.action == action, 1), else_=0)), 0)

    row = session.execute(
        select(func.count(), n("review"), n("block")).where(
            RiskDecision.created_at >= start, RiskDecision.created_at < end
        )
    ).one()
    scored, review, block = (int(v or 0) for v in row)
    return {"scored": scored, "flagged": review + block, "blocked": block, "in_review": review}


def list_decisions(
    session: Session, *, payer_user_id: str | None, limit: int, starting_after: str | None
) -> tuple[list[DecisionView], bool]:
    visible = (
        RiskDecision.payer_user_id == payer_user_id if payer_user_id is not None else and_(True)
    )
    rows, more = page_of(
        session,
        select(RiskDecision).where(visible),
        RiskDecision.id,
        visible=visible,
        limit=limit,
        starting_after=starting_after,
        noun="decision",
    )
    return [_decision_view(d) for d in rows], more


def list_reviews(
    session: Session, *, status: str | None, limit: int, starting_after: str | None
) -> tuple[list[ReviewView], bool]:
    visible = RiskReview.status == status if status is not None else and_(True)
    rows, more = page_of(
        session,
        select(RiskReview).where(visible),
        RiskReview.id,
        visible=visible,
        limit=limit,
        starting_after=starting_after,
        noun="review",
    )
    decisions = {
        d.id: d
        for d in session.scalars(
            select(RiskDecision).where(RiskDecision.id.in_([r.decision_id for r in rows]))
        )
    }
    return [_review_view(r, decisions[r.decision_id]) for r in rows], more


def get_review(session: Session, review_id: str) -> ReviewView:
    r = session.get(RiskReview, review_id)
    if r is None:
        raise RiskError("not_found", f"no review {review_id}", status=404)
    d = session.get(RiskDecision, r.decision_id)
    assert d is not None  # foreign key
    return _review_view(r, d)


def resolve_review(
    session: Session,
    app: Potluck,
    *,
    review_id: str,
    approve: bool,
    reviewer_id: str,
    note: str | None,
    now: datetime,
) -> ReviewView:
    """Approve or reject a pending review, and the held wallet transfer with it.

    The review row is locked first (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises writers), so of two concurrent resolutions one waits, then sees the
    review resolved and is refused with 409 ``review_already_resolved``. The wallets
    product's approve/reject runs in this same transaction: both commit or neither.
    """
    r = session.execute(
        select(RiskReview).where(RiskReview.id == review_id).with_for_update()
    ).scalar_one_or_none()
    if r is None:
        raise RiskError("not_found", f"no review {review_id}", status=404)
    if r.status != "pending":
        raise RiskError(
            "review_already_resolved", f"review {review_id} is already {r.status}", status=409
        )
    r.status = "approved" if approve else "rejected"
    r.reviewer_id = reviewer_id
    r.note = note
    r.resolved_at = now
    session.flush()

    from potluck.wallets import service as wallets

    if approve:
        wallets.approve_review(
            session, app, transfer_id=r.subject_id, reviewer_id=reviewer_id, now=now
        )
    else:
        wallets.reject_review(
            session, app, transfer_id=r.subject_id, reviewer_id=reviewer_id, now=now
        )
    record_outcome(
        session, decision_id=r.decision_id, outcome="completed" if approve else "rejected", now=now
    )
    outbox.publish(
        session,
        "risk.review.resolved",
        {
            "review_id": r.id,
            "decision_id": r.decision_id,
            "subject_id": r.subject_id,
            "outcome": r.status,
            "reviewer_id": reviewer_id,
        },
        now=now,
    )
    d = session.get(RiskDecision, r.decision_id)
    assert d is not None
    return _review_view(r, d)


# --- blocklist -------------------------------------------------------------------------


@dataclass(frozen=True)
class BlocklistView:
    id: str
    kind: str
    value: str
    reason: str
    created_by: str | None
    created_at: datetime


def _blocklist_view(b: BlocklistEntry) -> BlocklistView:
    return BlocklistView(
        id=b.id,
        kind=b.kind,
        value=b.value,
        reason=b.reason,
        created_by=b.created_by,
        created_at=utc(b.created_at),
    )


def normalise_blocklist_value(kind: str, value: str) -> str:
    if kind not in BLOCKLIST_KINDS:
        raise RiskError(
            "invalid_kind", f"kind must be one of {sorted(BLOCKLIST_KINDS)}", field="kind"
        )
    value = value.strip()
    if not value:
        raise RiskError("invalid_value", "value must not be empty", field="value")
    if kind == "email":
        from potluck.identity.service import normalise_email

        value = normalise_email(value)
    return value


def add_to_blocklist(
    session: Session, *, kind: str, value: str, reason: str, created_by: str | None, now: datetime
) -> BlocklistView:
    value = normalise_blocklist_value(kind, value)
    existing = session.scalar(
        select(BlocklistEntry).where(BlocklistEntry.kind == kind, BlocklistEntry.value == value)
    )
    if existing is not None:
        raise RiskError("already_blocklisted", f"{kind} {value} is already blocklisted", status=409)
    entry = BlocklistEntry(
        id=new_id("rblk"),
        kind=kind,
        value=value,
        reason=reason,
        created_by=created_by,
        created_at=now,
    )
    session.add(entry)
    try:
        session.flush()
    except IntegrityError as exc:  # added concurrently
        raise RiskError(
            "already_blocklisted", f"{kind} {value} is already blocklisted", status=409
        ) from exc
    return _blocklist_view(entry)


def list_blocklist(
    session: Session, *, kind: str | None, limit: int, starting_after: str | None
) -> tuple[list[BlocklistView], bool]:
    visible = BlocklistEntry.kind == kind if kind is not None else and_(True)
    rows, more = page_of(
        session,
        select(BlocklistEntry).where(visible),
        BlocklistEntry.id,
        visible=visible,
        limit=limit,
        starting_after=starting_after,
        noun="blocklist entry",
    )
    return [_blocklist_view(b) for b in rows], more


def remove_from_blocklist(session: Session, *, entry_id: str) -> BlocklistView:
    entry = session.get(BlocklistEntry, entry_id)
    if entry is None:
        raise RiskError("not_found", f"no blocklist entry {entry_id}", status=404)
    view = _blocklist_view(entry)
    session.delete(entry)
    session.flush()
    return view
