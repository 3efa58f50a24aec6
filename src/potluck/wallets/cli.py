"""`potluck wallets …` commands."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import typer

wallets_app = typer.Typer(help="wallets commands.", no_args_is_help=True)


@wallets_app.command("settle")
def settle(
    day: Annotated[
        str | None,
        typer.Option("--date", help="Business day to settle (YYYY-MM-DD; default: yesterday)."),
    ] = None,
) -> None:
    """Sweep every merchant's available balance to its bank account for one day (idempotent:
    a day already settled prints its stored report)."""
    from rich.console import Console
    from rich.table import Table

    from potluck.bootstrap import bootstrap
    from potluck.wallets import settlement

    try:
        when = date.fromisoformat(day) if day else None
    except ValueError:
        Console(stderr=True).print(f"--date must be YYYY-MM-DD, not {day!r}")
        raise typer.Exit(code=2) from None
    potluck = bootstrap()
    if when is None:
        when = potluck.clock.now().date() - timedelta(days=1)
    reports = settlement.run(potluck, when)
    table = Table(title=f"merchant settlement {when.isoformat()}")
    for column in ("party", "currency", "opening", "credits", "swept", "status", "payout"):
        table.add_column(
            column,
            justify="right" if column in {"opening", "credits", "swept"} else "left",
            overflow="fold",  # ids are copied from here: wrap them, never cut them short
        )
    for r in reports:
        table.add_row(
            r.party_id,
            r.currency,
            str(r.opening_available),
            str(r.credits_received),
            str(r.amount_swept),
            r.status,
            r.payout_id or (r.reason or ""),
        )
    Console().print(table)
    if any(r.status == settlement.FAILED for r in reports):
        raise typer.Exit(code=1)
