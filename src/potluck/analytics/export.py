"""Streaming exports of analytics for offline analysis: CSV or Parquet, daily rows or every
transfer. Rows are written chunk by chunk (a Parquet row group per chunk), so an export of
millions of transfers keeps memory flat."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from potluck.analytics import service

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

Format = Literal["csv", "parquet"]
Level = Literal["daily", "transfers"]
DAILY_COLUMNS = ("date", "product", "currency", "count", "volume")


def _chunks(
    app: Potluck, level: Level, start: date, end: date, chunk: int
) -> Iterator[list[dict[str, Any]]]:
    with app.db.read() as s:
        if level == "daily":
            rows = [asdict(r) for r in service.daily(s, start=start, end=end)]
            for i in range(0, len(rows), chunk):
                yield rows[i : i + chunk]
        else:
            yield from service.transfer_rows(s, start=start, end=end, chunk=chunk)


def _schema(level: Level) -> Any:
    import pyarrow as pa

    if level == "daily":
        return pa.schema(
            [
                ("date", pa.string()),
                ("product", pa.string()),
                ("currency", pa.string()),
                ("count", pa.int64()),
                ("volume", pa.int64()),
            ]
        )
    return pa.schema(
        [
            ("id", pa.string()),
            ("created_at", pa.string()),
            ("date", pa.string()),
            ("product", pa.string()),
            ("code", pa.string()),
            ("kind", pa.string()),
            ("book", pa.string()),
            ("currency", pa.string()),
            ("amount", pa.int64()),
        ]
    )


def export(
    app: Potluck,
    *,
    start: date,
    end: date,
    fmt: Format,
    out: Path,
    level: Level = "daily",
    chunk: int = 5000,
) -> int:
    """Write the rows to ``out``; returns how many were written."""
    service.check_range(start, end)
    columns = DAILY_COLUMNS if level == "daily" else service.TRANSFER_COLUMNS
    written = 0
    if fmt == "csv":
        with out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns))
            writer.writeheader()
            for rows in _chunks(app, level, start, end, chunk):
                writer.writerows(rows)
                written += len(rows)
        return written
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(level)
    with pq.ParquetWriter(out, schema) as writer:
        for rows in _chunks(app, level, start, end, chunk):
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            written += len(rows)
        if written == 0:
            writer.write_table(schema.empty_table())
    return written
