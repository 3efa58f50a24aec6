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
from typing import Any

import psycopg
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

_SMALL = 32  # rows up to which PostgreSQL gets a plain INSERT rather than COPY
_SQLITE_PARAMS = 30_000  # below SQLite's limit of 32,766 parameters per statement

# What a unique violation raises here: SQLAlchemy does not wrap the drivers' raw cursors.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (
    IntegrityError,
    sqlite3.IntegrityError,
    psycopg.IntegrityError,
)


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


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT ``rows`` (dicts keyed by column name) into ``table`` in the caller's transaction."""
    if not rows:
        return
    tuples = _tuples(rows, columns, _processors(table, columns, session))
    names = ", ".join(columns)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if session.get_bind().dialect.name != "postgresql":
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", tuples)
        elif len(tuples) <= _SMALL:
            # A single transfer: one INSERT round trip is cheaper than COPY's handshake.
            row = f"({', '.join(['%s'] * len(columns))})"
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) VALUES {', '.join([row] * len(tuples))}",
                [value for t in tuples for value in t],
            )
        else:
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for t in tuples:
                    copy.write_row(t)
    finally:
        cursor.close()


def update_totals(
    session: Session, table: Table, rows: Sequence[tuple[str, int, int, int, int]]
) -> None:
    """Set the four running totals of many accounts in one statement.

    ``rows`` are ``(id, debits_posted, credits_posted, debits_pending, credits_pending)``.
    """
    if not rows:
        return
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if session.get_bind().dialect.name == "postgresql":
            # Five array parameters instead of five per row: nothing to parse per account.
            columns = list(zip(*rows, strict=True))
            cursor.execute(
                f"UPDATE {table.name} AS a SET debits_posted = v.dp, credits_posted = v.cp, "
                "debits_pending = v.dpe, credits_pending = v.cpe "
                "FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
                "AS v(id, dp, cp, dpe, cpe) WHERE a.id = v.id",
                [list(c) for c in columns],
            )
            return
        per_row = 5
        chunk = _SQLITE_PARAMS // per_row
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(part))
            cursor.execute(
                f"UPDATE {table.name} SET debits_posted = v.column2, credits_posted = v.column3, "
                f"debits_pending = v.column4, credits_pending = v.column5 "
                f"FROM (VALUES {values}) AS v WHERE {table.name}.id = v.column1",
                [value for row in part for value in row],
            )
    finally:
        cursor.close()
