"""Idempotency-Key over HTTP, on SQLite and PostgreSQL (and 50 real threads on PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import anyio
import httpx
import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from potluck.api import idempotency
from potluck.api.app import create_app
from potluck.api.models import IdempotencyKey
from potluck.identity import service as identity
from potluck.ledger.models import Account as LedgerAccount
from potluck.ledger.models import Transfer as LedgerTransfer
from tests.integration.server_thread import ServerThread

PROBLEM = "application/problem+json"
ACCOUNT = {"currency": "EUR", "code": "wallet"}


@pytest.fixture
def app(potluck):
    return create_app(potluck)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def platform(potluck, name="Acme"):
    _, secret = identity.create_platform(potluck, name=name)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def acme(potluck):
    return platform(potluck, "Acme")


def keyed(headers, key):
    return {**headers, "Idempotency-Key": key}


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def stored_rows(potluck):
    with potluck.db.read() as s:
        return s.execute(select(IdempotencyKey.__table__)).all()


def test_replay_returns_the_original_answer_without_a_second_effect(client, potluck, acme):
    first = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k-1"))
    again = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert count(potluck, LedgerAccount) == 1


def test_transfer_without_a_client_id_moves_money_once(client, potluck, acme):
    source = client.post("/v1/accounts", json=ACCOUNT, headers=acme).json()["id"]
    target = client.post("/v1/accounts", json=ACCOUNT, headers=acme).json()["id"]
    body = {"debit_account": source, "credit_account": target, "amount": 700, "currency": "EUR"}
    replies = [
        client.post("/v1/transfers", json=body, headers=keyed(acme, "pay-42")) for _ in range(3)
    ]
    assert [r.status_code for r in replies] == [201, 201, 201]
    assert replies[1].content == replies[2].content == replies[0].content
    assert count(potluck, LedgerTransfer) == 1
    balance = client.get(f"/v1/accounts/{target}", headers=acme).json()["balance"]
    assert balance["total"] == 700


def test_the_same_key_with_another_request_is_409_reused(client, potluck, acme):
    assert client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k")).status_code == 201
    other = client.post(
        "/v1/accounts", json={**ACCOUNT, "currency": "USD"}, headers=keyed(acme, "k")
    )
    assert other.status_code == 409
    assert other.headers["content-type"] == PROBLEM
    assert other.json()["code"] == "idempotency_key_reused"
    # Another path or query string is another request too.
    assert (
        client.post("/v1/accounts?x=1", json=ACCOUNT, headers=keyed(acme, "k")).status_code == 409
    )
    assert count(potluck, LedgerAccount) == 1


def test_keys_are_scoped_per_caller(client, potluck, acme):
    globex = platform(potluck, "Globex")
    a = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "shared"))
    b = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(globex, "shared"))
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert count(potluck, LedgerAccount) == 2
    # Each platform sees only its own account.
    assert client.get(f"/v1/accounts/{a.json()['id']}", headers=globex).status_code == 404


def test_the_principal_is_resolved_once(client, potluck, acme, monkeypatch):
    calls = []
    real = identity.principal_from_token

    def counting(app, token):
        calls.append(token)
        return real(app, token)

    monkeypatch.setattr(identity, "principal_from_token", counting)
    assert client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k")).status_code == 201
    assert len(calls) == 1


def test_server_errors_are_not_stored(app, client, potluck):
    calls = []

    def flaky() -> dict[str, int]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return {"attempt": len(calls)}

    app.add_api_route("/v1/test/flaky", flaky, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as c:
        first = c.post("/v1/test/flaky", json={}, headers={"Idempotency-Key": "k"})
        assert first.status_code == 500
        assert first.headers["content-type"] == PROBLEM
        assert stored_rows(potluck) == []
        second = c.post("/v1/test/flaky", json={}, headers={"Idempotency-Key": "k"})
        third = c.post("/v1/test/flaky", json={}, headers={"Idempotency-Key": "k"})
    assert second.status_code == 200
    assert second.json() == {"attempt": 2}
    assert third.json() == {"attempt": 2}
    assert third.headers["Idempotent-Replayed"] == "true"
    assert len(calls) == 2


def test_refused_before_running_is_not_stored_but_business_errors_are(client, potluck, acme):
    bad = client.post("/v1/accounts", json={"currency": "EUR"}, headers=keyed(acme, "a"))
    assert bad.status_code == 422
    # The request never ran: a corrected body may use the same key.
    good = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "a"))
    assert good.status_code == 201

    wallet = client.post(
        "/v1/accounts",
        json={**ACCOUNT, "flags": {"debits_must_not_exceed_credits": True}},
        headers=acme,
    ).json()["id"]
    other = good.json()["id"]
    body = {"debit_account": wallet, "credit_account": other, "amount": 5, "currency": "EUR"}
    poor = client.post("/v1/transfers", json=body, headers=keyed(acme, "b"))
    assert poor.status_code == 402
    # Funded afterwards, the same key still answers what happened the first time.
    top_up = {"debit_account": other, "credit_account": wallet, "amount": 5, "currency": "EUR"}
    assert client.post("/v1/transfers", json=top_up, headers=acme).status_code == 201
    again = client.post("/v1/transfers", json=body, headers=keyed(acme, "b"))
    assert again.status_code == 402
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == poor.content


def test_unauthenticated_requests_are_not_stored(client, potluck):
    r = client.post("/v1/accounts", json=ACCOUNT, headers={"Idempotency-Key": "k"})
    assert r.status_code == 401
    assert stored_rows(potluck) == []


def test_secrets_are_never_stored_and_not_replayed(app, client, potluck):
    def secret(response: Response) -> dict[str, str]:
        response.headers["Cache-Control"] = "no-store"
        return {"secret_key": "sk_" + uuid.uuid4().hex}

    app.add_api_route("/v1/test/secret", secret, methods=["POST"], status_code=201)
    with TestClient(app) as c:
        first = c.post("/v1/test/secret", headers={"Idempotency-Key": "s"})
        again = c.post("/v1/test/secret", headers={"Idempotency-Key": "s"})
    assert first.status_code == 201
    (row,) = stored_rows(potluck)
    assert row.status == "completed"
    assert row.response_body is None
    assert again.status_code == 409
    assert again.json()["code"] == "idempotent_replay_unavailable"


def test_keys_expire_after_their_ttl(client, potluck, clock, acme):
    first = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k"))
    clock.advance(potluck.settings.idempotency_ttl_seconds - 1)
    assert client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k")).content == (
        first.content
    )
    clock.advance(1)
    fresh = client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "k"))
    assert fresh.status_code == 201
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    assert count(potluck, LedgerAccount) == 2

    client.post("/v1/accounts", json=ACCOUNT, headers=keyed(acme, "other"))
    clock.advance(potluck.settings.idempotency_ttl_seconds)
    assert idempotency.purge_expired_keys(potluck) == 2
    assert stored_rows(potluck) == []


@pytest.mark.parametrize(
    ("key", "status"),
    [(b"x" * 255, 201), (b"x" * 256, 422), ("naïve".encode("latin-1"), 422), (b"", 422)],
)
def test_key_format(client, acme, key, status):
    r = client.post("/v1/accounts", json=ACCOUNT, headers={**acme, "Idempotency-Key": key})
    assert r.status_code == status, r.text
    if status == 422:
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "invalid_idempotency_key"


def _in_progress(potluck, *, scope, key, body, lease_seconds):
    now = potluck.clock.now()
    h = idempotency.request_hash(scope, key, "POST", "/v1/accounts", b"", body)
    with potluck.db.transaction() as s:
        s.execute(
            insert(IdempotencyKey).values(
                scope=scope,
                key=key,
                request_hash=h,
                status="in_progress",
                locked_until=now + timedelta(seconds=lease_seconds),
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )


def test_a_running_request_makes_others_wait_then_409_in_use(potluck, clock):
    potluck.settings.idempotency_wait_seconds = 0.2
    headers = platform(potluck)
    principal = identity.principal_from_token(potluck, headers["Authorization"][7:])
    body = b'{"currency":"EUR","code":"wallet"}'
    _in_progress(potluck, scope=principal.scope, key="k", body=body, lease_seconds=60)
    with TestClient(create_app(potluck)) as c:
        send = {**headers, "Idempotency-Key": "k", "Content-Type": "application/json"}
        busy = c.post("/v1/accounts", content=body, headers=send)
        assert busy.status_code == 409
        assert busy.json()["code"] == "idempotency_key_in_use"
        assert busy.headers["Retry-After"] == "1"
        assert count(potluck, LedgerAccount) == 0
        # The first request's process died: after its lease a retry takes the key over.
        clock.advance(60)
        taken = c.post("/v1/accounts", content=body, headers=send)
        assert taken.status_code == 201
        assert c.post("/v1/accounts", content=body, headers=send).content == taken.content
    assert count(potluck, LedgerAccount) == 1


# --- 50 real threads against a real server (PostgreSQL) -----------------------------------


@pytest.mark.postgres_only
@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/transfers"])
def test_fifty_concurrent_requests_with_one_key_have_one_effect(potluck, path):
    headers = platform(potluck)
    app = create_app(potluck)
    with TestClient(app) as c:
        source = c.post("/v1/accounts", json=ACCOUNT, headers=headers).json()["id"]
        target = c.post("/v1/accounts", json=ACCOUNT, headers=headers).json()["id"]
    body = (
        ACCOUNT
        if path == "/v1/accounts"
        else {"debit_account": source, "credit_account": target, "amount": 1, "currency": "EUR"}
    )
    accounts_before = count(potluck, LedgerAccount)
    send = keyed(headers, str(uuid.uuid4()))
    start = threading.Barrier(50)

    def call(_):
        with httpx.Client(base_url=server.url, timeout=60) as http:
            start.wait()
            return http.post(path, json=body, headers=send)

    with ServerThread(app) as server, ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(call, range(50)))

    statuses = sorted(r.status_code for r in replies)
    ok = [r for r in replies if r.status_code == 201]
    busy = [r for r in replies if r.status_code == 409]
    assert len(ok) + len(busy) == 50, statuses
    assert all(r.json()["code"] == "idempotency_key_in_use" for r in busy)
    assert len({r.content for r in ok}) == 1
    # With the default wait (10 s) nobody gives up.
    assert len(ok) == 50, statuses
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in ok) == 49
    if path == "/v1/accounts":
        assert count(potluck, LedgerAccount) == accounts_before + 1
    else:
        assert count(potluck, LedgerTransfer) == 1


def test_a_key_taken_over_near_the_end_of_its_lifetime_runs_once(potluck, clock):
    """A takeover starts a new run, so the key must outlive it (and keep its answer)."""
    ttl = potluck.settings.idempotency_ttl_seconds
    h = idempotency.request_hash("platform:p", "k", "POST", "/v1/accounts", b"", b"{}")

    def claim():
        return idempotency.claim(potluck, "platform:p", "k", h, lease_seconds=60)

    assert claim().action == "run"
    # Its process died; a retry takes the key over 10 s before the key's 24 h are up.
    clock.advance(ttl - 10)
    retry = claim()
    assert retry.action == "run"
    assert retry.lease is not None
    # 20 s later the retry is still running (40 s of its lease left) and the client,
    # impatient, sends the request once more: it must wait, not run a second time.
    clock.advance(20)
    assert claim().action == "wait"
    assert idempotency.purge_expired_keys(potluck) == 0
    # The retry finishes; its answer is replayed, not forgotten the moment it is stored.
    stored = idempotency.Stored(201, b'{"id":"acc_1"}', "application/json")
    assert idempotency.complete(potluck, "platform:p", "k", retry.lease, stored)
    replay = claim()
    assert replay.action == "replay"
    assert replay.stored == stored


# --- lease renewal ------------------------------------------------------------------------


def test_a_renewed_lease_outlives_the_original_and_stays_the_fence(potluck, clock):
    h = idempotency.request_hash("platform:p", "k", "POST", "/v1/accounts", b"", b"{}")

    def claim():
        return idempotency.claim(potluck, "platform:p", "k", h, lease_seconds=60)

    first = claim()
    assert first.action == "run"
    clock.advance(30)
    renewed = idempotency.renew(potluck, "platform:p", "k", first.lease, lease_seconds=60)
    assert renewed == clock.now() + timedelta(seconds=60)
    clock.advance(40)  # past the original lease, inside the renewed one
    assert claim().action == "wait"
    assert idempotency.purge_expired_keys(potluck) == 0
    stored = idempotency.Stored(201, b'{"id":"acc_1"}', "application/json")
    # the old lease is no longer the fence; the renewed one is
    assert not idempotency.complete(potluck, "platform:p", "k", first.lease, stored)
    assert idempotency.complete(potluck, "platform:p", "k", renewed, stored)
    assert claim().action == "replay"


def test_a_request_that_lost_its_key_cannot_renew_it(potluck, clock):
    h = idempotency.request_hash("platform:p", "k", "POST", "/v1/accounts", b"", b"{}")
    first = idempotency.claim(potluck, "platform:p", "k", h, lease_seconds=60)
    clock.advance(61)  # its process stalled for a whole lease: a retry takes over
    retry = idempotency.claim(potluck, "platform:p", "k", h, lease_seconds=60)
    assert retry.action == "run"
    assert idempotency.renew(potluck, "platform:p", "k", first.lease, lease_seconds=60) is None
    assert idempotency.renew(potluck, "platform:p", "k", retry.lease, lease_seconds=60)


def test_the_middleware_renews_the_lease_while_a_long_request_runs(potluck, clock, monkeypatch):
    """Past its original lease, a running request still holds its key, and completes it."""
    body = b'{"slow": true}'
    h = idempotency.request_hash("anon:testclient", "slow", "POST", "/slow", b"", body)
    original_lease = clock.now() + timedelta(seconds=60)
    renewed_past_original = threading.Event()
    real_renew = idempotency.renew

    def watched_renew(*args, **kwargs):
        lease = real_renew(*args, **kwargs)
        if lease is not None and lease > original_lease:
            renewed_past_original.set()
        return lease

    monkeypatch.setattr(idempotency, "renew", watched_renew)
    runs = []
    seen_by_a_second_request = []

    async def slow_route(scope, receive, send):
        runs.append(1)
        await receive()
        clock.advance(30)
        # the renewer runs every 10 ms of real time; wait for one at the new time
        assert await anyio.to_thread.run_sync(renewed_past_original.wait, 10)
        clock.advance(40)  # 70 s since the claim: the original lease has run out
        decision = await anyio.to_thread.run_sync(
            lambda: idempotency.claim(potluck, "anon:testclient", "slow", h, lease_seconds=60)
        )
        seen_by_a_second_request.append(decision.action)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id":"slow_1"}'})

    app = idempotency.IdempotencyMiddleware(
        slow_route, potluck=potluck, lease_seconds=60, renew_every_seconds=0.01
    )
    headers = {"Idempotency-Key": "slow", "Content-Type": "application/json"}
    c = TestClient(app)  # no lifespan: the bare route only speaks HTTP
    first = c.post("/slow", content=body, headers=headers)
    assert first.status_code == 201
    assert seen_by_a_second_request == ["wait"]
    # the answer was stored under the renewed lease (the fence moved with it)
    again = c.post("/slow", content=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert runs == [1]
