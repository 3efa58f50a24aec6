"""`potluck risk …` commands."""

from __future__ import annotations

import typer

risk_app = typer.Typer(help="risk commands.", no_args_is_help=True)
