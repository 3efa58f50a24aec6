"""Webhooks over real sockets: a platform's server (``http.server`` in a thread) verifies the
signature the way a platform would; and concurrent senders never send one delivery twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from potluck.bootstrap import Potluck
from potluck.bus import publish
from potluck.identity.service import create_platform
from potluck.notify import sender, service
from potluck.notify.models import WebhookAttempt, WebhookDelivery
from potluck.notify.signing import verify_signature


@pytest.fixture
def app(potluck: Potluck) -> Potluck:
    potluck.settings = potluck.settings.model_copy(
        update={
            "webhook_allow_private_urls": True,  # the receiver listens on 127.0.0.1
            "webhook_allow_insecure_urls": True,
            "webhook_timeout_seconds": 5.0,
        }
    )
    return potluck


class PlatformServer:
    """What a platform runs: verify ``Potluck-Signature`` on the raw body, then answer."""

    def __init__(self, clock: Any) -> None:
        self.secret = ""
        self.clock = clock
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = verify_signature(
                    outer.secret,
                    self.headers.get("Potluck-Signature"),
                    body,
                    tolerance_seconds=300,
                    now=outer.clock.now(),  # the platform's clock agrees with ours
                )
                outer.received.append(
                    {"valid": valid, "body": body, "headers": dict(self.headers), "path": self.path}
                )
                self.send_response(200 if valid else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/potluck/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PlatformServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def platform_server(clock) -> Iterator[PlatformServer]:
    with PlatformServer(clock) as server:
        yield server


def add_endpoint(app: Potluck, platform_id: str, url: str, events: list[str]) -> tuple[str, str]:
    with app.db.transaction() as s:
        view, secret = service.create_endpoint(
            s,
            platform_id=platform_id,
            url=url,
            events=events,
            description=None,
            settings=app.settings,
            now=app.clock.now(),
        )
    return view.id, secret


def emit(app: Potluck, event_type: str, platform_id: str, **data: Any) -> str:
    with app.db.transaction() as s:
        return publish(s, event_type, {"platform_id": platform_id, **data}, now=app.clock.now())


def fan_out_only(app: Potluck) -> None:
    """Relay and apply to the webhooks service without running its sender."""
    from functools import partial

    from potluck.bus.worker import apply_event

    while app.bus.relay_once() + app.bus.transport.consume(
        ["webhooks"], partial(apply_event, app), limit=100
    ):
        pass


def drain(app: Potluck) -> None:
    for _ in range(100):
        if app.bus.relay_once() + app.bus.work_once("webhooks") == 0:
            return
    raise AssertionError("webhooks never went idle")


def statuses(app: Potluck) -> Counter[str]:
    with app.db.read() as s:
        return Counter(s.scalars(select(WebhookDelivery.status)).all())


def test_real_server_receives_and_verifies_a_signed_event(app, platform_server, clock):
    platform, _ = create_platform(app, name="Acme")
    _, platform_server.secret = add_endpoint(app, platform.id, platform_server.url, ["*"])
    event_id = emit(
        app, "payout.completed", platform.id, payout_id="po_1", amount=40000, currency="EUR"
    )
    drain(app)

    [got] = platform_server.received
    assert got["valid"] is True
    assert got["path"] == "/potluck/webhooks"
    assert got["headers"]["Potluck-Event-Id"] == event_id
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["User-Agent"].startswith("Potluck-Webhooks/")
    assert b'"amount":40000' in got["body"]
    assert statuses(app) == Counter({"succeeded": 1})
    with app.db.read() as s:
        [attempt] = s.scalars(select(WebhookAttempt)).all()
        assert attempt.status_code == 200
        assert attempt.succeeded


def test_real_server_refusing_a_bad_signature_makes_a_failed_attempt(app, platform_server):
    platform, _ = create_platform(app, name="Acme")
    add_endpoint(app, platform.id, platform_server.url, ["*"])
    platform_server.secret = "whsec_not_the_right_one"
    emit(app, "order.recorded", platform.id, order_id="ord_1")
    drain(app)
    assert [r["valid"] for r in platform_server.received] == [False]
    with app.db.read() as s:
        d = s.scalars(select(WebhookDelivery)).one()
        assert (d.status, d.last_status_code, d.last_error) == ("pending", 400, "HTTP 400")


def test_connection_refused_is_a_failed_attempt(app):
    platform, _ = create_platform(app, name="Acme")
    with PlatformServer(app.clock) as closed:
        url = closed.url
    add_endpoint(app, platform.id, url, ["*"])  # nothing listens there any more
    emit(app, "payout.failed", platform.id, payout_id="po_1")
    drain(app)
    with app.db.read() as s:
        d = s.scalars(select(WebhookDelivery)).one()
        assert d.status == "pending"
        assert d.attempts == 1
        assert d.last_status_code is None
        assert "ConnectError" in (d.last_error or "")


def test_concurrent_senders_send_each_delivery_once(app):
    """Four senders, released together, each holding a claimed batch in flight at the same
    moment (a barrier inside the endpoint): the batches are disjoint and every delivery is
    POSTed exactly once (FOR UPDATE SKIP LOCKED + lease on PostgreSQL)."""
    senders, per_batch, total = 4, 3, 40
    in_flight = threading.Barrier(senders, timeout=30)
    first_of: dict[int, bool] = {}
    sent: list[str] = []
    lock = threading.Lock()

    def endpoint(request: httpx.Request) -> httpx.Response:
        me = threading.get_ident()
        with lock:
            sent.append(request.headers["Potluck-Delivery-Id"])
            first = me not in first_of
            first_of[me] = True
        if first:
            in_flight.wait()  # every sender is mid-send with its first batch claimed
        return httpx.Response(200)

    app.webhook_transport = httpx.MockTransport(endpoint)
    # One POST at a time per sender, so that "first request of this thread" is per sender.
    app.settings = app.settings.model_copy(update={"webhook_concurrency": 1})
    platform, _ = create_platform(app, name="Acme")
    for i in range(4):
        add_endpoint(app, platform.id, f"https://acme.test/{i}", ["*"])
    for i in range(total // 4):
        emit(app, "payout.created", platform.id, payout_id=f"po_{i}")
    fan_out_only(app)
    assert statuses(app) == Counter({"pending": total})

    start = threading.Barrier(senders, timeout=30)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            while sender.send_due(app, limit=per_batch):
                pass
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(first_of) == senders  # all four really sent, concurrently
    counts = Counter(sent)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    assert statuses(app) == Counter({"succeeded": total})
    with app.db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebhookAttempt)) == total


def test_a_sender_whose_lease_ran_out_cannot_overwrite_the_next_one(app, clock):
    """Sender A claims and stalls past its lease; sender B claims the row again and succeeds;
    A's late result is logged as an attempt but does not change the delivery."""
    answers = iter([httpx.Response(500), httpx.Response(200)])
    app.webhook_transport = httpx.MockTransport(lambda _r: next(answers))
    platform, _ = create_platform(app, name="Acme")
    add_endpoint(app, platform.id, "https://acme.test/hook", ["*"])
    emit(app, "payout.processing", platform.id, payout_id="po_1")
    fan_out_only(app)

    [a] = sender.claim_due(app)
    assert sender.claim_due(app) == []  # leased
    clock.advance(sender.lease_seconds(app.settings) + 1)
    [b] = sender.claim_due(app)
    assert b.id == a.id
    assert b.lease != a.lease
    with sender.make_client(app) as client:
        late = sender.send_one(app, client, a)  # 500
        fresh = sender.send_one(app, client, b)  # 200
    assert sender.record(app, b, fresh) == "succeeded"
    assert sender.record(app, a, late) == "succeeded"  # fenced: unchanged
    with app.db.read() as s:
        d = s.scalars(select(WebhookDelivery)).one()
        codes = s.scalars(select(WebhookAttempt.status_code).order_by(WebhookAttempt.id)).all()
        assert (d.status, d.attempts, d.last_status_code) == ("succeeded", 1, 200)
    assert codes == [200, 500]
