"""Browser tests: the real app under uvicorn in a thread, driven by Playwright with Debian's
Chromium (/usr/bin/chromium; never `playwright install`).

Fixtures: ``server`` (session: a migrated temporary SQLite database, the sandbox payment
provider, ``public_base_url`` = the server's address, embedded workers running so events are
applied; ``server.url``, ``server.app``), ``browser`` (session), ``page`` (a fresh context per
test), and the helpers ``screenshot``, ``axe_check``, ``sign_up``, ``sign_in``.
Without Chromium the tests skip, unless CI=true, where they fail.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher

from potluck.api.app import create_app
from potluck.bootstrap import Potluck, bootstrap
from potluck.config import Settings
from potluck.identity import passwords
from potluck.migrate import upgrade

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"

_people = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


def _require_chromium() -> None:
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium; `make test` does it)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)


@dataclass
class Server:
    url: str
    app: Potluck


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_chromium()
    path = tmp_path_factory.mktemp("browser") / "potluck.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        database_url=url,
        secret_key="browser-test-secret-key-long-enough-for-hs256",
        log_json=False,
        payment_provider="sandbox",
        public_base_url=base,
        login_max_per_client=10_000,
        register_max_per_client=10_000,
    )
    app = bootstrap(settings)
    config = uvicorn.Config(
        create_app(app, run_workers=True), log_config=None, access_log=False, lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:  # the lifespan (workers) runs before it serves
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)  # waiting for a thread to start listening, not hiding a race
    try:
        yield Server(base, app)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        sock.close()
        app.db.dispose()


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its production cost makes every sign-up ~0.1 s of CPU: cheap parameters
    while a browser test runs (only then: other tests in this process keep the real ones)."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    """One Chromium per test module, not per session: Playwright's sync API keeps an asyncio
    loop running in the main thread while it is open, and tests of other modules that the
    same xdist worker runs next (anyio.run, asyncio.run) must not find it there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A new browser context (no cookies) and page; ``page.goto("/x")`` is relative."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1024, "height": 800})
    context.set_default_timeout(10_000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot at test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target


def axe_check(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """Run axe-core (vendored) on the page; returns the violations of those impacts."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
    )
    return [v for v in result if v.get("impact") in impacts]


def unique_email(name: str) -> str:
    return f"{name.lower()}{next(_people)}-{os.getpid()}@example.com"


def sign_up(page: Any, name: str, email: str | None = None, password: str = PASSWORD) -> str:
    """Create an account through the sign-up form (ends on the dashboard); returns the email."""
    email = email or unique_email(name)
    page.goto("/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/dashboard")
    return email


def sign_in(page: Any, email: str, password: str = PASSWORD, next_url: str = "/dashboard") -> None:
    page.goto("/signin?next=" + next_url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**" + next_url)


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
