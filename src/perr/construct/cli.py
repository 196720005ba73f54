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
from perr.errors import InputsFailed
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
        raise InputsFailed()


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
        raise InputsFailed(f"{len(failed)} of {len(files)} file(s) failed")


@app.command("stats")
def stats_cmd(
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="clip manifest (JSONL)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for stats.json and the PNG figures"),
) -> None:
    """Dataset statistics of paper §3.3 (durations, shots, appearance ratio, IoM modes, subtitles, classes)."""
    from rich.console import Console

    from perr.report.dataset import dataset_stats

    s = dataset_stats(manifest, out)
    c = Console()
    d = s["duration"]
    c.print(f"{s['n_clips']} clips, {s['total_hours']:.2f} h; duration mean {d['mean'] or 0:.1f} s")
    modes = s["interaction_mode"]["ratios"]
    c.print("interaction modes: " + ", ".join(f"{k} {100 * (v or 0):.1f}%" for k, v in modes.items()))
    c.print(f"→ {out / 'stats.json'}, " + ", ".join(s["figures"]))


def _parse_edits(merge: list[str], split: list[str], name: list[str]) -> list[dict]:
    """The edit operations of `perr build cast`'s options, in the order merge, split, name."""
    edits: list[dict] = []
    for m in merge:
        ids = [x.strip() for x in m.split(",") if x.strip()]
        if len(ids) < 2:
            raise typer.BadParameter(f"--merge {m!r}: give two or more characters, e.g. c1,c4")
        edits.append({"op": "merge", "into": ids[0], "from": ids[1:]})
    for s in split:
        cid, sep, tracks = s.partition(":")
        try:
            ids = [int(x) for x in tracks.split(",") if x.strip()]
        except ValueError:
            ids = []
        if not sep or not ids:
            raise typer.BadParameter(f"--split {s!r}: expected CHARACTER:TRACK[,TRACK...], e.g. c2:12,15")
        edits.append({"op": "split", "character": cid.strip(), "tracks": ids})
    for n in name:
        cid, sep, text = n.partition("=")
        if not sep:
            raise typer.BadParameter(f"--name {n!r}: expected CHARACTER=NAME, e.g. c1=Roxanne")
        edits.append({"op": "name", "character": cid.strip(), "name": text.strip()})
    return edits


@app.command("cast")
def cast_cmd(
    out: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="the output folder of `perr build run`"
    ),
    video: str = typer.Argument(..., help="the video's key (the stem of characters/<video>.json)"),
    merge: list[str] = typer.Option([], help="merge characters into the first: c1,c4[,c7] (repeatable)"),
    split: list[str] = typer.Option(
        [], help="move tracks (ids from the cast file) off a character into a new one: c2:12,15 (repeatable)"
    ),
    name: list[str] = typer.Option([], help="name a character: c1=Roxanne (repeatable)"),
    reset: bool = typer.Option(False, help="drop every saved edit of this video first"),
) -> None:
    """Show or edit a video's cast: merge, split and name characters. The clips, the cast file, the
    thumbnails and the manifest are re-made from the build's saved state — nothing is decoded again —
    so later `perr annotate export` and `perr features extract` see the edited ids and names. Edits are
    kept in characters/<video>.edits.json (replayed by a re-run of `perr build run`)."""
    from rich.console import Console
    from rich.table import Table

    from perr.construct.cast_edits import CastEditError, append_edits, edits_path
    from perr.construct.recast import cast_summary, recast

    edits = _parse_edits(merge, split, name)
    console = Console()
    if reset or edits:
        previous = edits_path(out, video).read_bytes() if edits_path(out, video).exists() else None
        if reset:
            edits_path(out, video).unlink(missing_ok=True)
        append_edits(out, video, edits)
        try:
            recast(out, video)
        except CastEditError:  # leave the saved edits as they were: the build folder is unchanged
            if previous is None:
                edits_path(out, video).unlink(missing_ok=True)
            else:
                edits_path(out, video).write_bytes(previous)
            raise
    cast = cast_summary(out, video)
    t = Table(title=f"cast of {video} ({out / 'characters' / (video + '.json')})")
    for col in ("id", "name", "seen as", "seconds", "clips", "tracks"):
        t.add_column(col)
    for c in cast["characters"]:
        t.add_row(
            c["id"],
            c["name"] or "",
            c["seen_as"],
            f"{c['seconds']:.1f}",
            str(len(c["clips"])),
            ",".join(map(str, c["tracks"][:12])) + ("…" if len(c["tracks"]) > 12 else ""),
        )
    console.print(t)
