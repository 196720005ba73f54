"""`perr data` commands: validate manifests and stores, make the synthetic default, import corpora."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate, generate (synthetic) and import datasets.", no_args_is_help=True)
