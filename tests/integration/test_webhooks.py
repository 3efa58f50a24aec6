"""Outbound webhooks on SQLite and PostgreSQL: endpoints API, fan-out, signed sending,
retries with backoff, the 72 h window, exactly one delivery per event and endpoint.

Events are published here directly (``potluck.bus.publish``), as the marketplace and payouts
services would; nothing depends on their code. The HTTP side is an ``httpx.MockTransport``
passed through ``Potluck.webhook_transport`` (test_webhooks_http.py uses a real server).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from potluck.api.app import create_app
from potluck.bootstrap import Potluck
from potluck.bus import publish
from potluck.bus.models import OutboxEvent
from potluck.clock import FakeClock, utc
from potluck.identity.service import create_platform
from potluck.notify import sender
from potluck.notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from potluck.notify.signing import verify_signature

WINDOW = 72 * 3600


@dataclass
class Receiver:
    """A fake platform server: records requests, answers what ``respond`` says."""

    respond: Callable[[httpx.Request], httpx.Response] = field(
        default=lambda _r: httpx.Response(200, json={"ok": True})
    )
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.respond(request)

    def to(self, url: str) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) == url]


@pytest.fixture
def app(potluck: Potluck) -> Potluck:
    # Endpoints below live on made-up hosts (no DNS here) and on 127.0.0.1.
    potluck.settings = potluck.settings.model_copy(
        update={"webhook_allow_private_urls": True, "webhook_allow_insecure_urls": True}
    )
    return potluck


@pytest.fixture
def receiver(app: Potluck) -> Receiver:
    r = Receiver()
    app.webhook_transport = httpx.MockTransport(r)
    return r


@pytest.fixture
def client(app):
    with TestClient(create_app(app)) as c:
        yield c


def platform(app: Potluck, name: str) -> tuple[str, dict[str, str]]:
    view, secret = create_platform(app, name=name)
    return view.id, {"Authorization": f"Bearer {secret}"}


def add_endpoint(client, headers, url, events, **extra) -> dict:
    r = client.post(
        "/v1/webhook-endpoints", json={"url": url, "events": events, **extra}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def emit(app: Potluck, event_type: str, platform_id: str | None, **data) -> str:
    payload = {"platform_id": platform_id, **data} if platform_id else dict(data)
    with app.db.transaction() as s:
        return publish(s, event_type, payload, now=app.clock.now())


def drain(app: Potluck) -> int:
    """Relay, apply to the webhooks service, send: until nothing is due (this service only,
    so that other services' handlers cannot change what these tests see)."""
    total = 0
    for _ in range(100):
        done = app.bus.relay_once() + app.bus.work_once("webhooks")
        if done == 0:
            return total
        total += done
    raise AssertionError("webhooks never went idle")


def deliveries(client, headers, endpoint_id, **params) -> list[dict]:
    r = client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=headers, params=params
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def count(app: Potluck, model, *where) -> int:
    with app.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


# ---------------------------------------------------------------------------- endpoints API


def test_create_shows_the_secret_once_and_lists_without_it(app, client):
    _, acme = platform(app, "Acme")
    r = client.post(
        "/v1/webhook-endpoints",
        json={
            "url": "https://hooks.acme.test/pl",
            "events": ["payout.completed"],
            "description": "payouts",
        },
        headers={**acme, "Idempotency-Key": "whe-1"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    assert created["secret"].startswith("whsec_")
    assert created["id"].startswith("whe_")
    assert created["status"] == "enabled"
    assert created["events"] == ["payout.completed"]

    listed = client.get("/v1/webhook-endpoints", headers=acme).json()
    assert listed["has_more"] is False
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]
    one = client.get(f"/v1/webhook-endpoints/{created['id']}", headers=acme).json()
    assert "secret" not in one
    assert one["description"] == "payouts"

    # The idempotency store kept no body (no-store), so a replay cannot show the secret.
    again = client.post(
        "/v1/webhook-endpoints",
        json={
            "url": "https://hooks.acme.test/pl",
            "events": ["payout.completed"],
            "description": "payouts",
        },
        headers={**acme, "Idempotency-Key": "whe-1"},
    )
    assert again.status_code == 409
    assert "whsec_" not in again.text
    assert count(app, WebhookEndpoint) == 1


def test_list_is_paginated(app, client):
    _, acme = platform(app, "Acme")
    ids = [add_endpoint(client, acme, f"https://h.test/{i}", ["*"])["id"] for i in range(3)]
    first = client.get("/v1/webhook-endpoints", params={"limit": 2}, headers=acme).json()
    assert [e["id"] for e in first["data"]] == ids[:2]
    assert first["has_more"] is True
    rest = client.get(
        "/v1/webhook-endpoints", params={"limit": 2, "starting_after": ids[1]}, headers=acme
    ).json()
    assert [e["id"] for e in rest["data"]] == ids[2:]
    assert rest["has_more"] is False


def test_another_platforms_endpoint_is_404(app, client):
    _, acme = platform(app, "Acme")
    _, other = platform(app, "Other")
    endpoint = add_endpoint(client, acme, "https://h.test/a", ["*"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    for method, url in (("GET", path), ("DELETE", path), ("GET", f"{path}/deliveries")):
        r = client.request(method, url, headers=other)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json()["code"] == "endpoint_not_found"
    assert client.get("/v1/webhook-endpoints", headers=other).json()["data"] == []
    assert client.get(path, headers=acme).json()["status"] == "enabled"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": "https://h.test/", "events": ["payout.exploded"]}, "events", "unknown_event_type"),
        ({"url": "https://h.test/", "events": []}, "events", None),
        ({"url": "https://h.test/", "events": ["*", "payout.failed"]}, "events", "invalid_events"),
        ({"url": "ftp://h.test/", "events": ["*"]}, "url", "invalid_url"),
        ({"url": "https://h.test/", "events": ["*"], "secret": "mine"}, "secret", None),
        ({"events": ["*"]}, "url", None),
    ],
)
def test_bad_input_is_422_naming_the_field_and_records_nothing(app, client, body, field, code):
    _, acme = platform(app, "Acme")
    r = client.post("/v1/webhook-endpoints", json=body, headers=acme)
    assert r.status_code == 422, r.text
    problem = r.json()
    if code:
        assert problem["code"] == code
    assert any(field in str(e.get("field", "")) for e in problem["errors"]), problem
    assert count(app, WebhookEndpoint) == 0


def test_insecure_and_private_urls_are_refused_by_default(potluck):
    """Default settings: https only, and no loopback/private/metadata addresses (SSRF)."""
    client = TestClient(create_app(potluck))  # not the `app` fixture: default settings
    _, acme = platform(potluck, "Acme")
    for url, code in (
        ("http://93.184.216.34/hook", "invalid_url"),
        ("https://127.0.0.1/hook", "url_not_allowed"),
        ("https://10.0.0.7/hook", "url_not_allowed"),
        ("https://169.254.169.254/latest/meta-data", "url_not_allowed"),
        ("https://[::1]/hook", "url_not_allowed"),
    ):
        r = client.post("/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=acme)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] == code, url
    r = client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://93.184.216.34/hook", "events": ["*"]},
        headers=acme,
    )
    assert r.status_code == 201, r.text
    assert count(potluck, WebhookEndpoint) == 1


# ---------------------------------------------------------------------------- delivery


def test_event_reaches_matching_endpoint_once_signed_and_nobody_else(app, client, receiver, clock):
    acme_id, acme = platform(app, "Acme")
    other_id, other = platform(app, "Other")
    wanted = add_endpoint(client, acme, "https://acme.test/payouts", ["payout.completed"])
    everything = add_endpoint(client, acme, "https://acme.test/all", ["*"])
    orders_only = add_endpoint(client, acme, "https://acme.test/orders", ["order.recorded"])
    foreign = add_endpoint(client, other, "https://other.test/all", ["*"])

    event_id = emit(
        app, "payout.completed", acme_id, payout_id="po_1", amount=40000, currency="EUR"
    )
    drain(app)

    assert len(receiver.to("https://acme.test/payouts")) == 1
    assert len(receiver.to("https://acme.test/all")) == 1
    assert receiver.to("https://acme.test/orders") == []
    assert receiver.to("https://other.test/all") == []

    request = receiver.to("https://acme.test/payouts")[0]
    body = request.content
    assert verify_signature(
        wanted["secret"], request.headers["Potluck-Signature"], body, now=clock.now()
    )
    assert not verify_signature(
        everything["secret"], request.headers["Potluck-Signature"], body, now=clock.now()
    )
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Potluck-Event-Id"] == event_id
    assert request.headers["User-Agent"].startswith("Potluck-Webhooks/")
    assert json.loads(body) == {
        "id": event_id,
        "type": "payout.completed",
        "occurred_at": clock.now().isoformat(),
        "data": {"platform_id": acme_id, "payout_id": "po_1", "amount": 40000, "currency": "EUR"},
    }

    [delivery] = deliveries(client, acme, wanted["id"])
    assert delivery["event_id"] == event_id
    assert delivery["event_type"] == "payout.completed"
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 1
    assert [(a["status_code"], a["succeeded"], a["error"]) for a in delivery["attempts"]] == [
        (200, True, None)
    ]
    assert delivery["attempts"][0]["duration_ms"] >= 0
    assert deliveries(client, acme, orders_only["id"]) == []
    assert deliveries(client, other, foreign["id"]) == []

    # Nothing more is sent later.
    clock.advance(WINDOW + 1)
    drain(app)
    assert len(receiver.requests) == 2


def test_the_whole_bus_drain_sends_them(app, client, receiver, clock):
    """The poller runs in every worker round: ``potluck.bus.drain()`` is enough."""
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    for status in ("created", "processing", "completed"):
        emit(app, f"payout.{status}", acme_id, payout_id="po_1", amount=100, currency="EUR")
    app.bus.drain()
    types = sorted(json.loads(r.content)["type"] for r in receiver.requests)
    assert types == ["payout.completed", "payout.created", "payout.processing"]
    assert {d["status"] for d in deliveries(client, acme, endpoint["id"])} == {"succeeded"}


def test_failures_are_retried_with_backoff_and_succeed_later(app, client, receiver, clock):
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["split.completed"])
    answers = iter([httpx.Response(500), httpx.Response(404)])

    def flaky(request: httpx.Request) -> httpx.Response:
        if len(receiver.requests) == 3:  # this request is already recorded
            raise httpx.ConnectError("connection refused", request=request)
        return next(answers, httpx.Response(204))

    receiver.respond = flaky
    start = clock.now()
    emit(app, "split.completed", acme_id, order_id="ord_1")
    drain(app)
    assert len(receiver.requests) == 1  # 500

    [d] = deliveries(client, acme, endpoint["id"])
    assert d["status"] == "pending"
    assert utc_iso(d["next_attempt_at"]) == start + timedelta(seconds=60)

    clock.advance(59)
    drain(app)
    assert len(receiver.requests) == 1  # not yet due
    clock.advance(1)
    drain(app)
    assert len(receiver.requests) == 2  # 404, then wait 120 s
    clock.advance(119)
    drain(app)
    assert len(receiver.requests) == 2
    clock.advance(1)
    drain(app)
    assert len(receiver.requests) == 3  # connection refused, then wait 240 s
    clock.advance(240)
    drain(app)
    assert len(receiver.requests) == 4  # 204: done

    [d] = deliveries(client, acme, endpoint["id"])
    assert d["status"] == "succeeded"
    assert d["attempt_count"] == 4
    assert d["next_attempt_at"] is None
    got = [(a["status_code"], a["succeeded"]) for a in d["attempts"]]
    assert got == [(500, False), (404, False), (None, False), (204, True)]
    assert d["attempts"][0]["error"] == "HTTP 500"
    assert "ConnectError" in d["attempts"][2]["error"]
    times = [utc_iso(a["attempted_at"]) - start for a in d["attempts"]]
    assert times == [timedelta(seconds=s) for s in (0, 60, 180, 420)]
    # Every attempt is signed with its own timestamp.
    stamps = [r.headers["Potluck-Signature"].split(",")[0] for r in receiver.requests]
    assert len(set(stamps)) == 4
    clock.advance(WINDOW)
    drain(app)
    assert len(receiver.requests) == 4


def test_after_72_hours_the_delivery_stops_as_failed(app, client, receiver, clock):
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    receiver.respond = lambda _r: httpx.Response(503)
    start = clock.now()
    emit(app, "payout.failed", acme_id, payout_id="po_9")
    drain(app)
    for _ in range(160):
        clock.advance(1800)  # half an hour at a time, over the whole window and beyond
        drain(app)
    [d] = deliveries(client, acme, endpoint["id"])
    assert d["status"] == "failed"
    assert d["last_status_code"] == 503
    assert utc_iso(d["completed_at"]) - start <= timedelta(seconds=WINDOW + 1800)
    times = [utc_iso(a["attempted_at"]) - start for a in d["attempts"]]
    # Exponential from 60 s, capped at 6 h, and the last try exactly at the window's end.
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert gaps == sorted(gaps[:-1]) + gaps[-1:]  # growing (the last one is cut by the window)
    assert max(gaps) <= 6 * 3600 + 1800
    assert times[-1] >= timedelta(seconds=WINDOW)
    assert times[-2] < timedelta(seconds=WINDOW)
    assert len(receiver.requests) == len(times) == d["attempt_count"]
    sent = len(receiver.requests)
    clock.advance(WINDOW)
    drain(app)
    assert len(receiver.requests) == sent


def test_exact_schedule_with_a_fresh_clock(app, client, receiver, clock: FakeClock):
    """Moving the clock exactly to each due time gives the documented schedule."""
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    receiver.respond = lambda _r: httpx.Response(500)
    start = clock.now()
    emit(app, "split.completed", acme_id, order="ord_1")
    drain(app)
    while True:
        with app.db.read() as s:
            row = s.execute(select(WebhookDelivery)).scalar_one()
            status, due = row.status, utc(row.next_attempt_at)
        if status != "pending":
            break
        clock.advance((due - clock.now()).total_seconds())
        drain(app)
    [d] = deliveries(client, acme, endpoint["id"])
    offsets = [(utc_iso(a["attempted_at"]) - start).total_seconds() for a in d["attempts"]]
    expected, t, n = [0.0], 0.0, 1
    while t < WINDOW:
        t = min(t + min(60 * 2 ** (n - 1), 6 * 3600), WINDOW)
        expected.append(t)
        n += 1
    assert offsets == expected
    assert d["status"] == "failed"


def test_the_same_event_delivered_twice_creates_one_delivery(app, client, receiver):
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["order.recorded"])
    event_id = emit(app, "order.recorded", acme_id, order_id="ord_1", amount=10001, currency="EUR")
    drain(app)
    # What a relay that crashed before marking the event sent leaves behind: it is
    # published (and delivered to the webhooks service) a second time.
    with app.db.transaction() as s:
        s.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(status="pending", sent_at=None)
        )
    assert app.bus.relay_once() == 1
    drain(app)
    assert count(app, WebhookDelivery, WebhookDelivery.event_id == event_id) == 1
    assert len(receiver.requests) == 1
    assert len(deliveries(client, acme, endpoint["id"])) == 1


def test_events_without_platform_or_not_deliverable_send_nothing(app, client, receiver):
    acme_id, acme = platform(app, "Acme")
    add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    emit(app, "payout.created", None, payout_id="po_1")  # no platform_id: nowhere to send
    emit(app, "group.created", acme_id, group_id="grp_1")  # not a webhook event type
    drain(app)
    assert receiver.requests == []
    assert count(app, WebhookDelivery) == 0


def test_disabled_endpoint_gets_nothing_more(app, client, receiver, clock):
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    receiver.respond = lambda _r: httpx.Response(500)
    emit(app, "payout.created", acme_id, payout_id="po_1")
    drain(app)
    assert len(receiver.requests) == 1

    r = client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=acme)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "disabled"
    assert r.json()["disabled_at"] is not None
    assert client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=acme).status_code == 200

    emit(app, "payout.processing", acme_id, payout_id="po_1")
    clock.advance(3600)
    drain(app)
    assert len(receiver.requests) == 1  # neither the retry nor the new event
    [d] = deliveries(client, acme, endpoint["id"])
    assert d["status"] == "failed"
    assert d["last_error"] == "endpoint disabled"
    assert deliveries(client, acme, endpoint["id"], status="pending") == []


def test_timeouts_are_failed_attempts(app, client, receiver, clock):
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    receiver.respond = slow
    emit(app, "order.refunded", acme_id, order_id="ord_1", amount=5, currency="EUR")
    drain(app)
    [d] = deliveries(client, acme, endpoint["id"])
    assert d["status"] == "pending"
    assert d["attempts"][0]["status_code"] is None
    assert d["attempts"][0]["error"].startswith("timeout")


def test_deliveries_list_is_paginated_and_filtered(app, client, receiver):
    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    for i in range(3):
        emit(app, "payout.created", acme_id, payout_id=f"po_{i}")
    drain(app)
    first = client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params={"limit": 2}, headers=acme
    ).json()
    assert first["has_more"] is True
    rest = client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
        params={"limit": 2, "starting_after": first["data"][-1]["id"]},
        headers=acme,
    ).json()
    assert rest["has_more"] is False
    ids = [d["id"] for d in first["data"] + rest["data"]]
    assert len(set(ids)) == 3
    assert len(deliveries(client, acme, endpoint["id"], status="succeeded")) == 3
    assert deliveries(client, acme, endpoint["id"], status="failed") == []
    assert count(app, WebhookAttempt) == 3


# ---------------------------------------------------------------------------- senders


def test_a_delivery_in_flight_is_not_claimed_by_another_sender(app, client, receiver):
    """While one sender is waiting on the endpoint, its lease keeps others off the row."""
    import threading

    acme_id, acme = platform(app, "Acme")
    endpoint = add_endpoint(client, acme, "https://acme.test/hook", ["*"])
    in_flight, release = threading.Event(), threading.Event()

    def blocking(_request: httpx.Request) -> httpx.Response:
        in_flight.set()
        assert release.wait(30)
        return httpx.Response(200)

    receiver.respond = blocking
    emit(app, "payout.completed", acme_id, payout_id="po_1")
    while app.bus.relay_once() + app.bus.transport.consume(["webhooks"], _apply(app), limit=100):
        pass  # fan-out only; no sender has run yet
    assert count(app, WebhookDelivery) == 1

    first = threading.Thread(target=sender.send_due, args=(app,))
    first.start()
    try:
        assert in_flight.wait(30)
        assert sender.send_due(app) == 0  # the second sender finds nothing to claim
        assert sender.claim_due(app) == []
    finally:
        release.set()
        first.join(30)
    assert len(receiver.requests) == 1
    [d] = deliveries(client, acme, endpoint["id"])
    assert d["status"] == "succeeded"
    assert d["attempt_count"] == 1


def _apply(app: Potluck):
    from functools import partial

    from potluck.bus.worker import apply_event

    return partial(apply_event, app)


def utc_iso(value: str):
    from datetime import datetime

    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


# --- found walking issue 3 with curl ----------------------------------------------------


def test_refusal_messages_name_the_schemes_and_the_missing_endpoint(client, app):
    _, acme = platform(app, "Acme")
    r = client.post(
        "/v1/webhook-endpoints", json={"url": "ftp://example.com/", "events": ["*"]}, headers=acme
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "url must start with https:// or http://"
    r = client.get("/v1/webhook-endpoints/whe_missing", headers=acme)
    assert r.status_code == 404
    assert r.json()["code"] == "endpoint_not_found"
    assert r.json()["detail"] == "no webhook endpoint whe_missing"


def test_a_paid_intent_reaches_the_platforms_endpoint(app, client, receiver):
    """Payments and checkout events are deliverable: a platform hears its intents succeed."""
    from potluck.payments import sandbox_control

    acme_id, acme = platform(app, "Acme")
    hook = add_endpoint(client, acme, "https://acme.test/pay", ["payment.succeeded"])
    r = client.post(
        "/v1/payment-intents",
        json={"amount": 700, "currency": "EUR", "payer": "ann@example.com", "purpose": "order"},
        headers=acme,
    )
    assert r.status_code == 201, r.text
    sandbox_control.pay(app, r.json()["id"])
    drain(app)
    [request] = receiver.to("https://acme.test/pay")
    sent = json.loads(request.content)
    assert sent["type"] == "payment.succeeded"
    assert sent["data"]["intent"] == r.json()["id"]
    assert sent["data"]["amount"] == 700
    assert [d["event_type"] for d in deliveries(client, acme, hook["id"])] == ["payment.succeeded"]
