"""`potluck analytics …` commands."""

from __future__ import annotations

import typer

analytics_app = typer.Typer(help="analytics commands.", no_args_is_help=True)
