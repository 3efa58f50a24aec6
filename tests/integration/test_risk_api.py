"""Risk: decisions stored with their reasons, fraud.flagged, the admin reviews API (approve
and reject resolve the held wallet payment in the same transaction), decisions and blocklist
APIs, and the blocklist CLI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from potluck.api.app import create_app
from potluck.identity.service import promote_user
from potluck.risk import service as risk
from potluck.risk.models import RiskDecision
from potluck.wallets import service as wallets
from tests.integration.test_wallets_helpers import available, events, fund, person


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def _admin(potluck):
    uid, headers = person(potluck, "root")
    promote_user(potluck, email="root@example.com")
    return uid, headers


def _send(potluck, payer, to, amount, device=None):
    with potluck.db.transaction() as s:
        return wallets.send(
            s,
            potluck,
            payer_user_id=payer,
            to=to,
            amount=amount,
            currency="EUR",
            device_id=device,
            now=potluck.clock.now(),
        )


def test_scoring_stores_the_decision_and_flags_held_payments(potluck, client):
    ann, ann_h = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    _, admin_h = _admin(potluck)
    fund(potluck, ann, 100_000)

    ok = _send(potluck, ann, bob, 500)  # new account, new recipient: 25 points, allowed
    assert (ok.status, ok.risk_score) == ("completed", 25)
    # blocklisted device: blocked whatever the score
    r = client.post(
        "/v1/risk/blocklist",
        json={"kind": "device", "value": "phone-x", "reason": "stolen phone"},
        headers=admin_h,
    )
    assert r.status_code == 201, r.text
    blocked = _send(potluck, ann, bob, 500, device="phone-x")
    assert blocked.status == "blocked"
    assert available(potluck, ann).available == 99_500

    with potluck.db.read() as s:
        rows = {d.subject_id: risk.get_decision(s, d.id) for d in s.scalars(select(RiskDecision))}
    assert rows[ok.id].outcome == "completed"
    assert {r["rule"] for r in rows[ok.id].reasons} == {"account_age", "new_recipient"}
    assert rows[ok.id].amount == 500
    assert rows[blocked.id].action == "block"
    assert rows[blocked.id].outcome == "blocked"
    assert rows[blocked.id].device_id == "phone-x"
    assert rows[blocked.id].reasons[0] == {
        "rule": "blocklist",
        "points": 100,
        "detail": "device phone-x is blocklisted: stolen phone",
    }
    flagged = events(potluck, "fraud.flagged")
    assert len(flagged) == 1
    assert flagged[0]["subject_id"] == blocked.id
    assert flagged[0]["action"] == "block"
    assert flagged[0]["recipient"] == f"user:{bob}"
    assert set(flagged[0]) == {
        "decision_id",
        "subject_id",
        "payer_user_id",
        "recipient",
        "amount",
        "currency",
        "score",
        "action",
        "reasons",
    }

    # decisions, for administrators only, newest last, paginated
    r = client.get("/v1/risk/decisions", params={"payer": ann, "limit": 1}, headers=admin_h)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["has_more"] is True
    assert page["data"][0]["subject_id"] == ok.id
    assert page["data"][0]["reasons"][0].keys() == {"rule", "points", "detail"}
    after = page["data"][0]["id"]
    r = client.get("/v1/risk/decisions", params={"starting_after": after}, headers=admin_h)
    assert [d["subject_id"] for d in r.json()["data"]] == [blocked.id]
    r = client.get("/v1/risk/decisions", headers=ann_h)
    assert (r.status_code, r.json()["code"]) == (403, "admin_required")
    assert client.get("/v1/risk/decisions").status_code == 401

    # record_outcome refuses what it does not know
    with potluck.db.transaction() as s, pytest.raises(risk.RiskError) as e:
        risk.record_outcome(s, decision_id="rdec_nope", outcome="failed", now=potluck.clock.now())
    assert e.value.status == 404


def test_reviews_approve_and_reject_the_held_payment(potluck, client):
    ann, ann_h = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    root, admin_h = _admin(potluck)
    fund(potluck, ann, 10_000)
    # review from 20 points: a new account paying someone new is held
    potluck.settings = potluck.settings.model_copy(update={"risk_review_threshold": 20})
    first = _send(potluck, ann, bob, 1_000)
    second = _send(potluck, ann, bob, 2_000)
    assert (first.status, second.status) == ("in_review", "in_review")
    assert available(potluck, ann).available == 7_000

    r = client.get("/v1/risk/reviews", params={"status": "pending"}, headers=admin_h)
    assert r.status_code == 200, r.text
    pending = r.json()["data"]
    assert [p["subject_id"] for p in pending] == [first.id, second.id]
    one = client.get(f"/v1/risk/reviews/{pending[0]['id']}", headers=admin_h).json()
    assert one["status"] == "pending"
    assert one["score"] == first.risk_score
    assert one["reasons"] == first.risk_reasons
    assert one["decision"]["amount"] == 1_000

    # a normal person sees none of it
    for method, path in (
        ("get", "/v1/risk/reviews"),
        ("get", f"/v1/risk/reviews/{one['id']}"),
        ("post", f"/v1/risk/reviews/{one['id']}/approve"),
    ):
        r = getattr(client, method)(path, headers=ann_h)
        assert (r.status_code, r.json()["code"]) == (403, "admin_required")

    r = client.post(
        f"/v1/risk/reviews/{one['id']}/approve", json={"note": "known friend"}, headers=admin_h
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["reviewer_id"] == root
    assert r.json()["note"] == "known friend"
    assert r.json()["decision"]["outcome"] == "completed"
    r = client.post(f"/v1/risk/reviews/{one['id']}/reject", headers=admin_h)
    assert (r.status_code, r.json()["code"]) == (409, "review_already_resolved")

    r = client.post(f"/v1/risk/reviews/{pending[1]['id']}/reject", headers=admin_h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert client.post("/v1/risk/reviews/rrev_nope/approve", headers=admin_h).status_code == 404

    with potluck.db.read() as s:
        assert wallets.get_transfer(s, first.id).status == "completed"
        assert wallets.get_transfer(s, second.id).status == "rejected"
    assert available(potluck, ann).available == 9_000
    assert available(potluck, bob).available == 1_000
    resolved = events(potluck, "risk.review.resolved")
    assert [(e["subject_id"], e["outcome"], e["reviewer_id"]) for e in resolved] == [
        (first.id, "approved", root),
        (second.id, "rejected", root),
    ]
    r = client.get("/v1/risk/reviews", params={"status": "pending"}, headers=admin_h)
    assert r.json() == {"data": [], "has_more": False}
    r = client.get("/v1/risk/reviews", params={"status": "approved"}, headers=admin_h)
    assert [x["subject_id"] for x in r.json()["data"]] == [first.id]
    # the rejected attempt counts against the payer from now on
    with potluck.db.read() as s:
        e = risk.evaluate_payment(
            s,
            potluck,
            payer_user_id=ann,
            recipient=f"user:{bob}",
            amount=100,
            currency="EUR",
            device_id=None,
            now=potluck.clock.now(),
        )
    assert "failed_attempts" in {r["rule"] for r in e.assessment.reasons}


def test_blocklist_api_and_cli(potluck, client, monkeypatch):
    ann, ann_h = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    _, admin_h = _admin(potluck)
    body = {"kind": "email", "value": " Ann@Example.com", "reason": "chargebacks"}
    r = client.post("/v1/risk/blocklist", json=body, headers=admin_h)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["value"] == "ann@example.com"
    r = client.post("/v1/risk/blocklist", json=body, headers=admin_h)
    assert (r.status_code, r.json()["code"]) == (409, "already_blocklisted")
    bad = client.post(
        "/v1/risk/blocklist", json={**body, "kind": "card"}, headers=admin_h
    ).status_code
    assert bad == 422
    assert client.post("/v1/risk/blocklist", json=body, headers=ann_h).status_code == 403

    with potluck.db.transaction() as s:
        d = risk.score_payment(
            s,
            potluck,
            payer_user_id=ann,
            recipient=f"user:{bob}",
            amount=100,
            currency="EUR",
            device_id=None,
            subject_id="wtr_test",
            now=potluck.clock.now(),
        )
    assert (d.action, d.score) == ("block", 100)
    assert d.reasons[0]["rule"] == "blocklist"

    r = client.get("/v1/risk/blocklist", params={"kind": "email"}, headers=admin_h)
    assert [e["id"] for e in r.json()["data"]] == [entry["id"]]
    r = client.delete(f"/v1/risk/blocklist/{entry['id']}", headers=admin_h)
    assert r.status_code == 200, r.text
    assert client.delete(f"/v1/risk/blocklist/{entry['id']}", headers=admin_h).status_code == 404

    # the CLI on the same database
    from potluck.risk import cli

    monkeypatch.setattr("potluck.bootstrap.bootstrap", lambda *a, **k: potluck)
    runner = CliRunner()
    added = runner.invoke(cli.risk_app, ["blocklist", "add", "user", bob, "--reason", "mule"])
    assert added.exit_code == 0, added.output
    entry_id = added.output.split()[0]
    listed = runner.invoke(cli.risk_app, ["blocklist", "list"])
    assert entry_id in listed.output
    removed = runner.invoke(cli.risk_app, ["blocklist", "remove", entry_id])
    assert removed.exit_code == 0, removed.output
    with potluck.db.read() as s:
        assert risk.list_blocklist(s, kind=None, limit=10, starting_after=None) == ([], False)


def test_a_payment_scored_for_review_that_the_wallet_cannot_cover_leaves_no_review(potluck, client):
    ann, _ = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    _, admin_h = _admin(potluck)
    fund(potluck, ann, 1_000)
    potluck.settings = potluck.settings.model_copy(update={"risk_review_threshold": 20})
    failed = _send(potluck, ann, bob, 5_000)  # held for review, but the wallet has 10.00
    held = _send(potluck, ann, bob, 500)
    assert (failed.status, held.status) == ("failed", "in_review")

    pending = client.get("/v1/risk/reviews", params={"status": "pending"}, headers=admin_h)
    assert [p["subject_id"] for p in pending.json()["data"]] == [held.id]
    closed = client.get("/v1/risk/reviews", params={"status": "closed"}, headers=admin_h)
    (review,) = closed.json()["data"]
    assert (review["subject_id"], review["note"]) == (failed.id, "the payment failed before review")
    r = client.post(f"/v1/risk/reviews/{review['id']}/approve", json={}, headers=admin_h)
    assert (r.status_code, r.json()["code"]) == (409, "review_already_resolved")
    assert available(potluck, ann).available == 500  # only the held payment is held
