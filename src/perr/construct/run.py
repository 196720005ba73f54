"""`perr build run`: every build stage over the videos given, resumable, spread over worker processes.

Units of work (:mod:`perr.construct.workers`): each video is cut into chunks (a long episode into many,
a short clip is one); chunks of all videos go to the pool at once, longest videos first. When a video's
chunks are in, they are merged here, its useful face tracks are embedded by the pool, and its proposals
are written (:mod:`perr.construct.outputs`). An error in one video is recorded and the others go on; a
re-run skips videos whose ``done`` marker matches the configuration and, inside a video that was
interrupted, the chunks already finished (``.partial/<video>/``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sklearn.cluster  # noqa: F401  (clustering identities, in this process only: paid here, not inside a video's timing)
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from perr.construct.cast_edits import read_edits
from perr.construct.chunks import (
    CHUNK_SECONDS,
    Chunk,
    load_chunk,
    merge_chunks,
    plan_chunks,
    saved_chunks,
    start_partial,
)
from perr.construct.config import BuildConfig
from perr.construct.outputs import collect_manifest, finished_result, write_video_outputs
from perr.construct.pipeline import SubtitlePlan, Timer, VideoResult, box_scale, finish_video, subtitle_plan
from perr.construct.recast import keep_state
from perr.construct.workers import build_executor, run_chunk, run_embed
from perr.execution import ExecutionConfig, Executor, Runner
from perr.faces import Track
from perr.faults import checkpoint_reached
from perr.io import write_json
from perr.logs import quiet_ffmpeg
from perr.progress import progress_allowed, progress_columns
from perr.video import VideoError, VideoInfo, iter_video_files, probe

#: Tracks per descriptor task (a few crops each, ~9 ms a crop).
EMBED_BATCH = 8


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


@dataclass
class _Video:
    """One video in flight: its plan, the chunks still running and what went wrong."""

    path: Path
    key: str
    info: VideoInfo
    subs: SubtitlePlan
    chunks: list[Chunk]
    partial: Path
    pending: set[int] = field(default_factory=set)
    resumed: int = 0  # chunks an interrupted run had finished
    errors: list[str] = field(default_factory=list)
    timer: Timer = field(default_factory=Timer)


class _BuildQueue:
    """Schedules the chunks of every video on an executor and finishes each video when its chunks are in."""

    def __init__(
        self,
        out: Path,
        cfg: BuildConfig,
        executor: Executor,
        chunk_seconds: float | None,
        bars: Any,
        shared_fs: bool = True,
    ) -> None:
        self.out, self.cfg, self.executor, self.chunk_seconds, self.bars = (
            out,
            cfg,
            executor,
            chunk_seconds,
            bars,
        )
        self.runner = Runner(executor, shared_fs=shared_fs)
        self.videos: dict[str, _Video] = {}
        self.shown: dict[tuple[str, int], _ChunkProgress] = {}
        self.results: dict[str, VideoResult] = {}

    def start(self, path: Path, key: str) -> _Video | None:
        try:
            info = probe(path)
            subs = subtitle_plan(path, self.cfg)
            chunks = plan_chunks(path, info.duration, self.chunk_seconds)
        except VideoError as e:
            return self._failed(path, key, e.reason)
        except (OSError, ValueError) as e:  # e.g. a malformed sidecar .srt
            return self._failed(path, key, f"{type(e).__name__}: {e}")
        partial = self.out / ".partial" / key
        start_partial(partial, self.cfg.digest())
        video = self.videos[key] = _Video(path, key, info, subs, chunks, partial)
        done = saved_chunks(partial, self.cfg.digest())
        for c in chunks:
            if c.index in done:
                self.bars.advance("decode", _length(c, info.duration))
                video.resumed += 1
                continue
            video.pending.add(c.index)
            self._submit(video, c)
        return video

    def _failed(self, path: Path, key: str, error: str, duration: float = 0.0) -> None:
        self.results[key] = VideoResult(str(path), key, "failed", duration=duration, error=error)
        self.bars.advance("videos", 1)

    def _submit(self, video: _Video, chunk: Chunk) -> None:
        progress = None
        if self.executor.backend == "inline":  # per-sample progress; workers report per chunk
            progress = self.shown[(video.key, chunk.index)] = self.bars.chunk_progress(
                chunk, video.info.duration
            )
        self.runner.submit(
            (video.key, chunk.index),
            run_chunk,
            str(video.path.resolve()),  # workers elsewhere (Ray) have another working directory
            self.cfg,
            chunk,
            video.info.duration,
            video.subs.ocr,
            partial=str(video.partial.resolve()),
            progress=progress,
            output="partial",
        )

    def run(self, videos: list[_Video]) -> None:
        for video in videos:
            if not video.pending:
                self._finish(video)
        for (key, index), r, error in self.runner.completed():
            video = self.videos[key]
            chunk = video.chunks[index]
            if error is not None:  # the unit itself crashed (a worker died twice on it, a lost Ray task)
                r = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            if r["ok"]:
                video.timer.merge(r["timer"])
            else:
                video.errors.append(f"{_span(chunk)}: {r['error']}" if len(video.chunks) > 1 else r["error"])
            shown = self.shown.pop((key, index)).shown if (key, index) in self.shown else 0.0
            self.bars.advance("decode", _length(chunk, video.info.duration) - shown)
            video.pending.discard(index)
            if not video.pending:
                self._finish(video)

    def _embed(self, tracks: list[Track]) -> None:
        """Descriptors of the tracks that can make a pair, in batches on the pool."""
        self.bars.add_total("descriptors", len(tracks))
        batches = [tracks[i : i + EMBED_BATCH] for i in range(0, len(tracks), EMBED_BATCH)]
        futs = [
            self.executor.submit(run_embed, [[(crop, box) for _, crop, box in t.crops] for t in b])
            for b in batches
        ]
        for batch, fut in zip(batches, futs, strict=True):
            for track, vec in zip(batch, fut.result(), strict=True):
                track.embedding = vec
            self.bars.advance("descriptors", len(batch))

    def _finish(self, video: _Video) -> None:
        path, key = video.path, video.key
        if video.errors:
            self._failed(path, key, "; ".join(video.errors), video.info.duration)
            return
        try:
            scans = [load_chunk(p) for _, p in sorted(saved_chunks(video.partial, self.cfg.digest()).items())]
            res = VideoResult(str(path), key, "done", duration=video.info.duration)
            vb = finish_video(
                path,
                key,
                self.out,
                self.cfg,
                merge_chunks(scans),
                video.subs,
                res,
                video.timer,
                embed=self._embed,
                box_scale=box_scale(video.info, self.cfg),
                edits=read_edits(self.out, key),
            )
            vb.result.counts["chunks"] = len(video.chunks)
            vb.result.counts["chunks_resumed"] = video.resumed
            write_video_outputs(vb, self.out, self.cfg.digest())
            keep_state(vb, video.partial, self.out, self.cfg, path)
        except Exception as e:  # per-file isolation: record and go on
            self._failed(path, key, f"{type(e).__name__}: {e}", video.info.duration)
            return
        self.results[key] = vb.result
        self.bars.advance("videos", 1)
        checkpoint_reached("build.video")


def _length(chunk: Chunk, duration: float) -> float:
    return max(0.0, (chunk.end if chunk.end is not None else duration) - chunk.start)


def _span(chunk: Chunk) -> str:
    end = f"{chunk.end:.1f}" if chunk.end is not None else "end"
    return f"{chunk.start:.1f}–{end} s"


class _Bars:
    """The progress of a build, per stage, with an ETA: videos, seconds of video decoded (moves chunk by
    chunk inside a long episode, sample by sample with --jobs 1) and identity descriptors."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = Progress(
            *progress_columns("{task.description:<12}"),
            console=console,
            disable=not progress_allowed(enabled),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def add(self, name: str, total: float, completed: float = 0.0) -> None:
        self.tasks[name] = self.progress.add_task(name, total=round(total, 1), completed=completed)

    def add_total(self, name: str, extra: float) -> None:
        task = self.progress.tasks[self.tasks[name]]
        self.progress.update(self.tasks[name], total=(task.total or 0) + extra)

    def advance(self, name: str, amount: float) -> None:
        self.progress.advance(self.tasks[name], round(amount, 1))

    def chunk_progress(self, chunk: Chunk, duration: float) -> _ChunkProgress:
        return _ChunkProgress(self, chunk, duration)


class _ChunkProgress:
    """Per-sample progress of a chunk run in this process: the decode bar follows the samples."""

    def __init__(self, bars: _Bars, chunk: Chunk, duration: float) -> None:
        self.bars, self.start = bars, chunk.start
        self.end = chunk.end if chunk.end is not None else duration
        self.shown = 0.0

    def __call__(self, t: float) -> None:
        done = min(max(t, self.start), self.end) - self.start
        if done > self.shown:
            self.bars.advance("decode", done - self.shown)
            self.shown = done


def build(
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    config: BuildConfig | None = None,
    force: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
    execution: ExecutionConfig | None = None,
    executor: Executor | None = None,
    chunk_seconds: float | None = CHUNK_SECONDS,
) -> BuildReport:
    """Run every stage on every input (files, folders, globs); resumable, with per-file isolation.

    Chunks and descriptors run where `execution` says (default: this process; ``local`` with N jobs,
    or Ray); `executor`, a warm one from :func:`perr.construct.workers.build_executor` for the same
    config, is used instead of starting one (benchmarks do that). `chunk_seconds` (None: off) cuts long
    videos so that one episode uses every worker; results do not depend on it.
    """
    quiet_ffmpeg()
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
    finished: dict[str, VideoResult] = {}
    todo: list[tuple[Path, str]] = []
    for path in files:
        prev = None if force else finished_result(out, path, keys[path], cfg.digest())
        if prev is not None:
            finished[prev.key] = prev
        else:
            todo.append((path, keys[path]))
    now: dict[str, VideoResult] = {}
    if todo:
        own = executor is None
        execution = execution or ExecutionConfig(backend="inline")
        executor = executor or build_executor(cfg, execution, out)
        try:
            with _Bars(console, show_progress) as bars:
                bars.add("videos", len(files), completed=len(finished))
                bars.add("decode", sum(_probe_seconds(p) for p, _ in todo))
                bars.add("descriptors", 0)
                queue = _BuildQueue(out, cfg, executor, chunk_seconds, bars, execution.shared_fs)
                by_size = sorted(todo, key=lambda pk: -_size(pk[0]))  # longest first: the pool stays full
                queue.run([v for v in (queue.start(p, k) for p, k in by_size) if v is not None])
                now = queue.results
        finally:
            if own:
                executor.close()
    results = [finished.get(keys[p]) or now[keys[p]] for p in files]
    # Only this run's finished videos: a video that failed now keeps no stale proposals from before.
    manifest = collect_manifest(out, [r.key for r in results if r.status != "failed"])
    write_json(
        out / "failures.json", [{"video": r.video, "error": r.error} for r in results if r.status == "failed"]
    )
    return BuildReport(out, results, manifest)


def _probe_seconds(path: Path) -> float:
    try:
        return probe(path).duration
    except VideoError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


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
