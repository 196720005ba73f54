"""The `perr` command line. One verb group per stage; each command calls a Python function of the
same name so the CLI and the API stay one thing. Heavy imports live inside commands."""

from __future__ import annotations

import typer

from perr.annotate.cli import app as annotate_app
from perr.build.cli import app as build_app
from perr.data.cli import app as data_app
from perr.features.cli import app as features_app

app = typer.Typer(
    name="perr",
    help="Pairwise Emotional Relationship Recognition in drama and movie videos (Gao et al., ACM MM'21).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(build_app, name="build", help="Episodes → shots, segments, clip proposals, characters, subtitles.")
app.add_typer(annotate_app, name="annotate", help="Label Studio export/import, agreement, adjudication, splits.")
app.add_typer(features_app, name="features", help="Per-timestep multimodal features: extract per clip, pack a store.")
app.add_typer(data_app, name="data", help="Validate manifests/stores, synthesise the default dataset, import corpora.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
