"""Admin pages (TestClient, SQLite and PostgreSQL): the 404 page for anyone but an admin;
the status page shows the admin status report; the risk review queue lists a held payment
with its score and reasons, approve/reject resolve it once (a form sent twice, or a review
resolved already, changes nothing more); analytics page and its data."""

from __future__ import annotations

import json
import re

import pytest

from potluck.analytics import service as analytics
from potluck.identity.service import promote_user
from potluck.risk import service as risk
from potluck.wallets import service as wallets
from tests.integration.test_checkout_helpers import person
from tests.integration.test_wallets_helpers import available, fund
from tests.integration.web_helpers import cheap_hashing_fixture, client_fixture, sign_in  # noqa: F401 - fixtures

ADMIN_PAGES = ("/admin", "/admin/reviews", "/admin/reviews?status=approved", "/admin/analytics")


@pytest.fixture
def settings(settings):
    # Every payment the rules have anything to say about is held for review.
    return settings.model_copy(update={"risk_review_threshold": 1, "risk_block_threshold": 100})


def held_payment(potluck, payer, to, amount):
    with potluck.db.transaction() as s:
        sent = wallets.send(
            s,
            potluck,
            payer_user_id=payer,
            to=to,
            amount=amount,
            currency="EUR",
            now=potluck.clock.now(),
        )
    assert sent.status == "in_review", sent
    return sent


def pending_reviews(potluck):
    with potluck.db.read() as s:
        return risk.list_reviews(s, status="pending", limit=100, starting_after=None)[0]


def test_admin_pages_are_a_404_page_for_anyone_else(potluck, client):
    ann, _ = person(potluck, "ann")
    csrf = sign_in(potluck, client, ann)
    for path in ADMIN_PAGES:
        page = client.get(path)
        assert page.status_code == 404, path
        assert "text/html" in page.headers["content-type"]
    refused = client.post(
        "/admin/reviews/rvw_x/approve", data={"csrf_token": csrf, "idempotency_key": "k"}
    )
    assert refused.status_code == 404
    assert client.get("/dashboard").text.count('href="/admin"') == 0  # no Admin link either


def test_status_page_and_review_queue(potluck, client):
    admin, _ = person(potluck, "ada")
    promote_user(potluck, email="ada@example.com")
    ann, _ = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 50_000)
    first = held_payment(potluck, ann, bob, 12_000)
    second = held_payment(potluck, ann, bob, 8_000)
    csrf = sign_in(potluck, client, admin)

    status = client.get("/admin")
    assert status.status_code == 200
    assert 'data-testid="overall-status"' in status.text
    assert "Database" in status.text
    assert "Dead letters" in status.text

    queue = client.get("/admin/reviews")
    assert queue.status_code == 200
    reviews = {r.subject_id: r for r in pending_reviews(potluck)}
    assert set(reviews) == {first.id, second.id}
    for review in reviews.values():
        assert f'data-review="{review.id}"' in queue.text
        assert f'<strong class="score">{review.decision.score}</strong>' in queue.text
        for reason in review.decision.reasons:
            assert reason["rule"] in queue.text
    assert "ann &lt;ann@example.com&gt;" in queue.text

    approve = {"csrf_token": csrf, "idempotency_key": "approve-1"}
    for _ in range(2):  # the same form twice: resolved once
        r = client.post(
            f"/admin/reviews/{reviews[first.id].id}/approve", data=approve, follow_redirects=False
        )
        assert r.status_code == 303
    # Rejecting it afterwards (another admin's stale page) is refused, nothing changes.
    late = client.post(
        f"/admin/reviews/{reviews[first.id].id}/reject",
        data={"csrf_token": csrf, "idempotency_key": "reject-late"},
    )
    assert late.status_code == 200
    assert "already approved" in late.text
    client.post(
        f"/admin/reviews/{reviews[second.id].id}/reject",
        data={"csrf_token": csrf, "idempotency_key": "reject-2"},
    )
    assert pending_reviews(potluck) == []
    with potluck.db.read() as s:
        assert wallets.get_transfer(s, first.id, user_id=ann).status == "completed"
        assert wallets.get_transfer(s, second.id, user_id=ann).status == "rejected"
    b = available(potluck, ann)
    assert (b.total, b.held) == (38_000, 0)
    done = client.get("/admin/reviews?status=approved")
    assert reviews[first.id].id in done.text
    assert "No pending reviews." in client.get("/admin/reviews").text

    # Analytics: the charts' data is the analytics service's report, day by day.
    today = potluck.clock.now().date()
    page = client.get(f"/admin/analytics?from={today}&to={today}")
    assert page.status_code == 200
    data = json.loads(re.search(r'id="analytics-data">(.*?)</script>', page.text, re.S).group(1))
    with potluck.db.read() as s:
        report = analytics.report(s, start=today, end=today)
    assert data["days"] == [today.isoformat()]
    expected = {(t.product, t.volume, t.count) for t in report.totals if t.currency == "EUR"}
    shown = {(p, data["volume"][p][0], data["count"][p][0]) for p in data["products"]}
    assert shown == expected
    assert any(volume >= 12_000 for _, volume, _ in shown)  # the approved payment at least
    assert data["fraud"]["values"][:2] == [report.fraud.scored, report.fraud.flagged]
    assert report.fraud.flagged >= 2
    bad = client.get(f"/admin/analytics?from={today}&to=2000-01-01")
    assert bad.status_code == 422
    assert 'id="to-error"' in bad.text
