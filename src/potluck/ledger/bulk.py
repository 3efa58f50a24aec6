"""Fast writes for the ledger's hot path, through the database driver.

A batch of 1,000 transfers writes 1,000 transfer rows, 2,000 entries and up to 2,000 account
totals. Through SQLAlchemy's executemany, preparing parameters row by row cost more than the
database did; here rows go to the driver as plain tuples: ``executemany`` on SQLite, ``COPY``
on PostgreSQL, and every account total in one ``UPDATE … FROM (VALUES …)``.

Values are converted with the column types' own SQLAlchemy bind processors, so what is stored
is byte-for-byte what the ORM would have stored (e.g. SQLite's datetime text format).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

import psycopg
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.ledger.models import Account, Entry, Transfer

_SMALL = 32  # rows up to which PostgreSQL gets a plain INSERT rather than COPY
_SQLITE_PARAMS = 30_000  # below SQLite's limit of 32,766 parameters per statement

# What a unique violation raises here: SQLAlchemy does not wrap the drivers' raw cursors.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (
    IntegrityError,
    sqlite3.IntegrityError,
    psycopg.IntegrityError,
)


_ACCOUNTS = cast(Table, Account.__table__)
_TRANSFERS = cast(Table, Transfer.__table__)
_ENTRIES = cast(Table, Entry.__table__)
TRANSFER_COLUMNS = [c.name for c in _TRANSFERS.columns]
ENTRY_COLUMNS = [c.name for c in _ENTRIES.columns if c.name != "id"]

_processor_cache: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}


def _processors(table: Table, columns: Sequence[str], session: Session) -> list[Any]:
    """The SQLAlchemy bind processor of each column (None where the driver takes the value)."""
    dialect = session.get_bind().dialect
    key = (dialect.name, table.name, tuple(columns))
    cached = _processor_cache.get(key)
    if cached is None:
        cached = _processor_cache[key] = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        ]
    return cached


def _tuples(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], processors: list[Any]
) -> list[tuple[Any, ...]]:
    """Rows as driver tuples. Only columns with a processor are converted, and a value seen
    before (the batch's one timestamp) is converted once."""
    getter = itemgetter(*columns)
    converting = [(i, proc) for i, proc in enumerate(processors) if proc is not None]
    if not converting:
        return [getter(row) for row in rows]
    seen: dict[Any, Any] = {}
    out = []
    for row in rows:
        values = list(getter(row))
        for i, proc in converting:
            value = values[i]
            if value is None:
                continue
            if isinstance(value, datetime):
                converted = seen.get(value)
                if converted is None:
                    converted = seen[value] = proc(value)
                values[i] = converted
            else:
                values[i] = proc(value)
        out.append(tuple(values))
    return out


def write(
    session: Session,
    *,
    transfers: Sequence[dict[str, Any]],
    entries: Sequence[dict[str, Any]],
    totals: Sequence[tuple[str, int, int, int, int]],
) -> None:
    """Insert ``transfers`` and ``entries`` and set the accounts' ``totals``
    (``(id, debits_posted, credits_posted, debits_pending, credits_pending)``)."""
    t_rows = _tuples(
        transfers, TRANSFER_COLUMNS, _processors(_TRANSFERS, TRANSFER_COLUMNS, session)
    )
    e_rows = _tuples(entries, ENTRY_COLUMNS, _processors(_ENTRIES, ENTRY_COLUMNS, session))
    postgres = session.get_bind().dialect.name == "postgresql"
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if not postgres:
            _sqlite_insert(cursor, _TRANSFERS, TRANSFER_COLUMNS, t_rows)
            _sqlite_insert(cursor, _ENTRIES, ENTRY_COLUMNS, e_rows)
            _sqlite_update(cursor, totals)
        elif len(t_rows) <= _SMALL:
            _postgres_small(cursor, t_rows, e_rows, totals)
        else:
            _postgres_copy(cursor, _TRANSFERS, TRANSFER_COLUMNS, t_rows)
            _postgres_copy(cursor, _ENTRIES, ENTRY_COLUMNS, e_rows)
            cursor.execute(f"UPDATE {_ACCOUNTS.name} AS a {_PG_SET_TOTALS}", _arrays(totals))
    finally:
        cursor.close()


# Five array parameters instead of five per account: nothing to parse per row.
_PG_SET_TOTALS = (
    "SET debits_posted = v.dp, credits_posted = v.cp, "
    "debits_pending = v.dpe, credits_pending = v.cpe "
    "FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
    "AS v(id, dp, cp, dpe, cpe) WHERE a.id = v.id"
)


def _arrays(totals: Sequence[tuple[str, int, int, int, int]]) -> list[list[Any]]:
    return [list(column) for column in zip(*totals, strict=True)] if totals else [[]] * 5


def _values(columns: Sequence[str], count: int, mark: str) -> str:
    row = f"({', '.join([mark] * len(columns))})"
    return ", ".join([row] * count)


def _postgres_small(
    cursor: Any,
    t_rows: list[tuple[Any, ...]],
    e_rows: list[tuple[Any, ...]],
    totals: Sequence[tuple[str, int, int, int, int]],
) -> None:
    """A few transfers: everything in one statement, so one round trip to the server.
    Data-modifying CTEs run as one statement; foreign keys are checked at its end."""
    sql = (
        f"WITH t AS (INSERT INTO {_TRANSFERS.name} ({', '.join(TRANSFER_COLUMNS)}) "
        f"VALUES {_values(TRANSFER_COLUMNS, len(t_rows), '%s')}), "
        f"e AS (INSERT INTO {_ENTRIES.name} ({', '.join(ENTRY_COLUMNS)}) "
        f"VALUES {_values(ENTRY_COLUMNS, len(e_rows), '%s')}) "
        f"UPDATE {_ACCOUNTS.name} AS a {_PG_SET_TOTALS}"
    )
    params = [v for row in t_rows for v in row] + [v for row in e_rows for v in row]
    cursor.execute(sql, params + _arrays(totals))


def _postgres_copy(cursor: Any, table: Table, columns: Sequence[str], rows: list[Any]) -> None:
    if rows:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _sqlite_insert(cursor: Any, table: Table, columns: Sequence[str], rows: list[Any]) -> None:
    if rows:
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {_values(columns, 1, '?')}"
        cursor.executemany(sql, rows)


def _sqlite_update(cursor: Any, totals: Sequence[tuple[str, int, int, int, int]]) -> None:
    chunk = _SQLITE_PARAMS // 5
    for start in range(0, len(totals), chunk):
        part = totals[start : start + chunk]
        cursor.execute(
            f"UPDATE {_ACCOUNTS.name} SET debits_posted = v.column2, credits_posted = v.column3, "
            "debits_pending = v.column4, credits_pending = v.column5 "
            f"FROM (VALUES {', '.join(['(?, ?, ?, ?, ?)'] * len(part))}) AS v "
            f"WHERE {_ACCOUNTS.name}.id = v.column1",
            [value for row in part for value in row],
        )
