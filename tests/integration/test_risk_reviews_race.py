"""Concurrent approve and reject of one review (PostgreSQL, real threads): exactly one wins,
the other is refused with 409 review_already_resolved, and the wallet payment agrees."""

from __future__ import annotations

import threading

import pytest

from potluck.errors import DomainError
from potluck.risk import service as risk
from potluck.risk.models import RiskReview
from potluck.wallets import service as wallets
from tests.integration.test_wallets_helpers import available, fund, person

pytestmark = pytest.mark.postgres_only


def test_concurrent_approve_and_reject_end_with_one_outcome(potluck):
    ann, _ = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 10_000)
    # a new account paying someone new scores 25: held for review from 20
    potluck.settings = potluck.settings.model_copy(update={"risk_review_threshold": 20})
    rounds = 4
    held = []
    for _ in range(rounds):
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
        held.append(t)
    with potluck.db.read() as s:
        reviews = {r.subject_id: r.id for r in s.query(RiskReview)}

    outcomes = []
    for t in held:
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}

        def resolve(approve: bool, review_id: str = reviews[t.id]) -> None:
            barrier.wait()
            try:
                with potluck.db.transaction() as s:
                    risk.resolve_review(
                        s,
                        potluck,
                        review_id=review_id,
                        approve=approve,
                        reviewer_id="approver" if approve else "rejecter",
                        note=None,
                        now=potluck.clock.now(),
                    )
                results["approve" if approve else "reject"] = "ok"
            except DomainError as exc:
                results["approve" if approve else "reject"] = exc.code

        threads = [threading.Thread(target=resolve, args=(a,)) for a in (True, False)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=30)
        assert sorted(results.values()) == ["ok", "review_already_resolved"], results
        winner = "approve" if results["approve"] == "ok" else "reject"
        with potluck.db.read() as s:
            review = risk.get_review(s, reviews[t.id])
            transfer = wallets.get_transfer(s, t.id)
        expected = {"approve": ("approved", "completed"), "reject": ("rejected", "rejected")}
        assert (review.status, transfer.status) == expected[winner]
        assert review.decision.outcome == transfer.status
        outcomes.append(winner)

    approved = outcomes.count("approve")
    assert available(potluck, bob).available == 100 * approved
    assert available(potluck, ann).available == 10_000 - 100 * approved
    assert available(potluck, ann).held == 0
