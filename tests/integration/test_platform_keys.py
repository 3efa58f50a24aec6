"""A person's platforms and their secret keys: list, rotate, revoke (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.api.models import IdempotencyKey
from potluck.identity import passwords, service
from potluck.identity.models import Platform

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"
ACCOUNT = {"currency": "EUR", "code": "wallet"}


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def signed_in(client, email="ada@example.com"):
    r = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "A"})
    assert r.status_code == 201, r.text
    r = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


@pytest.fixture
def ada(client):
    return signed_in(client)


@pytest.fixture
def bob(client):
    return signed_in(client, email="bob@example.com")


def create_platform(client, headers, name="Speedy Eats"):
    r = client.post("/v1/platforms", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def assert_problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code


def works(client, secret):
    """Whether the secret key authenticates (a platform-only read)."""
    r = client.get("/v1/accounts", headers=bearer(secret))
    if r.status_code == 401:
        assert r.json()["code"] == "unauthorized"
        return False
    assert r.status_code == 200, r.text
    return True


# --- list ---


def test_list_shows_only_my_platforms_without_keys(client, ada, bob):
    mine = [create_platform(client, ada, name=f"Ada {i}") for i in range(3)]
    create_platform(client, bob, name="Bob's")
    r = client.get("/v1/platforms", headers=ada)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["has_more"] is False
    assert [p["id"] for p in page["data"]] == [p["id"] for p in mine]
    for shown, created in zip(page["data"], mine, strict=True):
        assert set(shown) == {"id", "name", "key_prefix", "status", "revoked_at", "created_at"}
        assert shown == {k: v for k, v in created.items() if k != "secret_key"}
        assert shown["status"] == "active"
        assert shown["revoked_at"] is None
        assert created["secret_key"] not in r.text
    assert client.get("/v1/platforms", headers=bob).json()["data"][0]["name"] == "Bob's"


def test_list_paginates(client, ada):
    ids = [create_platform(client, ada, name=f"P{i}")["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"starting_after": cursor} if cursor else {})
        page = client.get("/v1/platforms", params=params, headers=ada).json()
        pages += 1
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == ids
    assert pages == 3


def test_list_is_for_people(client, ada):
    secret = create_platform(client, ada)["secret_key"]
    assert_problem(client.get("/v1/platforms", headers=bearer(secret)), 403, "user_required")
    assert_problem(client.get("/v1/platforms"), 401, "unauthorized")


# --- rotate ---


def test_rotate_issues_a_new_key_and_the_old_one_stops_at_once(client, ada, potluck):
    created = create_platform(client, ada)
    old = created["secret_key"]
    assert works(client, old)
    r = client.post(f"/v1/platforms/{created['id']}/keys/rotate", headers=ada)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    rotated = r.json()
    new = rotated["secret_key"]
    assert new.startswith("sk_")
    assert new != old
    assert new.startswith(rotated["key_prefix"])
    assert rotated["id"] == created["id"]
    assert rotated["name"] == created["name"]
    assert rotated["created_at"] == created["created_at"]
    assert rotated["status"] == "active"
    assert not works(client, old)
    assert works(client, new)

    shown = client.get(f"/v1/platforms/{created['id']}", headers=ada).json()
    assert shown["key_prefix"] == rotated["key_prefix"]
    assert "secret_key" not in shown
    with potluck.db.read() as s:
        row = s.get(Platform, created["id"])
        assert row.key_hash == service.hash_secret_key(new)


def test_rotate_keeps_the_platforms_books(client, ada):
    created = create_platform(client, ada)
    r = client.post("/v1/accounts", json=ACCOUNT, headers=bearer(created["secret_key"]))
    account_id = r.json()["id"]
    new = client.post(f"/v1/platforms/{created['id']}/keys/rotate", headers=ada).json()
    r = client.get(f"/v1/accounts/{account_id}", headers=bearer(new["secret_key"]))
    assert r.status_code == 200, r.text


def test_only_the_owner_may_rotate(client, ada, bob):
    created = create_platform(client, ada)
    r = client.post(f"/v1/platforms/{created['id']}/keys/rotate", headers=bob)
    assert_problem(r, 404, "not_found")
    assert_problem(client.post("/v1/platforms/plt_nope/keys/rotate", headers=bob), 404, "not_found")
    assert works(client, created["secret_key"])
    # a platform may not rotate its own key: that is its owner's decision
    r = client.post(
        f"/v1/platforms/{created['id']}/keys/rotate", headers=bearer(created["secret_key"])
    )
    assert_problem(r, 403, "user_required")
    assert works(client, created["secret_key"])


def test_rotate_with_an_idempotency_key_never_rotates_twice(client, ada, potluck):
    created = create_platform(client, ada)
    headers = ada | {"Idempotency-Key": "rotate-1"}
    first = client.post(f"/v1/platforms/{created['id']}/keys/rotate", headers=headers)
    assert first.status_code == 200, first.text
    new = first.json()["secret_key"]
    again = client.post(f"/v1/platforms/{created['id']}/keys/rotate", headers=headers)
    # The reply held a secret, so it was not kept: no replay, and no second rotation either.
    assert_problem(again, 409, "idempotent_replay_unavailable")
    assert works(client, new)
    with potluck.db.read() as s:
        bodies = s.scalars(select(IdempotencyKey.response_body)).all()
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
    assert bodies == [None]


def test_service_rotate_and_revoke_check_the_owner(client, ada, bob, potluck):
    created = create_platform(client, ada)
    bob_id = client.get("/v1/me", headers=bob).json()["id"]
    with pytest.raises(service.IdentityError) as err:
        service.rotate_platform_key(potluck, platform_id=created["id"], owner_user_id=bob_id)
    assert err.value.status == 404
    with pytest.raises(service.IdentityError) as err:
        service.revoke_platform_key(potluck, platform_id=created["id"], owner_user_id=bob_id)
    assert err.value.status == 404
    assert works(client, created["secret_key"])
    # the operator (CLI: no owner) may rotate any platform
    view, secret = service.rotate_platform_key(
        potluck, platform_id=created["id"], owner_user_id=None
    )
    assert view.id == created["id"]
    assert works(client, secret)


# --- revoke ---


def test_revoke_stops_the_key_and_is_idempotent(client, ada, clock):
    created = create_platform(client, ada)
    secret = created["secret_key"]
    r = client.post(f"/v1/platforms/{created['id']}/revoke", headers=ada)
    assert r.status_code == 200, r.text
    revoked = r.json()
    assert "secret_key" not in revoked
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None
    assert not works(client, secret)
    assert_problem(
        client.post("/v1/accounts", json=ACCOUNT, headers=bearer(secret)), 401, "unauthorized"
    )

    clock.advance(60)
    again = client.post(f"/v1/platforms/{created['id']}/revoke", headers=ada)
    assert again.status_code == 200
    assert again.json() == revoked  # the first revocation's time stays
    listed = client.get("/v1/platforms", headers=ada).json()["data"]
    assert listed == [revoked]
    assert client.get(f"/v1/platforms/{created['id']}", headers=ada).json() == revoked


def test_only_the_owner_may_revoke(client, ada, bob):
    created = create_platform(client, ada)
    assert_problem(
        client.post(f"/v1/platforms/{created['id']}/revoke", headers=bob), 404, "not_found"
    )
    assert_problem(client.post("/v1/platforms/plt_nope/revoke", headers=bob), 404, "not_found")
    r = client.post(f"/v1/platforms/{created['id']}/revoke", headers=bearer(created["secret_key"]))
    assert_problem(r, 403, "user_required")
    assert works(client, created["secret_key"])


def test_rotate_after_revoke_gives_a_working_key(client, ada):
    created = create_platform(client, ada)
    client.post(f"/v1/platforms/{created['id']}/revoke", headers=ada)
    r = client.post(f"/v1/platforms/{created['id']}/keys/rotate", headers=ada)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["revoked_at"]) == ("active", None)
    assert works(client, body["secret_key"])
    assert not works(client, created["secret_key"])


def test_openapi_documents_the_key_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/platforms"]) == {"get", "post"}
    rotate = paths["/v1/platforms/{platform_id}/keys/rotate"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(rotate["responses"])
    assert "PlatformCreated" in str(rotate["responses"]["200"])
    revoke = paths["/v1/platforms/{platform_id}/revoke"]["post"]
    assert {"200", "401", "403", "404"} <= set(revoke["responses"])


def test_a_known_key_is_cached_and_revocation_clears_the_cache(potluck):
    from potluck.identity.service import (
        create_platform,
        principal_from_token,
        revoke_platform_key,
    )

    view, secret = create_platform(potluck, name="Cached")
    first = principal_from_token(potluck, secret)
    assert first is not None
    assert potluck.principals.get(secret) == first
    revoke_platform_key(potluck, platform_id=view.id, owner_user_id=None)
    assert potluck.principals.get(secret) is None
    assert principal_from_token(potluck, secret) is None
    # a wrong key is never remembered
    assert principal_from_token(potluck, "sk_" + "x" * 43) is None
    assert potluck.principals.get("sk_" + "x" * 43) is None
