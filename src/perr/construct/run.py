"""`perr build run`: every build stage over a batch of videos, resumable, one video per unit of work.

Each video is one unit of work (:func:`perr.construct.outputs.build_video`): an error in one is
recorded and the batch goes on; a re-run skips videos whose ``done`` marker matches the current
configuration. `jobs` > 1 builds several videos at once in worker processes (workers.py). The output
layout is in :mod:`perr.construct.outputs`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from perr.construct.config import BuildConfig
from perr.construct.outputs import build_video, collect_manifest, finished_result
from perr.construct.pipeline import Detectors, VideoResult
from perr.construct.workers import BuildPool
from perr.io import write_json
from perr.video import VideoError, VideoReader, iter_video_files


@dataclass
class BuildReport:
    out: Path
    results: list[VideoResult]
    manifest: Path

    @property
    def failures(self) -> list[VideoResult]:
        return [r for r in self.results if r.status == "failed"]


def video_keys(paths: list[Path]) -> dict[Path, str]:
    """A file-name-safe key per video: its stem, with a short path hash where stems collide."""
    stems: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    out = {}
    for p in paths:
        key = p.stem
        if stems[p.stem] > 1:
            key += "_" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:6]
        out[p] = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
    return out


def build(
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    config: BuildConfig | None = None,
    force: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
    jobs: int = 1,
    pool: BuildPool | None = None,
) -> BuildReport:
    """Run every stage on every input (files, folders, globs); resumable, with per-file isolation.

    `jobs` > 1 builds that many videos at once in worker processes; `pool`, a warm `BuildPool` for the
    same config, is used instead of starting one (benchmarks do that).
    """
    import av

    av.logging.set_level(av.logging.ERROR)
    cfg = config or BuildConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = iter_video_files(inputs)
    if not files:
        raise ValueError("no input videos found")
    for stale in out.rglob(".*.tmp"):  # half-written files of a killed run (perr.io.atomic_path)
        stale.unlink(missing_ok=True)
    keys = video_keys(files)
    console = console or Console(stderr=True)
    by_key: dict[str, VideoResult] = {}
    todo: list[tuple[Path, str]] = []
    for path in files:
        prev = None if force else finished_result(out, path, keys[path], cfg.digest())
        if prev is not None:
            by_key[prev.key] = prev
        else:
            todo.append((path, keys[path]))
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=False,
    ) as bar:
        overall = bar.add_task("videos", total=len(files), completed=len(by_key))

        def finished(res: VideoResult) -> None:
            by_key[res.key] = res
            bar.advance(overall)

        if todo and (pool is not None or (jobs > 1 and len(todo) > 1)):
            own = pool is None
            pool = pool or BuildPool(cfg, min(jobs, len(todo)))
            try:
                pool.map_videos(todo, out, on_done=finished)
            finally:
                if own:
                    pool.close()
        elif todo:
            detectors = Detectors(cfg)
            try:
                for path, key in todo:
                    finished(_build_in_process(path, key, out, cfg, detectors, bar))
            finally:
                detectors.close()
    results = [by_key[keys[p]] for p in files]
    # Only this run's finished videos: a video that failed now keeps no stale proposals from before.
    manifest = collect_manifest(out, [r.key for r in results if r.status != "failed"])
    write_json(
        out / "failures.json", [{"video": r.video, "error": r.error} for r in results if r.status == "failed"]
    )
    return BuildReport(out, results, manifest)


def _build_in_process(
    path: Path, key: str, out: Path, cfg: BuildConfig, detectors: Detectors, bar: Any
) -> VideoResult:
    """One video in this process, with its own progress bar over the video's seconds."""
    task = bar.add_task(path.name[:40], total=None)
    try:
        try:
            with VideoReader(path) as r:
                bar.update(task, total=round(r.info.duration, 1))
        except VideoError as e:
            return VideoResult(str(path), key, "failed", error=e.reason)
        return build_video(
            path, key, out, cfg, detectors, progress=lambda t: bar.update(task, completed=round(t, 1))
        )
    finally:
        bar.remove_task(task)


def print_report(report: BuildReport, console: Console | None = None) -> None:
    """Per-video table and the failure summary."""
    console = console or Console(stderr=True)
    t = Table(title=f"perr build → {report.out}")
    for col in ("video", "status", "seconds", "clips", "dropped", "note"):
        t.add_column(col)
    for r in report.results:
        note = r.error or "; ".join(r.problems)[:80]
        t.add_row(Path(r.video).name, r.status, f"{r.duration:.1f}", str(r.clips), str(r.dropped), note)
    console.print(t)
    n_clips = sum(r.clips for r in report.results)
    console.print(f"{n_clips} clip proposal(s) → {report.manifest}")
    if report.failures:
        console.print(f"[red]{len(report.failures)} of {len(report.results)} file(s) failed:[/red]")
        for r in report.failures:
            console.print(f"  [red]✗[/red] {r.video}: {r.error}")
