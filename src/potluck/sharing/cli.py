"""`potluck fx load` and `potluck import splitwise`."""

from __future__ import annotations

import typer

fx_app = typer.Typer(help="Exchange rates for sharing groups.", no_args_is_help=True)
import_app = typer.Typer(help="Import groups from other apps.", no_args_is_help=True)
