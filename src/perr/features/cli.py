"""`perr features` commands. Heavy imports stay inside the command functions so `perr --help` is
instant; the options of `features extract` are made from :class:`perr.features.config.ExtractConfig`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from perr.cli_options import (
    ADDRESS,
    BACKEND,
    JOBS,
    NO_PROGRESS,
    NO_SHARED_FS,
    NUM_CPUS,
    BackendChoice,
    execution_config,
)
from perr.errors import InputsFailed
from perr.features.config import DEFAULT_EXTRACTORS, ExtractConfig
from perr.logs import quiet_libraries
from perr.settings import config_options

app = typer.Typer(
    help="Per-timestep multimodal features: extract per clip, pack a store.", no_args_is_help=True
)


@app.command("extract")
@config_options(ExtractConfig)
def extract_cmd(
    config: ExtractConfig,
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="clip manifest (JSONL)"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="output folder (one .npz per clip; re-runs skip finished clips)"
    ),
    modalities: str = typer.Option(",".join(DEFAULT_EXTRACTORS), help="comma-separated subset"),
    extractor: list[str] = typer.Option(
        [], "--extractor", help="MODALITY=NAME: the registered extractor of one modality (repeatable)"
    ),
    backend: BackendChoice = BACKEND,
    jobs: int = JOBS,
    address: str | None = ADDRESS,
    num_cpus: int | None = NUM_CPUS,
    no_shared_fs: bool = NO_SHARED_FS,
    threads: int | None = typer.Option(None, min=1, help="torch threads per worker (default 1)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda[:N]: where the torch models run"),
    lanes: int | None = typer.Option(
        None,
        min=1,
        max=2,
        help="with --jobs 1: 2 runs the background network beside the other extractors "
        "in a second thread (default on ≥ 2 cores); 1: one after another",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show the libraries' own log messages"),
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Extract person_a, person_b, background, audio and text features for every clip of MANIFEST.

    Clips are grouped by video and each video is decoded once, forward, for all of its clips. Exit status:
    0 when every clip was extracted, 1 when any failed (the others are still written), 2 for a usage error."""
    from perr.features.job import extract_manifest

    quiet_libraries(verbose)
    execution = execution_config(backend, jobs, address, num_cpus, no_shared_fs)
    chosen = dict(config.extractors)
    for item in extractor:
        name, _, value = item.partition("=")
        if not value:
            raise typer.BadParameter(f"--extractor {item!r}: expected MODALITY=NAME")
        chosen[name.strip()] = value.strip()
    try:
        cfg = dataclasses.replace(
            config, modalities=tuple(m.strip() for m in modalities.split(",") if m.strip()), extractors=chosen
        )
    except ValueError as e:  # the options, checked together
        raise typer.BadParameter(str(e)) from None
    summary = extract_manifest(
        manifest, out, cfg, execution, progress=not no_progress, threads=threads, lanes=lanes, device=device
    )
    typer.echo(str(summary))
    if summary.failed:
        raise InputsFailed()


@app.command("pack")
def pack_cmd(
    features_dir: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="output folder of `perr features extract`"
    ),
    manifest: Path = typer.Option(
        ..., "--manifest", "-m", exists=True, dir_okay=False, help="manifest with split (and label)"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="feature store folder (train/ val/ test/)"),
    default_split: str | None = typer.Option(
        None, help="split for clips whose record has none (else they are left out)"
    ),
    dataset: str = typer.Option("", help="dataset name for the store header (default: manifest file name)"),
) -> None:
    """Pack per-clip features into the store `perr train` reads, one folder per manifest split."""
    from perr.features.pack import pack_features

    summary = pack_features(features_dir, manifest, out, default_split=default_split, dataset=dataset)
    typer.echo(str(summary))
