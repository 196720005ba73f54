"""`perr features` commands. Heavy imports stay inside the command functions so `perr --help` is instant."""

from __future__ import annotations

import typer

app = typer.Typer(help="features stage (see README).", no_args_is_help=True)
