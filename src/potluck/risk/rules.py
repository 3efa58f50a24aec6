"""The scoring rules: pure functions, no I/O.

Each rule looks at the payment being scored and a small snapshot of the payer's own history
(``PayerHistory``, loaded by ``risk.service`` with a few indexed queries) and returns the
reasons it adds: ``{"rule", "points", "detail"}``. The score is the sum of the points, capped
at 100; ``decide`` turns it into allow, review or block. A rule explains itself in ``detail``
so that a reviewer sees why a payment was held without reading code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Action = Literal["allow", "review", "block"]
Reason = dict[str, Any]

# Outcomes that say an attempt did not go through for a reason other than the rules' own
# review: the signature of a stolen card or an account being probed.
FAILED_OUTCOMES = frozenset({"failed", "blocked", "rejected"})


@dataclass(frozen=True, slots=True)
class Payment:
    """The payment being scored."""

    payer_user_id: str
    recipient: str  # "user:<id>" | "party:<id>"
    amount: int
    currency: str
    device_id: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class PastPayment:
    """One of the payer's earlier scored payments (newest first in ``PayerHistory.recent``)."""

    amount: int
    currency: str
    recipient: str
    device_id: str | None
    outcome: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PayerHistory:
    """What the rules know about the payer."""

    account_created_at: datetime | None = None
    recent: Sequence[PastPayment] = ()  # newest first, within the look-back window
    paid_recipient_before: bool = False  # a completed payment to this recipient, ever
    inbound_senders_24h: int = 0  # distinct people who paid the payer in the last 24 hours
    inbound_amount_24h: int = 0  # what they paid (any currency: a mule rarely mixes them)
    recipient_senders_24h: int = 0  # distinct people who paid the recipient (a person) in 24 h
    blocklist_hits: Sequence[tuple[str, str, str]] = ()  # (kind, value, reason)


@dataclass(frozen=True, slots=True)
class RiskParams:
    """The rule parameters (``risk_*`` settings)."""

    review_threshold: int = 50
    block_threshold: int = 80
    amount_multiple: float = 5.0
    min_history: int = 3
    large_amount: int = 25_000
    velocity_10m_count: int = 5
    velocity_24h_count: int = 20
    velocity_24h_amount: int = 200_000
    new_account_days: int = 7
    failed_window_minutes: int = 60
    failed_count: int = 3
    fan_in_senders: int = 4

    @classmethod
    def from_settings(cls, settings: Any) -> RiskParams:
        return cls(
            review_threshold=settings.risk_review_threshold,
            block_threshold=settings.risk_block_threshold,
            amount_multiple=settings.risk_amount_multiple,
            min_history=settings.risk_min_history,
            large_amount=settings.risk_large_amount,
            velocity_10m_count=settings.risk_velocity_10m_count,
            velocity_24h_count=settings.risk_velocity_24h_count,
            velocity_24h_amount=settings.risk_velocity_24h_amount,
            new_account_days=settings.risk_new_account_days,
            failed_window_minutes=settings.risk_failed_window_minutes,
            failed_count=settings.risk_failed_count,
            fan_in_senders=settings.risk_fan_in_senders,
        )


@dataclass(frozen=True, slots=True)
class Assessment:
    score: int
    action: Action
    reasons: list[Reason] = field(default_factory=list)


def _reason(rule: str, points: int, detail: str) -> Reason:
    return {"rule": rule, "points": points, "detail": detail}


def _completed_amounts(p: Payment, h: PayerHistory) -> list[int]:
    return sorted(
        x.amount for x in h.recent if x.outcome == "completed" and x.currency == p.currency
    )


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank percentile ``q`` (0..1) of already sorted values (not empty)."""
    rank = max(1, -(-len(sorted_values) * q // 1))  # ceil(n * q), at least 1
    return sorted_values[int(rank) - 1]


def is_large(p: Payment, h: PayerHistory, params: RiskParams) -> bool:
    """Large for this payer: above the absolute threshold, or above the multiple of their
    own p90 once they have a history."""
    amounts = _completed_amounts(p, h)
    if len(amounts) >= params.min_history:
        return p.amount > params.amount_multiple * percentile(amounts, 0.9)
    return p.amount >= params.large_amount


# --- the rules -------------------------------------------------------------------------


def amount_vs_history(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """An amount far above what this payer usually pays, or a large first payment."""
    amounts = _completed_amounts(p, h)
    if len(amounts) >= params.min_history:
        p90 = percentile(amounts, 0.9)
        if p.amount > 2 * params.amount_multiple * p90:
            return [
                _reason(
                    "amount_vs_history",
                    40,
                    f"{p.amount} is more than {2 * params.amount_multiple:g}x the payer's p90 "
                    f"({p90}) over {len(amounts)} completed payments",
                )
            ]
        if p.amount > params.amount_multiple * p90:
            return [
                _reason(
                    "amount_vs_history",
                    25,
                    f"{p.amount} is more than {params.amount_multiple:g}x the payer's p90 "
                    f"({p90}) over {len(amounts)} completed payments",
                )
            ]
        return []
    if p.amount >= params.large_amount:
        return [
            _reason(
                "amount_vs_history",
                25,
                f"a large payment ({p.amount} >= {params.large_amount}) from a payer with "
                f"{len(amounts)} completed payments",
            )
        ]
    return []


def velocity(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """Many payments in a short time, or a large total in a day (this one included)."""
    ten_min = p.now - timedelta(minutes=10)
    day = p.now - timedelta(hours=24)
    n10 = 1 + sum(1 for x in h.recent if x.created_at > ten_min)
    in_day = [x for x in h.recent if x.created_at > day]
    n24 = 1 + len(in_day)
    amount24 = p.amount + sum(
        x.amount for x in in_day if x.currency == p.currency and x.outcome not in FAILED_OUTCOMES
    )
    out: list[Reason] = []
    if n10 >= 2 * params.velocity_10m_count:
        out.append(_reason("velocity_10m", 35, f"{n10} payments in 10 minutes"))
    elif n10 >= params.velocity_10m_count:
        out.append(_reason("velocity_10m", 20, f"{n10} payments in 10 minutes"))
    elif n24 >= params.velocity_24h_count:
        out.append(_reason("velocity_24h", 15, f"{n24} payments in 24 hours"))
    if amount24 >= params.velocity_24h_amount:
        out.append(
            _reason(
                "velocity_amount_24h",
                20,
                f"{amount24} {p.currency} paid in 24 hours (>= {params.velocity_24h_amount})",
            )
        )
    return out


def new_recipient(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """A recipient the payer has never paid; more if the amount is also large for them."""
    if h.paid_recipient_before:
        return []
    if is_large(p, h, params):
        return [_reason("new_recipient", 25, f"first payment to {p.recipient}, a large amount")]
    return [_reason("new_recipient", 5, f"first payment to {p.recipient}")]


def new_recipients_burst(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """Paying many different people for the first time within a day (fan-out)."""
    if h.paid_recipient_before:
        return []
    day = p.now - timedelta(hours=24)
    seen_before = {x.recipient for x in h.recent if x.created_at <= day}
    fresh = {x.recipient for x in h.recent if x.created_at > day} - seen_before
    fresh.add(p.recipient)
    if len(fresh) >= 5:
        return [_reason("new_recipients_24h", 20, f"{len(fresh)} new recipients in 24 hours")]
    return []


def account_age(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """A young account: most fraud comes from accounts opened for it."""
    if h.account_created_at is None:
        return [_reason("account_age", 20, "the payer's account is unknown")]
    age = p.now - h.account_created_at
    if age < timedelta(days=1):
        return [_reason("account_age", 20, "the account is less than a day old")]
    if age < timedelta(days=params.new_account_days):
        return [
            _reason(
                "account_age",
                10,
                f"the account is {age.days} days old (< {params.new_account_days})",
            )
        ]
    return []


def failed_attempts(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """Recent attempts that failed or were refused (card testing, probing a stolen account)."""
    since = p.now - timedelta(minutes=params.failed_window_minutes)
    n = sum(1 for x in h.recent if x.created_at > since and x.outcome in FAILED_OUTCOMES)
    if n >= 2 * params.failed_count:
        points = 45
    elif n >= params.failed_count:
        points = 30
    elif n >= 1:
        points = 10
    else:
        return []
    return [
        _reason(
            "failed_attempts",
            points,
            f"{n} failed or refused attempts in {params.failed_window_minutes} minutes",
        )
    ]


def new_device(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """A device never seen on this payer's earlier payments (only once they have some)."""
    if p.device_id is None:
        return []
    devices = {x.device_id for x in h.recent if x.device_id is not None}
    if not devices or p.device_id in devices:
        return []
    if is_large(p, h, params):
        return [_reason("new_device", 20, "a device never used by this payer, a large amount")]
    return [_reason("new_device", 10, "a device never used by this payer")]


def dormant_account(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """An account quiet for a month that suddenly pays a large amount (account takeover).

    Without recent payments there is no amount history to compare with, so dormancy itself
    is the signal, and it weighs as much as a far-off amount would."""
    if not is_large(p, h, params):
        return []
    if h.recent and h.recent[0].created_at > p.now - timedelta(days=30):
        return []
    if h.account_created_at is None or p.now - h.account_created_at < timedelta(days=30):
        return []
    return [_reason("dormant_account", 25, "no payment in 30 days, then a large amount")]


def pass_through(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """Money received from many people just now, paid on to a new person (a money mule);
    more when what left in the day is most of what came in. Paying a merchant party (an
    onboarded business) is a purchase, not a cash-out: a host who collected from friends
    pays the shop."""
    if not p.recipient.startswith("user:"):
        return []
    if h.paid_recipient_before or h.inbound_senders_24h < params.fan_in_senders:
        return []
    day = p.now - timedelta(hours=24)
    out = p.amount + sum(
        x.amount for x in h.recent if x.created_at > day and x.outcome not in FAILED_OUTCOMES
    )
    detail = f"received from {h.inbound_senders_24h} people in 24 hours, paying a new recipient"
    if h.inbound_amount_24h and 2 * out >= h.inbound_amount_24h:
        return [
            _reason(
                "pass_through",
                50,
                f"{detail}; {out} of the {h.inbound_amount_24h} received paid out again",
            )
        ]
    return [_reason("pass_through", 35, detail)]


def recipient_fan_in(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """Paying, for the first time, a person whom many others have just paid (the collecting
    end of a scam or a mule)."""
    if h.paid_recipient_before or h.recipient_senders_24h < params.fan_in_senders:
        return []
    return [
        _reason(
            "recipient_fan_in",
            25,
            f"first payment to {p.recipient}, paid by {h.recipient_senders_24h} people in 24 hours",
        )
    ]


def blocklist(p: Payment, h: PayerHistory, params: RiskParams) -> list[Reason]:
    """A blocklisted user, device or email: always block."""
    return [
        _reason("blocklist", 100, f"{kind} {value} is blocklisted: {reason}")
        for kind, value, reason in h.blocklist_hits
    ]


Rule = Callable[[Payment, PayerHistory, RiskParams], list[Reason]]

RULES: tuple[Rule, ...] = (
    blocklist,
    amount_vs_history,
    velocity,
    new_recipient,
    new_recipients_burst,
    account_age,
    failed_attempts,
    new_device,
    dormant_account,
    pass_through,
    recipient_fan_in,
)


def decide(score: int, params: RiskParams, *, blocked: bool = False) -> Action:
    if blocked or score >= params.block_threshold:
        return "block"
    if score >= params.review_threshold:
        return "review"
    return "allow"


def assess(p: Payment, h: PayerHistory, params: RiskParams) -> Assessment:
    """Every rule's reasons, the capped score and the action."""
    reasons: list[Reason] = []
    for rule in RULES:
        reasons.extend(rule(p, h, params))
    score = min(100, sum(int(r["points"]) for r in reasons))
    return Assessment(score, decide(score, params, blocked=bool(h.blocklist_hits)), reasons)
