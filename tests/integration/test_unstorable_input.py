"""Input the database cannot store (a NUL character) is a 4xx problem, never a 500.

PostgreSQL refuses NUL in text and in JSONB (SQLite stores it), and psycopg raises a
``DataError`` before anything is written. Every route that puts a client's string into a
query (sign-in's email, an id in the path, a cursor, metadata) must answer it as bad input.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.identity import passwords
from potluck.identity import service as identity

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def person(client):
    body = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    assert client.post("/v1/auth/register", json=body).status_code == 201
    r = client.post("/v1/auth/token", json={"email": body["email"], "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def acme(potluck):
    _, secret = identity.create_platform(potluck, name="Acme")
    return {"Authorization": f"Bearer {secret}"}


def assert_refused_as_bad_input(r, *, backend):
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM)
    if backend == "postgresql":
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "unstorable_value"


def test_sign_in_with_a_nul_in_the_email(client, backend):
    r = client.post("/v1/auth/token", json={"email": "ada\u0000@example.com", "password": "x"})
    assert_refused_as_bad_input(r, backend=backend)


@pytest.mark.parametrize("path", ["/v1/platforms/plt_%00", "/v1/platforms?starting_after=%00"])
def test_a_nul_in_a_persons_path_or_cursor(client, person, backend, path):
    assert_refused_as_bad_input(client.get(path, headers=person), backend=backend)


@pytest.mark.parametrize("path", ["/v1/accounts/acc_%00", "/v1/transfers/t%00"])
def test_a_nul_in_a_platforms_path(client, acme, backend, path):
    assert_refused_as_bad_input(client.get(path, headers=acme), backend=backend)


def test_a_nul_in_metadata_changes_nothing(client, acme, backend):
    body = {"currency": "EUR", "code": "wallet", "metadata": {"note": "a\u0000b"}}
    r = client.post("/v1/accounts", json=body, headers={**acme, "Idempotency-Key": "nul-1"})
    assert_refused_as_bad_input(r, backend=backend)
    if backend == "postgresql":
        # nothing ran: the corrected request may use the same key
        body["metadata"] = {"note": "ab"}
        fixed = client.post("/v1/accounts", json=body, headers={**acme, "Idempotency-Key": "nul-1"})
        assert fixed.status_code == 201, fixed.text
