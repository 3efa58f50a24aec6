"""`potluck reconcile`."""

from __future__ import annotations

import typer

reconcile_app = typer.Typer(
    help="Reconcile payments with the provider.", invoke_without_command=True
)


@reconcile_app.callback()
def reconcile(
    date: str = typer.Option(..., "--date", help="The day to reconcile, YYYY-MM-DD."),
) -> None:
    """Compare internal payment records with the provider's for one day (not implemented yet)."""
    typer.echo("reconcile: not implemented yet")
    raise typer.Exit(1)
