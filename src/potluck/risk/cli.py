"""`potluck risk …` commands: the blocklist."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from potluck.risk.schemas import BlocklistKind

risk_app = typer.Typer(help="Fraud scoring: the blocklist.", no_args_is_help=True)
blocklist_app = typer.Typer(help="Users, devices and emails whose payments are blocked.")
risk_app.add_typer(blocklist_app, name="blocklist")
console = Console()


@blocklist_app.command("add")
def blocklist_add(
    kind: Annotated[BlocklistKind, typer.Argument(help="user, device or email.")],
    value: Annotated[str, typer.Argument(help="A user id, a device id or an email address.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in the decision).")],
) -> None:
    """Block every payment of a user (or to them), from a device, or of an email."""
    from potluck.bootstrap import bootstrap
    from potluck.risk import service

    app = bootstrap()
    with app.db.transaction() as s:
        entry = service.add_to_blocklist(
            s, kind=kind, value=value, reason=reason, created_by=None, now=app.clock.now()
        )
    console.print(f"{entry.id}  {entry.kind} {entry.value}")


@blocklist_app.command("list")
def blocklist_list(
    kind: Annotated[BlocklistKind | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """The blocklist, oldest first."""
    from potluck.bootstrap import bootstrap
    from potluck.risk import service

    app = bootstrap()
    with app.db.read() as s:
        rows, more = service.list_blocklist(s, kind=kind, limit=limit, starting_after=None)
    table = Table("kind", "value", "reason", "added")
    table.add_column("id", no_wrap=True, min_width=31)
    for e in rows:
        table.add_row(e.kind, e.value, e.reason, e.created_at.isoformat(timespec="seconds"), e.id)
    console.print(table)
    if more:
        console.print(f"(more than {limit}; use --limit)")


@blocklist_app.command("remove")
def blocklist_remove(
    entry_id: Annotated[str, typer.Argument(help="The entry id (rblk_…).")],
) -> None:
    """Remove an entry."""
    from potluck.bootstrap import bootstrap
    from potluck.risk import service

    app = bootstrap()
    with app.db.transaction() as s:
        entry = service.remove_from_blocklist(s, entry_id=entry_id)
    console.print(f"removed {entry.id}  {entry.kind} {entry.value}")
