"""Test fixtures: every integration test runs on SQLite and on PostgreSQL.

Each test run creates its own PostgreSQL database (``potluck_test_<pid>_<random>``) and drops
it at the end. When PostgreSQL is not answering, PostgreSQL tests are skipped with a message
saying how to start it; with ``CI=true`` they fail instead.

After every test that used a database, ``ledger audit`` must pass (mark a test that breaks
the ledger on purpose with ``@pytest.mark.corrupts_ledger``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from potluck.bootstrap import Potluck, bootstrap
from potluck.clock import FakeClock
from potluck.config import Settings
from potluck.db import Database, make_engine
from potluck.ledger.service import audit
from potluck.migrate import upgrade
from potluck.models import metadata

PG_ADMIN_URL = os.environ.get(
    "POTLUCK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START_HINT = (
    "PostgreSQL is not answering at 127.0.0.1:5432; start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
    "or set POTLUCK_TEST_POSTGRES_URL"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corrupts_ledger: the test breaks the ledger on purpose")
    config.addinivalue_line("markers", "sqlite_only: runs on SQLite only")
    config.addinivalue_line("markers", "postgres_only: runs on PostgreSQL only")
    config.addinivalue_line(
        "markers",
        "inprocess_transport: reads the in-process queue tables, so it keeps the in-process "
        "transport under POTLUCK_TRANSPORT=rabbitmq",
    )
    config.addinivalue_line(
        "markers",
        "faults: restarts private PostgreSQL/RabbitMQ servers under load "
        "(tests/e2e/test_faults.py); `make test` runs them after the parallel suite, serially",
    )


def _pg_available() -> str | None:
    try:
        engine = make_engine(PG_ADMIN_URL, pool_size=1)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{START_HINT} ({type(exc).__name__})"


def require_postgres() -> None:
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "potluck.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    require_postgres()
    name = f"potluck_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(PG_ADMIN_URL, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_databases: dict[str, Database] = {}


def _database(url: str) -> Database:
    if url not in _databases:
        # 20 + 20 overflow per test process: two xdist workers stay well under PostgreSQL's
        # default max_connections of 100 even in the 32- and 50-thread tests.
        _databases[url] = Database(make_engine(url, pool_size=20))
    return _databases[url]


_TABLES = [t.name for t in reversed(metadata.sorted_tables)]
# One round trip naming the tables that hold rows: a test touches a handful of the fifty, and
# TRUNCATE costs by the table (about 5 ms each on PostgreSQL, empty or not).
_NON_EMPTY = " UNION ALL ".join(
    f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in _TABLES
)


def _wipe(db: Database) -> None:
    with db.engine.begin() as conn:
        used = {row[0] for row in conn.execute(text(_NON_EMPTY))}
        tables = [name for name in _TABLES if name in used]
        if not tables:
            return
        if db.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql" and request.node.get_closest_marker("sqlite_only"):
        pytest.skip("SQLite-only test")
    if name == "sqlite" and request.node.get_closest_marker("postgres_only"):
        pytest.skip("PostgreSQL-only test")
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db(database_url: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    database = _database(database_url)
    _wipe(database)
    yield database
    if not request.node.get_closest_marker("corrupts_ledger"):
        with database.read() as s:
            report = audit(s)
        assert report.ok, "ledger audit failed after the test:\n" + "\n".join(report.problems)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# `POTLUCK_TRANSPORT=rabbitmq make test`: the `potluck` fixture's bus runs on the broker
# (POTLUCK_BROKER_URL, the local RabbitMQ by default) in a namespace of this test process
# (exchanges and queues `t<pid>_<random>.…`), so parallel runs never see each other's
# messages; every test starts with empty queues and the namespace is deleted at the end.
ON_RABBITMQ = os.environ.get("POTLUCK_TRANSPORT", "").lower() == "rabbitmq"
BROKER_NAMESPACE = f"t{os.getpid()}_{secrets.token_hex(3)}"


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    broker: dict[str, str] = {}
    if ON_RABBITMQ:
        broker = {"broker_namespace": BROKER_NAMESPACE}
        if request.node.get_closest_marker("inprocess_transport"):
            broker["transport"] = "inprocess"
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        log_json=False,
        idempotency_wait_seconds=10.0,
        **broker,  # type: ignore[arg-type]
    )


@pytest.fixture
def potluck(settings: Settings, db: Database, clock: FakeClock) -> Iterator[Potluck]:
    app = bootstrap(settings, db=db, clock=clock)
    if app.settings.transport == "rabbitmq" and app.settings.broker_namespace == BROKER_NAMESPACE:
        _purge_broker(app)  # what an earlier test left (its rows were wiped with the database)
        yield app
        # The test may have registered services of its own: their queues are deleted too.
        _broker_queues.update(app.bus.transport.queue_names())  # type: ignore[attr-defined]
        app.bus.transport.close()  # type: ignore[attr-defined]
        return
    yield app


_broker_queues: set[str] = set()


def _purge_broker(app: Potluck) -> None:
    import pika

    transport = app.bus.transport
    names = transport.queue_names()  # type: ignore[attr-defined]
    _broker_queues.update(names)
    connection = pika.BlockingConnection(pika.URLParameters(app.settings.broker_url))
    try:
        for name in names:
            channel = connection.channel()
            try:
                channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:
                continue  # not declared yet (the first connection declares it)
            channel.close()
    finally:
        connection.close()


@pytest.fixture(scope="session", autouse=True)
def _broker_namespace() -> Iterator[None]:
    """Delete this process's broker namespace at the end (POTLUCK_TRANSPORT=rabbitmq)."""
    yield
    if not ON_RABBITMQ or not _broker_queues:
        return
    import pika

    settings = Settings()
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        channel = connection.channel()
        for name in sorted(_broker_queues):
            channel.queue_delete(name)
        for name in (f"{BROKER_NAMESPACE}.events", f"{BROKER_NAMESPACE}.retry"):
            channel.exchange_delete(name)
    finally:
        connection.close()
