"""Identity over HTTP, on SQLite and PostgreSQL: people, sign-in, tokens, platforms."""

from __future__ import annotations

import hashlib
import threading

import jwt
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from potluck.api.app import create_app
from potluck.bootstrap import bootstrap
from potluck.config import Settings
from potluck.identity import passwords, service
from potluck.identity.models import AuthAttempt, Platform, SystemSecret, User
from potluck.identity.tokens import encode_access_token

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at production cost (64 MiB, 3 passes) makes this file slow on a 2-core machine.

    Behaviour does not depend on the cost; one test puts the real parameters back.
    """
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def register(client, email="ada@example.com", password=PASSWORD, name="Ada Lovelace"):
    return client.post(
        "/v1/auth/register", json={"email": email, "password": password, "name": name}
    )


def login(client, email="ada@example.com", password=PASSWORD):
    return client.post("/v1/auth/token", json={"email": email, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def signed_in(client, email="ada@example.com"):
    assert register(client, email=email).status_code == 201
    r = login(client, email=email)
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


def assert_problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


# --- people ---


def test_register_login_me(client, potluck):
    r = register(client, email="  Ada@Example.COM ")
    assert r.status_code == 201, r.text
    user = r.json()
    assert set(user) == {"id", "email", "name", "role", "created_at"}
    assert user["email"] == "ada@example.com"
    assert user["name"] == "Ada Lovelace"
    assert user["id"].startswith("usr_")

    r = login(client, email="ADA@example.com ")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    token = r.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == potluck.settings.jwt_ttl_seconds

    r = client.get("/v1/me", headers=bearer(token["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json() == user
    assert user["role"] == "user"


def test_password_is_stored_as_argon2id_with_production_parameters(client, potluck, monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher())
    register(client)
    with potluck.db.read() as s:
        stored = s.scalar(select(User.password_hash))
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored
    assert login(client).status_code == 200
    assert_problem(login(client, password="wrong password!"), 401, "invalid_credentials")


def test_duplicate_email_is_409(client):
    assert register(client).status_code == 201
    body = assert_problem(register(client, email=" ADA@example.com"), 409, "email_taken")
    assert body["errors"][0]["field"] == "email"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "ada@localhost"),
        ("email", "ada@@example.com"),
        ("email", "a da@example.com"),
        ("email", "ada@example.com\nbcc@evil.com"),
        ("password", "short"),
        ("password", "x" * 9),
        ("password", "x" * 257),
        ("name", "   "),
    ],
)
def test_bad_input_is_422_naming_the_field(client, potluck, field, value):
    body = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    body[field] = value
    r = client.post("/v1/auth/register", json=body)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]
    with potluck.db.read() as s:
        assert s.scalar(select(User.id)) is None


def test_password_of_exactly_10_and_256_characters_is_accepted(client):
    assert register(client, email="a@example.com", password="x" * 10).status_code == 201
    assert register(client, email="b@example.com", password="x" * 256).status_code == 201


def test_concurrent_registrations_of_one_email_create_one_user(potluck):
    results = []

    def attempt():
        try:
            service.register_user(potluck, email="ada@example.com", password=PASSWORD, name="A")
            results.append("created")
        except service.IdentityError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] + ["email_taken"] * 3


def test_wrong_password_and_unknown_email_look_the_same(client):
    register(client)
    wrong = assert_problem(login(client, password="wrong password!"), 401, "invalid_credentials")
    unknown = assert_problem(login(client, email="bob@example.com"), 401, "invalid_credentials")
    assert wrong == unknown


def test_login_rehashes_a_password_hashed_with_old_parameters(client, potluck):
    register(client)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with potluck.db.transaction() as s:
        s.execute(update(User).values(password_hash=weak))
    assert login(client).status_code == 200
    with potluck.db.read() as s:
        stored = s.scalar(select(User.password_hash))
    assert stored != weak
    assert not passwords.needs_rehash(stored)
    assert login(client).status_code == 200


def test_promote_user_changes_the_role_at_once(client, potluck):
    headers = signed_in(client)
    assert service.promote_user(potluck, email="ADA@example.com").role == "admin"
    assert client.get("/v1/me", headers=headers).json()["role"] == "admin"
    with pytest.raises(service.IdentityError) as err:
        service.promote_user(potluck, email="nobody@example.com")
    assert err.value.status == 404


# --- tokens ---


def _user_id(client, headers):
    return client.get("/v1/me", headers=headers).json()["id"]


def _rejected(client, token):
    r = client.get("/v1/me", headers=bearer(token))
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_no_or_malformed_authorization_is_401(client):
    assert_problem(client.get("/v1/me"), 401, "unauthorized")
    assert_problem(
        client.get("/v1/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized"
    )
    _rejected(client, "not.a.jwt")


def test_alg_none_token_is_rejected(client, potluck):
    user_id = _user_id(client, signed_in(client))
    now = int(potluck.clock.now().timestamp())
    claims = {"sub": user_id, "typ": "access", "iat": now, "exp": now + 60}
    _rejected(client, jwt.encode(claims, None, algorithm="none"))


def test_tampered_token_is_rejected(client, potluck):
    headers = signed_in(client)
    token = headers["Authorization"].split()[1]
    header, payload, signature = token.split(".")
    _rejected(
        client, f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    )
    other = signed_in(client, email="bob@example.com")["Authorization"].split()[1]
    _rejected(client, f"{header}.{other.split('.')[1]}.{signature}")


def test_token_signed_with_another_key_is_rejected(client, potluck):
    user_id = _user_id(client, signed_in(client))
    forged = encode_access_token(
        key="an-attacker-key-" + "x" * 48, user_id=user_id, now=potluck.clock.now(), ttl_seconds=60
    )
    _rejected(client, forged)


def test_token_expires_with_the_app_clock(client, potluck, clock):
    headers = signed_in(client)
    clock.advance(potluck.settings.jwt_ttl_seconds - 1)
    assert client.get("/v1/me", headers=headers).status_code == 200
    clock.advance(1)
    _rejected(client, headers["Authorization"].split()[1])


def test_token_of_a_deleted_user_is_rejected(client, potluck):
    headers = signed_in(client)
    with potluck.db.transaction() as s:
        s.query(AuthAttempt).delete()
        s.query(User).delete()
    _rejected(client, headers["Authorization"].split()[1])


def test_generated_signing_key_is_stored_once_and_shared(db, clock, database_url):
    settings = Settings(database_url=database_url, secret_key=None, log_json=False)
    apps = [bootstrap(settings, db=db, clock=clock) for _ in range(6)]
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda a=a: keys.append(service.signing_key(a))) for a in apps
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert len(keys[0]) >= 64
    with db.read() as s:
        rows = [(r.name, r.value) for r in s.scalars(select(SystemSecret))]
    assert rows == [("jwt_signing_key", keys[0])]

    # a token from one app instance is good on another (same installation, same key)
    with TestClient(create_app(apps[0])) as one, TestClient(create_app(apps[1])) as two:
        headers = signed_in(one)
        assert two.get("/v1/me", headers=headers).status_code == 200


# --- rate limiting ---


def _limits(potluck, **values):
    potluck.settings = potluck.settings.model_copy(update=values)


def test_failed_attempts_per_email_are_limited_then_recover(client, potluck, clock):
    _limits(potluck, login_max_per_email=3, login_email_window_seconds=600)
    register(client)
    for _ in range(3):
        assert_problem(login(client, password="wrong password!"), 401, "invalid_credentials")
        clock.advance(10)
    # locked now, even with the right password (otherwise the lock would be an oracle)
    r = login(client)
    assert_problem(r, 429, "rate_limited")
    assert r.headers["retry-after"] == str(600 - 30)
    # another email from the same client is not affected
    assert_problem(login(client, email="bob@example.com"), 401, "invalid_credentials")
    # refused attempts are not counted: hammering does not extend the lock
    for _ in range(5):
        assert login(client).status_code == 429
    clock.advance(600 - 30 - 1)
    assert login(client).headers["retry-after"] == "1"
    clock.advance(1)
    assert login(client).status_code == 200


def test_a_successful_login_clears_the_failure_count(client, potluck, clock):
    _limits(potluck, login_max_per_email=3)
    register(client)
    for _ in range(2):
        assert login(client, password="wrong password!").status_code == 401
    assert login(client).status_code == 200
    for _ in range(3):
        assert login(client, password="wrong password!").status_code == 401
    assert login(client).status_code == 429


def test_unknown_emails_are_limited_too(client, potluck):
    _limits(potluck, login_max_per_email=2)
    for _ in range(2):
        assert login(client, email="ghost@example.com").status_code == 401
    assert_problem(login(client, email="ghost@example.com"), 429, "rate_limited")


def test_attempts_per_client_are_limited_then_recover(client, potluck, clock):
    _limits(potluck, login_max_per_client=4, login_client_window_seconds=60)
    register(client)
    assert login(client).status_code == 200  # successes count per client too
    for i in range(3):
        assert login(client, email=f"u{i}@example.com").status_code == 401
    clock.advance(5)
    r = login(client, email="someone.else@example.com")
    assert_problem(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "55"
    # a different client address is not affected
    assert service.issue_token(
        potluck, email="ada@example.com", password=PASSWORD, client="10.0.0.9"
    )
    clock.advance(55)
    assert login(client).status_code == 200


def test_concurrent_attempts_cannot_exceed_the_limit(potluck):
    _limits(potluck, login_max_per_email=3)
    service.register_user(potluck, email="ada@example.com", password=PASSWORD, name="Ada")
    outcomes = []

    def attempt(i):
        try:
            service.issue_token(
                potluck, email="ada@example.com", password="wrong password!", client=f"c{i}"
            )
        except service.IdentityError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [401] * 3 + [429] * 5


def test_old_attempts_are_pruned_once_outside_every_window(client, potluck, clock):
    _limits(potluck, login_email_window_seconds=900, login_client_window_seconds=60)
    login(client, email="ghost@example.com")
    clock.advance(600)
    login(client, email="ghost@example.com")
    clock.advance(300)
    assert service.prune_auth_attempts(potluck) == 1
    with potluck.db.read() as s:
        assert s.query(AuthAttempt).count() == 1


def test_registrations_per_client_are_limited_before_any_hashing(
    client, potluck, clock, monkeypatch
):
    _limits(potluck, register_max_per_client=3, register_window_seconds=3600)
    hashed = []
    real_hash = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password", lambda p: hashed.append(p) or real_hash(p))
    # refused input costs no hash and is not counted
    assert register(client, email="not an email").status_code == 422
    assert register(client, password="short").status_code == 422
    assert register(client, email="u0@example.com").status_code == 201
    clock.advance(100)
    assert register(client, email="u1@example.com").status_code == 201
    assert register(client, email="u1@example.com").status_code == 409  # counted: it hashed
    assert len(hashed) == 3
    r = register(client, email="u2@example.com")
    body = assert_problem(r, 429, "rate_limited")
    assert "registrations" in body["detail"]
    assert r.headers["retry-after"] == str(3600 - 100)
    assert len(hashed) == 3  # refused before hashing
    # refused attempts are not counted: hammering does not extend the limit
    for _ in range(3):
        assert register(client, email="u2@example.com").status_code == 429
    # another address is not affected, nor is signing in from this one
    service.register_user(
        potluck, email="u3@example.com", password=PASSWORD, name="U3", client="10.0.0.9"
    )
    assert login(client, email="u0@example.com").status_code == 200
    clock.advance(3600 - 100)  # the first registration leaves the window
    assert register(client, email="u2@example.com").status_code == 201
    assert register(client, email="u4@example.com").status_code == 429


def test_registrations_do_not_count_as_failed_sign_ins(client, potluck):
    _limits(potluck, login_max_per_email=1, login_max_per_client=1)
    assert register(client).status_code == 201
    assert register(client).status_code == 409
    assert login(client).status_code == 200


def test_the_operator_registers_without_a_limit(potluck):
    _limits(potluck, register_max_per_client=1)
    for i in range(3):
        service.register_user(potluck, email=f"u{i}@example.com", password=PASSWORD, name="U")


def test_concurrent_registrations_cannot_exceed_the_limit(potluck):
    _limits(potluck, register_max_per_client=3)
    outcomes = []

    def attempt(i):
        try:
            service.register_user(
                potluck, email=f"u{i}@example.com", password=PASSWORD, name="U", client="c"
            )
            outcomes.append(201)
        except service.IdentityError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [201] * 3 + [429] * 5


def test_registration_attempts_are_pruned_by_their_own_window(client, potluck, clock):
    _limits(
        potluck,
        login_email_window_seconds=900,
        login_client_window_seconds=60,
        register_window_seconds=3600,
    )
    register(client, email="u0@example.com")
    login(client, email="ghost@example.com")
    clock.advance(900)
    assert service.prune_auth_attempts(potluck) == 1  # the sign-in, not the registration
    with potluck.db.read() as s:
        assert s.scalars(select(AuthAttempt.kind)).all() == ["register"]
    clock.advance(3600 - 900)
    assert service.prune_auth_attempts(potluck) == 1
    with potluck.db.read() as s:
        assert s.query(AuthAttempt).count() == 0


# --- platforms ---


def create_platform(client, headers, name="Speedy Eats"):
    return client.post("/v1/platforms", json={"name": name}, headers=headers)


def test_platform_key_is_shown_once_and_authenticates(client, potluck):
    owner = signed_in(client)
    r = create_platform(client, owner)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    secret = created["secret_key"]
    assert secret.startswith("sk_")
    assert len(secret) > 40
    assert created["name"] == "Speedy Eats"
    assert created["id"].startswith("plt_")
    assert secret.startswith(created["key_prefix"])

    r = client.get(f"/v1/platforms/{created['id']}", headers=owner)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert "secret_key" not in shown
    assert secret not in r.text
    assert shown == {k: v for k, v in created.items() if k != "secret_key"}

    with potluck.db.read() as s:
        row = s.get(Platform, created["id"])
        stored = (row.key_hash, row.key_prefix)
    assert stored[0] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored

    r = client.post(
        "/v1/accounts", json={"currency": "EUR", "code": "wallet"}, headers=bearer(secret)
    )
    assert r.status_code == 201, r.text


def test_person_token_on_platform_endpoint_is_403(client):
    owner = signed_in(client)
    r = client.post("/v1/accounts", json={"currency": "EUR", "code": "wallet"}, headers=owner)
    assert_problem(r, 403, "platform_required")


def test_platform_key_on_person_endpoint_is_403(client):
    secret = create_platform(client, signed_in(client)).json()["secret_key"]
    assert_problem(client.get("/v1/me", headers=bearer(secret)), 403, "user_required")
    assert_problem(create_platform(client, bearer(secret)), 403, "user_required")


def test_unknown_and_revoked_keys_are_401(client, potluck):
    fake = "sk_" + "A" * 43
    r = client.post(
        "/v1/accounts", json={"currency": "EUR", "code": "wallet"}, headers=bearer(fake)
    )
    assert_problem(r, 401, "unauthorized")

    created = create_platform(client, signed_in(client)).json()
    service.revoke_platform_key(potluck, platform_id=created["id"], owner_user_id=None)
    r = client.get("/v1/accounts", headers=bearer(created["secret_key"]))
    assert_problem(r, 401, "unauthorized")


def test_another_users_platform_is_404(client):
    created = create_platform(client, signed_in(client)).json()
    bob = signed_in(client, email="bob@example.com")
    assert_problem(client.get(f"/v1/platforms/{created['id']}", headers=bob), 404, "not_found")
    assert_problem(client.get("/v1/platforms/plt_nope", headers=bob), 404, "not_found")


def test_platform_name_is_validated(client):
    owner = signed_in(client)
    body = assert_problem(create_platform(client, owner, name="  "), 422, "validation_error")
    assert body["errors"][0]["field"] == "name"


def test_create_platform_for_the_cli_has_no_owner(potluck):
    view, secret = service.create_platform(potluck, name="Back office")
    assert view.owner_user_id is None
    assert secret.startswith("sk_")
    principal = service.principal_from_token(potluck, secret)
    assert principal is not None
    assert (principal.kind, principal.id, principal.name) == ("platform", view.id, "Back office")
    assert service.principal_from_token(potluck, secret + "x") is None
