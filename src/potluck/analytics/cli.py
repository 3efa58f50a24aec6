"""`potluck analytics …` commands."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

analytics_app = typer.Typer(help="analytics commands.", no_args_is_help=True)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"must be YYYY-MM-DD, not {value!r}", param_hint=option) from None


@analytics_app.command("export")
def export_command(
    from_: Annotated[str, typer.Option("--from", help="First UTC day (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Last UTC day, included (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    level: Annotated[
        str, typer.Option("--level", help="daily (per day, product, currency) or transfers.")
    ] = "daily",
) -> None:
    """Export the daily figures (or every transfer) of a date range, streamed in chunks."""
    from rich.console import Console

    from potluck.analytics.export import export
    from potluck.bootstrap import bootstrap
    from potluck.errors import DomainError

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("must be csv or parquet", param_hint="--format")
    if level not in ("daily", "transfers"):
        raise typer.BadParameter("must be daily or transfers", param_hint="--level")
    start, end = _day(from_, "--from"), _day(to, "--to")
    try:
        n = export(bootstrap(), start=start, end=end, fmt=fmt, out=out, level=level)  # type: ignore[arg-type]
    except DomainError as exc:
        Console(stderr=True).print(exc.message)
        raise typer.Exit(code=2) from None
    Console().print(f"{n} rows written to {out}")
