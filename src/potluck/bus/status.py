"""Which workers and relays are alive: heartbeats, `potluck status`, `GET /v1/admin/status`."""

from __future__ import annotations

import typer


def status_command(
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Which relays and workers have been seen recently, and the queue depths."""
    typer.echo("status: not implemented yet")
    raise typer.Exit(1)
