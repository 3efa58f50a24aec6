"""`potluck fx load` and `potluck import splitwise`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

fx_app = typer.Typer(help="Exchange rates for sharing groups.", no_args_is_help=True)
import_app = typer.Typer(help="Import groups from other apps.", no_args_is_help=True)


@fx_app.command("load")
def fx_load(
    file: Annotated[
        Path, typer.Argument(help="A CSV file: date,base,quote,rate (header row).", exists=True)
    ],
) -> None:
    """Load exchange rates (1 base = rate quote on that date); a rate already there for the
    day and pair is replaced. A bad line: nothing is loaded."""
    from potluck import bootstrap as boot
    from potluck.sharing import fx

    console = Console()
    try:
        rows = fx.parse_csv(file.read_text(encoding="utf-8-sig"))
    except fx.CsvError as exc:
        console.print(f"[red]{file}: {exc}; nothing loaded[/red]", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    except UnicodeDecodeError as exc:
        console.print(f"[red]{file}: not UTF-8 text; nothing loaded[/red]", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    potluck = boot.bootstrap()
    with potluck.db.transaction() as s:
        count = fx.upsert_rates(s, rows, now=potluck.clock.now())
    console.print(f"loaded {count} rates", highlight=False)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{v!r}: write it as KEY=VALUE", param_hint=option)
        out[key.strip()] = value.strip()
    return out


@import_app.command("splitwise")
def import_splitwise(
    file: Annotated[Path, typer.Argument(help="A Splitwise CSV export.", exists=True)],
    owner: Annotated[str, typer.Option(help="Email of the registered person who owns it.")],
    name: Annotated[str, typer.Option(help="Name of the new group.")],
    member: Annotated[
        list[str] | None, typer.Option(help='"Name in the CSV=email", once per member.')
    ] = None,
    rate: Annotated[
        list[str] | None, typer.Option(help='"USD=0.92": 1 USD in the group currency.')
    ] = None,
    me: Annotated[
        str | None,
        typer.Option(help="The owner's column (default: the one column without --member)."),
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="The group's currency (default: most rows').")
    ] = None,
) -> None:
    """Import a Splitwise CSV export into a new group (one transaction: all or nothing)."""
    from sqlalchemy import select

    from potluck import bootstrap as boot
    from potluck.errors import DomainError
    from potluck.identity.models import User
    from potluck.sharing.importer import import_splitwise as run_import
    from potluck.sharing.importer import parse_splitwise

    console = Console()
    members = _pairs(member or [], "--member")
    rates = _pairs(rate or [], "--rate")
    text = file.read_text(encoding="utf-8-sig")
    potluck = boot.bootstrap()
    try:
        columns = parse_splitwise(text).columns
        if me is None:
            mapped = {k.lower() for k in members}
            rest = [c for c in columns if c.lower() not in mapped]
            if len(rest) != 1:
                raise DomainError(
                    "unmapped_members",
                    "say which column is the owner with --me, and give every other column "
                    "with --member; columns without --member: " + ", ".join(rest),
                )
            me = rest[0]
        with potluck.db.read() as s:
            user_id = s.scalar(select(User.id).where(User.email == owner.strip().lower()))
        if user_id is None:
            raise DomainError("user_not_found", f"no registered person with email {owner}")
        with (
            Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as bar,
            potluck.db.transaction() as s,
        ):
            task = bar.add_task("rows", total=None)
            result = run_import(
                s,
                user_id=user_id,
                name=name,
                text=text,
                me=me,
                members=members,
                currency=currency,
                rates=rates,
                now=potluck.clock.now(),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except DomainError as exc:
        console.print(f"[red]refused ({exc.code}): {exc.message}[/red]", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    potluck.bus.drain()
    console.print(
        f"group {result.group_id}: {result.expenses} expenses, {result.payments} payments, "
        f"skipped {result.skipped}",
        soft_wrap=True,
        highlight=False,
    )
    for warning in result.warnings:
        console.print(f"[yellow]{warning}[/yellow]", highlight=False)
