"""Risk scoring benchmark: replay the synthetic data set (``risk/synthetic.py``) through the
real ``score_payment`` + ``record_outcome`` on a fresh database, then report how well the rules
separate fraud from legit payments and how long scoring takes.

``potluck bench risk`` (``bench/run_risk.sh``) prints the figures; docs/benchmarks.md
"Risk scoring" has them. Flagged = review or block.

What happens to a payment in the replay: ``allow`` → the payment's own fate in the data set
(completed, or failed for want of funds); ``block`` → blocked; ``review`` → in review, and a
reviewer resolves it ``review_delay_minutes`` later (fraud rejected, legit approved: a reviewer
who looks at the case is assumed to get it right). The payer's later payments are scored on
that history, as they would be in production.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import insert

from potluck.benchmarks.ledger import fresh_database, percentile
from potluck.benchmarks.marketplace import _app
from potluck.bootstrap import Potluck
from potluck.identity.models import User
from potluck.risk import service
from potluck.risk.synthetic import LEGIT, PATTERNS, Dataset, generate


class Progress(Protocol):
    def start(self, description: str, total: int) -> Callable[[int], None]: ...


@dataclass
class Options:
    seed: int = 2
    users: int = 400
    days: int = 28
    card_testing: int = 12
    account_takeover: int = 12
    mules: int = 8
    backend: str = "sqlite"
    latency_calls: int = 5_000
    review_delay_minutes: int = 30
    warmup_days: int = 7

    @classmethod
    def quick(cls, **kw: Any) -> Options:
        base: dict[str, Any] = {
            "users": 40,
            "days": 12,
            "card_testing": 2,
            "account_takeover": 2,
            "mules": 1,
            "latency_calls": 200,
            "warmup_days": 3,
        }
        base.update(kw)
        return cls(**base)


@dataclass
class PatternFigure:
    pattern: str
    payments: int
    flagged: int
    blocked: int
    reviewed: int
    recall: float  # flagged / payments
    precision: float  # flagged of this pattern / (those + every flagged legit payment)


@dataclass
class Report:
    seed: int
    backend: str
    payments: int
    legit: int
    fraud: int
    flagged: int
    true_positives: int
    false_positives: int
    legit_blocked: int
    legit_reviewed: int
    precision: float
    recall: float
    false_positive_rate: float
    patterns: list[PatternFigure]
    rule_hits: dict[str, dict[str, int]]  # rule -> {"legit": n, "fraud": n}
    score_ms: dict[str, float]  # score_payment incl. its insert: p50, p99
    evaluate_ms: dict[str, float]  # scoring without the insert: p50, p99
    # the same calls' CPU time in this thread (SQLite runs in it): the cost without the waits
    # for a core that a loaded machine adds to wall time
    evaluate_cpu_ms: dict[str, float]
    latency_calls: int
    thresholds: dict[str, int]
    seconds: float
    load_average: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round((percentile(ordered, 50) or 0.0) * 1000, 3),
        "p99": round((percentile(ordered, 99) or 0.0) * 1000, 3),
    }


def replay(app: Potluck, data: Dataset, opts: Options, progress: Progress | None) -> Report:
    """Score every payment of ``data`` in time order and measure."""
    with app.db.transaction() as s:
        s.execute(
            insert(User),
            [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.id,
                    "password_hash": "!",  # cannot sign in
                    "role": "user",
                    "created_at": u.created_at,
                }
                for u in data.users
            ],
        )
    advance = progress.start("score payments", len(data.payments)) if progress else None
    started = time.perf_counter()
    pending: list[tuple[Any, int, str, bool]] = []  # (due, seq, decision id, fraud)
    actions: list[str] = []
    score_times: list[float] = []
    rule_hits: dict[str, dict[str, int]] = {}
    delay = timedelta(minutes=opts.review_delay_minutes)
    # Measured: payments after the warm-up (the first days build everyone's history; no
    # fraud is injected in them).
    measured_from = data.start + timedelta(days=opts.warmup_days)
    for i, p in enumerate(data.payments):
        while pending and pending[0][0] <= p.at:
            due, _, decision_id, fraud = heapq.heappop(pending)
            with app.db.transaction() as s:
                service.record_outcome(
                    s,
                    decision_id=decision_id,
                    outcome="rejected" if fraud else "completed",
                    now=due,
                )
        with app.db.transaction() as s:
            t0 = time.perf_counter()
            decision = service.score_payment(
                s,
                app,
                payer_user_id=p.payer_user_id,
                recipient=p.recipient,
                amount=p.amount,
                currency=p.currency,
                device_id=p.device_id,
                subject_id=f"wtr_bench{i:07d}",
                now=p.at,
            )
            score_times.append(time.perf_counter() - t0)
            if decision.action == "block":
                outcome = "blocked"
            elif decision.action == "review":
                outcome = "in_review"
                heapq.heappush(pending, (p.at + delay, i, decision.id, p.fraud))
            else:
                outcome = "completed" if p.succeeds else "failed"
            service.record_outcome(s, decision_id=decision.id, outcome=outcome, now=p.at)  # type: ignore[arg-type]
        actions.append(decision.action)
        side = "fraud" if p.fraud else "legit"
        for r in decision.reasons if p.at >= measured_from else ():
            hits = rule_hits.setdefault(str(r["rule"]), {"legit": 0, "fraud": 0})
            hits[side] += 1
        if advance and i % 100 == 99:
            advance(100)
    if advance:
        advance(len(data.payments) % 100)

    # Scoring alone (no insert), over the finished history: at least latency_calls calls.
    n = max(opts.latency_calls, 1)
    advance = progress.start("score without insert", n) if progress else None
    eval_times: list[float] = []
    eval_cpu: list[float] = []
    with app.db.read() as s:
        for k in range(n):
            p = data.payments[k % len(data.payments)]
            t0, c0 = time.perf_counter(), time.thread_time()
            service.evaluate_payment(
                s,
                app,
                payer_user_id=p.payer_user_id,
                recipient=p.recipient,
                amount=p.amount,
                currency=p.currency,
                device_id=p.device_id,
                now=p.at,
            )
            eval_times.append(time.perf_counter() - t0)
            eval_cpu.append(time.thread_time() - c0)
            if advance and k % 100 == 99:
                advance(100)
    seconds = time.perf_counter() - started

    idx = [i for i, p in enumerate(data.payments) if p.at >= measured_from]
    flagged = {i: actions[i] != "allow" for i in idx}
    tp = sum(1 for i in idx if flagged[i] and data.payments[i].fraud)
    fp = sum(1 for i in idx if flagged[i] and not data.payments[i].fraud)
    n_fraud = sum(1 for i in idx if data.payments[i].fraud)
    n_legit = len(idx) - n_fraud
    patterns = []
    for name in PATTERNS:
        mine = [i for i in idx if data.payments[i].pattern == name]
        hit = sum(1 for i in mine if flagged[i])
        patterns.append(
            PatternFigure(
                pattern=name,
                payments=len(mine),
                flagged=hit,
                blocked=sum(1 for i in mine if actions[i] == "block"),
                reviewed=sum(1 for i in mine if actions[i] == "review"),
                recall=round(_ratio(hit, len(mine)), 4),
                precision=round(_ratio(hit, hit + fp), 4),
            )
        )
    settings = app.settings
    return Report(
        seed=data.seed,
        backend=opts.backend,
        payments=len(idx),
        legit=n_legit,
        fraud=n_fraud,
        flagged=sum(flagged.values()),
        true_positives=tp,
        false_positives=fp,
        legit_blocked=sum(1 for i in idx if actions[i] == "block" and not data.payments[i].fraud),
        legit_reviewed=sum(1 for i in idx if actions[i] == "review" and not data.payments[i].fraud),
        precision=round(_ratio(tp, tp + fp), 4),
        recall=round(_ratio(tp, n_fraud), 4),
        false_positive_rate=round(_ratio(fp, n_legit), 4),
        patterns=patterns,
        rule_hits=dict(sorted(rule_hits.items())),
        score_ms=_ms(score_times),
        evaluate_ms=_ms(eval_times),
        evaluate_cpu_ms=_ms(eval_cpu),
        latency_calls=len(eval_times),
        thresholds={
            "review": settings.risk_review_threshold,
            "block": settings.risk_block_threshold,
        },
        seconds=round(seconds, 2),
        load_average=round(os.getloadavg()[0], 1),
        notes=[
            f"{len(data.payments)} payments scored; the {len(idx)} from day "
            f"{opts.warmup_days} on are measured ({LEGIT}: {n_legit}, fraud: {n_fraud})"
        ],
    )


def run(opts: Options, progress: Progress | None = None, **settings: Any) -> Report:
    data = generate(
        opts.seed,
        users=opts.users,
        days=opts.days,
        card_testing=opts.card_testing,
        account_takeover=opts.account_takeover,
        mules=opts.mules,
    )
    with fresh_database(opts.backend) as url:
        app = _app(url, pool_size=4, **settings)
        try:
            return replay(app, data, opts, progress)
        finally:
            app.db.dispose()
