"""`perr data` commands: validate manifests and stores, make the synthetic default, import corpora."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate, generate (synthetic) and import datasets.", no_args_is_help=True)


@app.command("validate")
def validate_cmd(
    path: str = typer.Argument(..., help="A manifest (.jsonl), a feature-store split folder, or a store root."),
) -> None:
    """List every bad row and field (unknown label, duplicate clip id, missing file, wrong shape, NaN/inf).

    Exits 1 when anything is wrong; training refuses such data with the same messages.
    """
    from rich.console import Console

    from perr.data.validate import validate_path

    console = Console(stderr=True)
    problems = validate_path(path)
    if problems:
        for p in problems:
            console.print(f"[red]✗[/red] {p}", highlight=False, soft_wrap=True)
        console.print(f"[red]{len(problems)} problem(s) in {path}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] {path}: valid")
