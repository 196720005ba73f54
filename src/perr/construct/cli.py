"""`perr build` commands. Heavy imports stay inside the command functions so `perr --help` is instant;
the options of `build run` are made from :class:`perr.construct.config.BuildConfig`'s fields."""

from __future__ import annotations

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
from perr.construct.chunks import CHUNK_SECONDS
from perr.construct.config import BuildConfig
from perr.construct.shots import SHOT_DETECTORS
from perr.logs import quiet_libraries
from perr.settings import config_options, help_of

app = typer.Typer(help="build stage (see README).", no_args_is_help=True)


@app.command("run")
@config_options(BuildConfig)
def run_cmd(
    config: BuildConfig,
    inputs: list[str] = typer.Argument(
        ..., help="video files, folders (searched recursively) or glob patterns"
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="output folder (resumable: finished videos are skipped)"
    ),
    force: bool = typer.Option(False, help="redo videos that are already finished"),
    backend: BackendChoice = BACKEND,
    jobs: int = JOBS,
    address: str | None = ADDRESS,
    num_cpus: int | None = NUM_CPUS,
    no_shared_fs: bool = NO_SHARED_FS,
    chunk_seconds: float = typer.Option(
        CHUNK_SECONDS,
        min=0,
        help="cut long videos into chunks of about this many seconds, so one episode uses every worker "
        "(0 = whole videos; the results do not depend on it)",
    ),
    no_progress: bool = NO_PROGRESS,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show the libraries' own log messages"),
) -> None:
    """All build stages: shots, faces/characters, subtitles, segments, clip proposals → DIR/manifest.jsonl.

    Every model of the build runs on the CPU (MediaPipe, dlib, ONNX Runtime); parallelism comes from
    worker processes (--jobs) or Ray tasks (--backend ray), over videos and over chunks of long ones.
    Exit status: 0 when every input was
    built, 1 when any failed (the others are still built and reported), 2 for a usage error."""
    from perr.construct.run import build, print_report

    quiet_libraries(verbose)
    execution = execution_config(backend, jobs, address, num_cpus, no_shared_fs)
    try:
        report = build(
            inputs,
            out,
            config,
            force=force,
            show_progress=not no_progress,
            execution=execution,
            chunk_seconds=chunk_seconds or None,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    print_report(report)
    if report.failures:
        raise typer.Exit(1)


@app.command("shots")
def shots_cmd(
    inputs: list[str] = typer.Argument(..., help="video files, folders or glob patterns"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for <video>.csv (PySceneDetect's format)"),
    detector: str = typer.Option("content", help=help_of(BuildConfig, "detector")),
    threshold: float | None = typer.Option(None, help="detector threshold (default: the detector's own)"),
    min_scene_len: int = typer.Option(15, min=1, help="shortest shot in frames"),
) -> None:
    """Shot boundaries only, one PySceneDetect CSV per video."""
    from rich.console import Console

    from perr.construct.run import video_keys
    from perr.construct.shots import detect_shots
    from perr.video import VideoError, iter_video_files

    if detector not in SHOT_DETECTORS:
        raise typer.BadParameter(
            f"unknown detector {detector!r}; choose one of: {', '.join(SHOT_DETECTORS.names())}"
        )
    console = Console(stderr=True)
    files = iter_video_files(inputs)
    if not files:
        raise typer.BadParameter("no input videos found")
    failed = []
    for path, key in video_keys(files).items():
        try:
            shots = detect_shots(path, detector, threshold, min_scene_len, csv_out=out / f"{key}.csv")
            console.print(f"{path}: {len(shots)} shot(s) → {out / (key + '.csv')}")
        except (VideoError, ValueError, OSError) as e:
            failed.append((path, str(e)))
            console.print(f"[red]✗ {e}[/red]")
    if failed:
        console.print(f"[red]{len(failed)} of {len(files)} file(s) failed[/red]")
        raise typer.Exit(1)


@app.command("stats")
def stats_cmd(
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="clip manifest (JSONL)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for stats.json and the PNG figures"),
) -> None:
    """Dataset statistics of paper §3.3 (durations, shots, appearance ratio, IoM modes, subtitles, classes)."""
    from rich.console import Console

    from perr.manifest import ManifestError
    from perr.report.dataset import dataset_stats

    try:
        s = dataset_stats(manifest, out)
    except ManifestError as e:
        raise typer.BadParameter(str(e)) from e
    c = Console()
    d = s["duration"]
    c.print(f"{s['n_clips']} clips, {s['total_hours']:.2f} h; duration mean {d['mean'] or 0:.1f} s")
    modes = s["interaction_mode"]["ratios"]
    c.print("interaction modes: " + ", ".join(f"{k} {100 * (v or 0):.1f}%" for k, v in modes.items()))
    c.print(f"→ {out / 'stats.json'}, " + ", ".join(s["figures"]))
