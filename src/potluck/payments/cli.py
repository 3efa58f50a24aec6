"""`potluck reconcile --date YYYY-MM-DD`: compare a day's payments with the provider's."""

from __future__ import annotations

import datetime as dt
import json

import typer
from rich.console import Console
from rich.table import Table

reconcile_app = typer.Typer(
    help="Reconcile payments with the provider.", invoke_without_command=True
)


@reconcile_app.callback()
def reconcile(
    date: str = typer.Option(..., "--date", help="The day to reconcile (UTC), YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Compare the day's payment intents and refunds with the provider's records, print every
    mismatch and store the report. Exit code 0 when clean, 1 with mismatches."""
    from potluck.bootstrap import bootstrap
    from potluck.payments.reconcile import report

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        typer.echo(f"--date: {date!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    result = report(bootstrap(), day)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": result.id,
                    "date": day.isoformat(),
                    "intents_checked": result.intents_checked,
                    "refunds_checked": result.refunds_checked,
                    "mismatches": [m.as_dict() for m in result.mismatches],
                }
            )
        )
    else:
        console = Console()
        console.print(
            f"reconcile {day.isoformat()}: {result.intents_checked} intents, "
            f"{result.refunds_checked} refunds checked, {len(result.mismatches)} mismatches "
            f"(report {result.id})"
        )
        if result.mismatches:
            table = Table("kind", "id", "field", "ours", "provider")
            for m in result.mismatches:
                table.add_row(m.kind, m.id, m.field, str(m.ours), str(m.provider))
            console.print(table)
    raise typer.Exit(0 if result.clean else 1)
