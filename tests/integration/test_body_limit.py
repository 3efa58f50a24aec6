"""Request bodies over ``POTLUCK_MAX_BODY_BYTES`` are 413 before anything is parsed or stored.

On SQLite and PostgreSQL: with and without ``Content-Length``, a body streamed in chunks (in
process and through a real uvicorn), and with an ``Idempotency-Key`` (no key row is left).
"""

from __future__ import annotations

import json
import socket

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.api.models import IdempotencyKey
from potluck.bootstrap import bootstrap
from potluck.config import Settings
from potluck.identity import service as identity
from potluck.ledger.models import Account
from tests.integration.server_thread import ServerThread

PROBLEM = "application/problem+json"
LIMIT = 4096


@pytest.fixture
def small(settings, db, clock):
    """An app whose body limit is LIMIT bytes."""
    potluck = bootstrap(settings.model_copy(update={"max_body_bytes": LIMIT}), db=db, clock=clock)
    return potluck, create_app(potluck)


@pytest.fixture
def client(small):
    with TestClient(small[1]) as c:
        yield c


@pytest.fixture
def acme(small):
    _, secret = identity.create_platform(small[0], name="Acme")
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


def account_body(size):
    """A valid account request of exactly ``size`` bytes (JSON padded with spaces)."""
    body = json.dumps({"currency": "EUR", "code": "wallet"}).encode()
    return body + b" " * (size - len(body))


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def assert_too_large(r):
    assert r.status_code == 413, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == "payload_too_large"
    assert body["status"] == 413
    assert str(LIMIT) in body["detail"]
    assert r.headers["connection"] == "close"
    assert r.headers["x-request-id"]


def chunks(body, size=512):
    def gen():
        for i in range(0, len(body), size):
            yield body[i : i + size]

    return gen()


def test_a_body_at_the_limit_is_accepted(client, acme, small):
    r = client.post("/v1/accounts", content=account_body(LIMIT), headers=acme)
    assert r.status_code == 201, r.text
    assert count(small[0], Account) == 1


def test_a_body_over_the_limit_with_content_length_is_413(client, acme, small):
    r = client.post("/v1/accounts", content=account_body(LIMIT + 1), headers=acme)
    assert r.request.headers["content-length"] == str(LIMIT + 1)
    assert_too_large(r)
    assert count(small[0], Account) == 0


def test_a_streamed_body_over_the_limit_is_413(client, acme, small):
    r = client.post("/v1/accounts", content=chunks(account_body(LIMIT + 1)), headers=acme)
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(r)
    assert count(small[0], Account) == 0
    # the same streamed within the limit goes through
    r = client.post("/v1/accounts", content=chunks(account_body(LIMIT)), headers=acme)
    assert r.status_code == 201, r.text


def test_every_route_is_limited(client, acme):
    big = b"{" + b" " * LIMIT + b"}"
    for path in ("/v1/auth/register", "/v1/auth/token", "/v1/transfers", "/v1/transfers/batch"):
        assert_too_large(client.post(path, content=big, headers=acme))
    assert_too_large(client.post("/v1/no-such-route", content=big))
    # no body to speak of, but a declared one over the limit is refused all the same
    assert_too_large(client.request("GET", "/v1/accounts", content=big, headers=acme))
    assert client.get("/v1/accounts", headers=acme).status_code == 200


@pytest.mark.parametrize("streamed", [False, True])
def test_idempotency_key_is_not_claimed_by_a_refused_body(client, acme, small, streamed):
    potluck = small[0]
    headers = acme | {"Idempotency-Key": "big-1"}
    big = account_body(LIMIT + 1)
    r = client.post("/v1/accounts", content=chunks(big) if streamed else big, headers=headers)
    assert_too_large(r)
    assert count(potluck, IdempotencyKey) == 0
    # the key is still free: the corrected request runs (and is then kept, as usual)
    r = client.post("/v1/accounts", content=account_body(100), headers=headers)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert count(potluck, Account) == 1
    with potluck.db.read() as s:
        assert s.scalar(select(IdempotencyKey.status)) == "completed"


def test_reading_stops_at_the_chunk_that_crosses_the_limit(small, acme):
    """In process, chunk by chunk: the rest of the body is never pulled from the client."""
    app = small[1]
    body = account_body(10 * LIMIT)
    parts = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    pulled = 0
    sent = []

    async def receive():
        nonlocal pulled
        pulled += 1
        more = pulled < len(parts)
        return {"type": "http.request", "body": parts[pulled - 1], "more_body": more}

    async def send(message):
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in acme.items()]
    headers.append((b"transfer-encoding", b"chunked"))
    headers.append((b"idempotency-key", b"in-process"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/accounts",
        "raw_path": b"/v1/accounts",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    assert pulled == LIMIT // 1000 + 1  # 5 chunks of 1000 bytes cross 4096
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    body_sent = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body_sent)["code"] == "payload_too_large"
    assert count(small[0], IdempotencyKey) == 0
    assert count(small[0], Account) == 0


def raw_post(port, head, chunks_):
    """Send a request by hand, chunk by chunk, and return the reply's status line and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)
        try:
            for chunk in chunks_:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        reply = b""
        while True:
            try:
                data = conn.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            reply += data
    head_part, _, body = reply.partition(b"\r\n\r\n")
    return head_part.decode("latin-1"), body


def test_real_server_refuses_a_chunked_body_and_a_declared_one(small, acme):
    potluck, app = small
    auth = acme["Authorization"].encode()
    body = account_body(3 * LIMIT)
    pieces = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    chunked = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
    with ServerThread(app) as server:
        head = (
            b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Idempotency-Key: raw-1\r\n\r\n"
        )
        status, reply = raw_post(server.port, head, chunked)
        assert status.startswith("HTTP/1.1 413"), status
        assert "connection: close" in status.lower()
        assert b"payload_too_large" in reply

        head = (
            b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (100 * LIMIT)
        )
        status, reply = raw_post(server.port, head, [])  # refused before any body is sent
        assert status.startswith("HTTP/1.1 413"), status
        assert b"payload_too_large" in reply
    assert count(potluck, IdempotencyKey) == 0
    assert count(potluck, Account) == 0


def test_the_limit_comes_from_the_environment(monkeypatch):
    assert Settings().max_body_bytes == 1024 * 1024
    monkeypatch.setenv("POTLUCK_MAX_BODY_BYTES", "2048")
    assert Settings().max_body_bytes == 2048


def test_default_limit_is_one_mebibyte(potluck):
    _, secret = identity.create_platform(potluck, name="Acme")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    with TestClient(create_app(potluck)) as c:
        r = c.post("/v1/accounts", content=account_body(1024 * 1024), headers=headers)
        assert r.status_code == 201, r.text
        r = c.post("/v1/accounts", content=account_body(1024 * 1024 + 1), headers=headers)
        assert r.status_code == 413
        assert r.json()["code"] == "payload_too_large"


def test_openapi_documents_413_on_every_post(client):
    paths = client.get("/openapi.json").json()["paths"]
    posts = [op for ops in paths.values() for method, op in ops.items() if method == "post"]
    assert len(posts) > 5
    for op in posts:
        doc = op["responses"]["413"]
        assert doc["content"][PROBLEM]["schema"]["$ref"] == "#/components/schemas/Problem"
