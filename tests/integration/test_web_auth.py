"""Web sign-up, sign-in and sign-out with server-side sessions: cookie flags, CSRF refused
without the token, errors next to their fields, signing out ends the session.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.identity.models import User
from potluck.web.models import WebSession
from tests.integration.web_helpers import cheap_hashing_fixture  # noqa: F401 - fixtures

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_up(client: TestClient, name: str, email: str) -> None:
    token = csrf_of(client.get("/signup").text)
    r = client.post(
        "/signup",
        data={"csrf_token": token, "name": name, "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"


def error_next_to(html: str, field: str) -> str:
    """The error message a control points at with aria-describedby, and it is aria-invalid."""
    control = re.search(rf'<(?:input|select|textarea)[^>]*name="{field}"[^>]*>', html)
    assert control, f"no control named {field}"
    tag = control.group(0)
    assert 'aria-invalid="true"' in tag, tag
    described = re.search(r'aria-describedby="([^"]+)"', tag)
    assert described, tag
    ids = described.group(1).split()
    for i in ids:
        message = re.search(rf'class="field-error" id="{re.escape(i)}">([^<]*)<', html)
        if message:
            return message.group(1)
    raise AssertionError(f"no error element among {ids}")


def sessions_of(potluck) -> int:
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(WebSession))


def test_sign_up_in_and_out_with_session_cookie_flags(potluck):
    with TestClient(create_app(potluck)) as client:
        assert client.get("/dashboard", follow_redirects=False).headers["location"] == (
            "/signin?next=/dashboard"
        )
        token = csrf_of(client.get("/signup").text)
        r = client.post(
            "/signup",
            data={
                "csrf_token": token,
                "name": "Ann",
                "email": "ann@example.com",
                "password": PASSWORD,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        cookie = next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("potluck_session=")
        )
        flags = [p.strip().lower() for p in cookie.split(";")]
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "path=/" in flags
        assert "secure" not in flags  # http://; see the https test below
        assert "Hello, Ann" in client.get("/dashboard").text
        assert sessions_of(potluck) == 1

        # signing out deletes the session: the old cookie signs nobody in any more
        old = client.cookies.get("potluck_session")
        dashboard = client.get("/dashboard").text
        r = client.post("/signout", data={"csrf_token": csrf_of(dashboard)}, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/signin"
        assert sessions_of(potluck) == 0
        client.cookies.set("potluck_session", old)
        assert client.get("/dashboard", follow_redirects=False).status_code == 303

        # a wrong password: the message next to the password field, nobody signed in
        page = client.get("/signin?next=/groups").text
        r = client.post(
            "/signin",
            data={
                "csrf_token": csrf_of(page),
                "email": "ann@example.com",
                "password": "not the password",
                "next": "/groups",
            },
            follow_redirects=False,
        )
        assert r.status_code == 422
        assert error_next_to(r.text, "password") == "The email or password is not correct."
        assert sessions_of(potluck) == 0
        # the right one: back to where the person was going
        r = client.post(
            "/signin",
            data={
                "csrf_token": csrf_of(page),
                "email": "ann@example.com",
                "password": PASSWORD,
                "next": "/groups",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/groups"
        assert sessions_of(potluck) == 1


def test_csrf_is_refused_without_the_token_and_errors_sit_next_to_their_fields(potluck):
    with TestClient(create_app(potluck)) as client:
        form = {"name": "Bob", "email": "bob@example.com", "password": PASSWORD}
        client.get("/signup")  # the browser's CSRF cookie is set
        for token in (None, "forged"):
            data = form | ({"csrf_token": token} if token else {})
            r = client.post("/signup", data=data, follow_redirects=False)
            assert r.status_code == 403, r.text
            assert "text/html" in r.headers["content-type"]
        with potluck.db.read() as s:
            assert s.scalar(select(func.count()).select_from(User)) == 0

        # field errors in plain words, next to their fields; what was typed is kept
        token = csrf_of(client.get("/signup").text)
        r = client.post(
            "/signup",
            data={
                "csrf_token": token,
                "name": "Bob",
                "email": "not-an-email",
                "password": PASSWORD,
            },
        )
        assert r.status_code == 422
        assert error_next_to(r.text, "email") == "Not a valid email address."
        assert 'value="Bob"' in r.text
        r = client.post(
            "/signup",
            data={
                "csrf_token": token,
                "name": "Bob",
                "email": "bob@example.com",
                "password": "short",
            },
        )
        assert "at least 10 characters" in error_next_to(r.text, "password")

        sign_up(client, "Bob", "bob@example.com")
        # signed in, the session's own token is required: the anonymous one is refused
        r = client.post(
            "/groups",
            data={"csrf_token": token, "name": "Flat", "currency": "EUR"},
            follow_redirects=False,
        )
        assert r.status_code == 403
        # htmx sends it as a header
        page = client.get("/groups").text
        r = client.post(
            "/groups",
            data={"name": "Flat", "currency": "EUR"},
            headers={"X-CSRF-Token": csrf_of(page)},
            follow_redirects=False,
        )
        assert r.status_code == 303


def test_session_cookie_is_secure_behind_https(potluck):
    potluck.settings = potluck.settings.model_copy(
        update={"public_base_url": "https://potluck.example.com"}
    )
    with TestClient(create_app(potluck), base_url="https://testserver") as client:
        token = csrf_of(client.get("/signup").text)
        r = client.post(
            "/signup",
            data={
                "csrf_token": token,
                "name": "Cy",
                "email": "cy@example.com",
                "password": PASSWORD,
            },
            follow_redirects=False,
        )
        cookie = next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("potluck_session=")
        )
        assert "secure" in [p.strip().lower() for p in cookie.split(";")]

        # the identity service's sign-in limit applies to the web form too
        client.cookies.delete("potluck_session")
        page = client.get("/signin").text
        for _ in range(potluck.settings.login_max_per_email):
            r = client.post(
                "/signin",
                data={"csrf_token": csrf_of(page), "email": "cy@example.com", "password": "no!"},
            )
            assert r.status_code == 422
        r = client.post(
            "/signin",
            data={"csrf_token": csrf_of(page), "email": "cy@example.com", "password": PASSWORD},
        )
        assert r.status_code == 429
        assert "Too many sign-in attempts" in r.text
        assert int(r.headers["retry-after"]) > 0


def test_an_expired_session_signs_nobody_in_and_is_pruned(potluck, clock):
    from potluck.identity.service import register_user
    from potluck.web import sessions

    user = register_user(potluck, email="dee@example.com", password=PASSWORD, name="Dee")
    token = sessions.start_session(potluck, user_id=user.id)
    assert sessions.load_session(potluck, token).id == user.id
    clock.advance(potluck.settings.web_session_ttl_seconds + 1)
    assert sessions.load_session(potluck, token) is None
    with potluck.db.transaction() as s:
        assert sessions.prune_in(s, now=clock.now()) == 1
    assert sessions_of(potluck) == 0


def test_an_unexpected_error_on_a_page_is_an_html_page_and_on_the_api_problem_json(
    potluck, monkeypatch
):
    from potluck.web import home

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(home, "list_notifications", broken)
    with TestClient(create_app(potluck), raise_server_exceptions=False) as client:
        sign_up(client, "Ada", "ada@example.com")
        page = client.get("/dashboard")
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "Something went wrong on our side" in page.text
        assert page.headers["x-request-id"] in page.text
        assert "boom" not in page.text  # no internals shown

    from potluck.notify import inbox

    monkeypatch.setattr(inbox, "list_notifications", broken)
    with TestClient(create_app(potluck), raise_server_exceptions=False) as client:
        sign_up(client, "Bo", "bo@example.com")
        token = client.post(
            "/v1/auth/token", json={"email": "bo@example.com", "password": PASSWORD}
        ).json()["access_token"]
        api = client.get("/v1/notifications", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 500
        assert api.headers["content-type"] == "application/problem+json"
