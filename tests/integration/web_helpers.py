"""Helpers shared by the web page tests (TestClient, no tests here): cheap password hashing,
a client on the app, and a signed-in session.

A test module takes the fixtures (``cheap_hashing``, autouse, and ``client``) by importing
the functions that define them: ``from tests.integration.web_helpers import
cheap_hashing_fixture, client_fixture, sign_in``.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.identity import passwords
from potluck.web import sessions

__all__ = ["cheap_hashing_fixture", "client_fixture", "sign_in"]


@pytest.fixture(name="cheap_hashing", autouse=True)
def cheap_hashing_fixture(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture(name="client")
def client_fixture(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def sign_in(potluck, client, user_id):
    """A session cookie for ``user_id`` on the client; returns the session's CSRF token."""
    token = sessions.start_session(potluck, user_id=user_id)
    client.cookies.set(sessions.COOKIE, token)
    web_user = sessions.load_session(potluck, token)
    assert web_user is not None
    return web_user.csrf_token
