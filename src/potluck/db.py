"""Engine, sessions and the unit of work.

SQLite (the default) runs in WAL mode with a busy timeout; every writing transaction starts
with ``BEGIN IMMEDIATE`` so that writers queue on the database lock up front instead of
failing with "database is locked" half-way through. PostgreSQL uses row locks
(``SELECT … FOR UPDATE``) taken by the ledger in ascending account id order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, BigInteger, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT everywhere for money; on SQLite INTEGER is already 64-bit and is what makes
# an INTEGER PRIMARY KEY an alias of the rowid.
Money64 = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
BigInt = Money64
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 20, echo: bool = False) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that we can say
        # BEGIN IMMEDIATE ourselves (SQLAlchemy's documented pysqlite recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        # 16 MiB of page cache per connection (default 2 MiB): a batch touches index pages
        # all over the entries and accounts B-trees; re-reading them cost ~10% of a batch.
        cur.execute("PRAGMA cache_size=-16384")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: through exec_driver_sql this one statement cost as much
        # Python as the query it precedes.
        mode = conn.get_execution_options().get("potluck_write", True)
        if mode is None:
            return  # a single-statement read: SQLite's implicit statement transaction suffices
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if mode else "BEGIN")


class Database:
    """The engine plus the two kinds of transaction Potluck uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Threads of this process queue on this lock in
        # arrival order instead of on SQLite's busy handler, which sleeps with back-off and
        # made p99 latency under 16 writers ten times worse. Other processes still meet at
        # BEGIN IMMEDIATE. Re-entrant so that a nested write in one thread fails as before
        # (busy timeout) rather than hanging.
        self._writer = threading.RLock() if engine.dialect.name == "sqlite" else None
        self._write = sessionmaker(
            bind=engine.execution_options(potluck_write=True), expire_on_commit=False
        )
        self._read = sessionmaker(
            bind=engine.execution_options(potluck_write=False), expire_on_commit=False
        )
        self._lookup = sessionmaker(
            bind=engine.execution_options(potluck_write=None), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A writing unit of work: commits once at the end, rolls back on any error."""
        if self._writer is not None:
            self._writer.acquire()
        session = self._write()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if self._writer is not None:
                self._writer.release()

    @contextmanager
    def lookup(self) -> Iterator[Session]:
        """For one read statement (e.g. finding the caller by key): no snapshot is taken
        beyond the statement's own, which on SQLite saves a BEGIN/ROLLBACK per request."""
        session = self._lookup()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (no write lock on SQLite)."""
        session = self._read()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def find_or_create(
    session: Session, *, find: Callable[[], str | None], create: Callable[[], str]
) -> str:
    """``find()``, else ``create()`` (which inserts under a unique key): a row opened on first
    use. On PostgreSQL a concurrent first use waits on the unique key; the loser's insert is
    rolled back to a savepoint and the winner's row is read. SQLite's writers are serialised
    (BEGIN IMMEDIATE), so there the IntegrityError cannot come from a race and is raised."""
    found = find()
    if found is not None:
        return found
    postgres = session.get_bind().dialect.name == "postgresql"
    savepoint = session.begin_nested() if postgres else None
    try:
        created = create()
    except IntegrityError:
        if savepoint is None:
            raise
        savepoint.rollback()
        winner = find()
        if winner is None:
            raise
        return winner
    if savepoint is not None:
        savepoint.commit()
    return created
