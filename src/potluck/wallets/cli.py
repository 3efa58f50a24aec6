"""`potluck wallets …` commands."""

from __future__ import annotations

import typer

wallets_app = typer.Typer(help="wallets commands.", no_args_is_help=True)
