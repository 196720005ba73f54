"""`perr build` commands. Heavy imports stay inside the command functions so `perr --help` is instant.

Choices for detectors and engines come from the registries (shots.SHOT_DETECTORS,
faces.FACE_DETECTORS, subtitles.OCR_ENGINES); the registries are cheap to import (no models load).
"""

from __future__ import annotations

from pathlib import Path

import typer

from perr.build.faces import FACE_DETECTORS
from perr.build.shots import SHOT_DETECTORS
from perr.build.subtitles import OCR_ENGINES

app = typer.Typer(help="build stage (see README).", no_args_is_help=True)


def _choice(value: str, names: list[str], what: str) -> str:
    if value not in names:
        raise typer.BadParameter(f"unknown {what} {value!r}; choose one of: {', '.join(names)}")
    return value


_DETECTOR_HELP = "PySceneDetect detector: " + "; ".join(
    f"{n} ({SHOT_DETECTORS.get(n).help}, threshold {SHOT_DETECTORS.get(n).default:g} in "
    f"[{SHOT_DETECTORS.get(n).low:g}, {SHOT_DETECTORS.get(n).high:g}])" for n in SHOT_DETECTORS
)


@app.command("run")
def run_cmd(
    inputs: list[str] = typer.Argument(..., help="video files, folders (searched recursively) or glob patterns"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (resumable: finished videos are skipped)"),
    detector: str = typer.Option("content", help=_DETECTOR_HELP),
    threshold: float | None = typer.Option(None, help="detector threshold (default: the detector's own)"),
    fps: float = typer.Option(3.0, min=0.5, max=30, help="sampled frames per second for faces and subtitles"),
    max_side: int = typer.Option(720, min=160, help="long side of sampled frames (px)"),
    face_detector: str = typer.Option("mediapipe", help="face detector: " + ", ".join(FACE_DETECTORS.names())),
    cluster_threshold: float = typer.Option(0.5, min=0.1, max=1.5, help="dlib distance joining face tracks into one character"),
    min_clip: float = typer.Option(5.0, min=0.5, help="shortest clip proposal (s)"),
    max_clip: float = typer.Option(35.0, min=1.0, help="longest clip proposal (s)"),
    max_characters: int = typer.Option(6, min=2, help="drop windows with more characters than this"),
    subtitles: str = typer.Option("auto", help="auto (sidecar .srt / embedded stream, else OCR) | ocr | none"),
    ocr_engine: str = typer.Option("rapidocr", help="OCR engine: " + ", ".join(OCR_ENGINES.names())),
    force: bool = typer.Option(False, help="redo videos that are already finished"),
    jobs: int = typer.Option(
        0, min=0, help="videos built at once in worker processes (0 = one per core, at most 4; 1 = in this process)"
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
) -> None:
    """All build stages: shots, faces/characters, subtitles, segments, clip proposals → DIR/manifest.jsonl."""
    from perr.build.run import BuildConfig, build, print_report

    _choice(detector, SHOT_DETECTORS.names(), "detector")
    _choice(face_detector, FACE_DETECTORS.names(), "face detector")
    _choice(ocr_engine, OCR_ENGINES.names(), "OCR engine")
    _choice(subtitles, ["auto", "ocr", "none"], "subtitle mode")
    if max_clip < min_clip:
        raise typer.BadParameter(f"--max-clip {max_clip} is shorter than --min-clip {min_clip}")
    cfg = BuildConfig(
        detector=detector, threshold=threshold, fps=fps, max_side=max_side, face_detector=face_detector,
        cluster_threshold=cluster_threshold, min_clip=min_clip, max_clip=max_clip,
        max_characters=max_characters, subtitles=subtitles, ocr_engine=ocr_engine,
    )
    try:
        from perr.build.workers import default_jobs

        report = build(inputs, out, cfg, force=force, show_progress=not no_progress, jobs=jobs or default_jobs())
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    print_report(report)
    if report.failures and len(report.failures) == len(report.results):
        raise typer.Exit(1)


@app.command("shots")
def shots_cmd(
    inputs: list[str] = typer.Argument(..., help="video files, folders or glob patterns"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for <video>.csv (PySceneDetect's format)"),
    detector: str = typer.Option("content", help=_DETECTOR_HELP),
    threshold: float | None = typer.Option(None, help="detector threshold (default: the detector's own)"),
    min_scene_len: int = typer.Option(15, min=1, help="shortest shot in frames"),
) -> None:
    """Shot boundaries only, one PySceneDetect CSV per video."""
    from rich.console import Console

    from perr.build.run import video_keys
    from perr.build.shots import detect_shots
    from perr.video import VideoError, iter_video_files

    _choice(detector, SHOT_DETECTORS.names(), "detector")
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
        if len(failed) == len(files):
            raise typer.Exit(1)


@app.command("stats")
def stats_cmd(
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="clip manifest (JSONL)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for stats.json and the PNG figures"),
) -> None:
    """Dataset statistics of paper §3.3 (durations, shots, appearance ratio, IoM modes, subtitles, classes)."""
    from rich.console import Console

    from perr.build.stats import dataset_stats
    from perr.manifest import ManifestError

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
