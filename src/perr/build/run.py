"""`perr build run`: episodes → one decode pass (PySceneDetect shots in the background; faces,
subtitle band and shot looks on the sampled frames), segments, clip proposals with characters and
candidates, written resumably under an output folder.

Layout of ``--out DIR``::

    shots/<video>.csv          PySceneDetect scene list
    subtitles/<video>.srt|json timed subtitle events (sidecar, embedded stream, or OCR)
    thumbnails/<clip>/<c>.jpg  face crop of each pair candidate
    characters/<video>.npz     mean dlib identity descriptor per character, key "<clip_id>/<c>"
    clips/<video>.jsonl        that video's proposals (Clip records)     ┐ written atomically, last:
    dropped/<video>.jsonl      windows dropped, with the reason in notes │ their presence means the
    done/<video>.json          stage timings, counts, config hash       ┘ video is finished
    manifest.jsonl             all proposals (rebuilt at the end of every run)
    failures.json              the files that failed in the last run, with the reason

Paths inside every JSONL (video, thumbnails) are relative to DIR, where ``manifest.jsonl`` lives.
Each video is one unit of work: an error in one is recorded and the batch goes on; a re-run skips
videos whose ``done`` marker matches the current configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perr.io import atomic_open, read_json, write_json
from perr.manifest import Clip, parse_manifest, write_manifest
from perr.video import VideoError, VideoReader, iter_video_files

#: Timed stages. "scan" is the time spent waiting for the next sampled frame: one decode of the file
#: feeding PySceneDetect's shot pass in a background thread (build/scan.py), which runs concurrently
#: with "faces" and "subtitles" on the sampled frames.
STAGES = ("scan", "faces", "subtitles", "embed", "clips")


@dataclass(frozen=True)
class BuildConfig:
    """Every knob of the build; its hash decides whether finished work can be reused on resume."""

    detector: str = "content"
    threshold: float | None = None
    min_scene_len: int = 15
    fps: float = 3.0  # sampled frames per second for faces, subtitle band and shot looks
    max_side: int = 720  # sampled frames are scaled so their long side is at most this
    face_detector: str = "mediapipe"
    face_min_confidence: float = 0.5
    min_face: float = 24.0  # px (at max_side) — smaller faces are ignored
    embeddings_per_track: int = 2  # dlib descriptors per face track (~55 ms each on an idle core)
    cluster_threshold: float = 0.5  # dlib descriptor distance for one identity (average linkage)
    min_occurrences: int = 2  # a character needs at least this many sampled frames in a clip
    max_characters: int = 6
    n_candidates: int = 3
    min_clip: float = 5.0
    max_clip: float = 35.0
    segment_similarity: float = 0.5
    segment_lookback: float = 30.0
    subtitles: str = "auto"  # auto (sidecar/embedded else OCR) | ocr | none
    ocr_engine: str = "rapidocr"
    band_top: float = 0.70

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class VideoResult:
    video: str
    key: str
    status: str  # done | skipped | failed
    duration: float = 0.0
    clips: int = 0
    dropped: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    error: str | None = None


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


class _Timer:
    """Wall and CPU seconds per stage (CPU time is what a loaded, shared machine distorts least)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._c0 = time.process_time()

    def add(self, stage: str, t0: float) -> float:
        t, c = time.perf_counter(), time.process_time()
        self.s[stage] += t - t0
        self.cpu[stage] += c - self._c0
        self._c0 = c
        return t


class Models:
    """Detectors/engines created once per run and shared by all videos."""

    def __init__(self, cfg: BuildConfig, decode_threading: str = "AUTO") -> None:
        import sklearn.cluster  # noqa: F401  (slow first import; pay it here, not inside a video)

        from perr.build.faces import make_face_detector

        self.face = make_face_detector(cfg.face_detector, min_confidence=cfg.face_min_confidence)
        self._ocr: Any = None
        self._cfg = cfg
        self.decode_threading = decode_threading  # see build.scan.ShotScan

    @property
    def ocr(self) -> Any:
        if self._ocr is None:
            from perr.build.subtitles import OCR_ENGINES

            self._ocr = OCR_ENGINES.get(self._cfg.ocr_engine)()
        return self._ocr

    def close(self) -> None:
        self.face.close()


@dataclass
class SampledPass:
    """What the sampled frames of one video gave: face tracks, shot looks, the OCR sampler."""

    tracker: Any
    looks: Any
    subtitles: Any  # SubtitleSampler, or None when subtitles came from a file or are off
    frames: int = 0
    faces: int = 0
    last_time: float = 0.0


def _sampled_pass(
    frames: Iterable[tuple[Any, int]],
    cfg: BuildConfig,
    models: Models,
    ocr: bool,
    timer: _Timer,
    progress: Callable[[float], None] | None,
) -> SampledPass:
    """Faces + tracking, shot looks and the subtitle band over (frame, shot index) pairs."""
    from perr.build.characters import FaceTracker
    from perr.build.segments import ShotLooks
    from perr.build.subtitles import BandConfig, SubtitleSampler

    sp = SampledPass(
        FaceTracker(min_size=cfg.min_face, crops=cfg.embeddings_per_track),
        ShotLooks(),
        SubtitleSampler(models.ocr, BandConfig(top=cfg.band_top)) if ocr else None,
    )
    cur_shot = -1
    it = iter(frames)
    t0 = time.perf_counter()
    while True:
        item = next(it, None)
        t0 = timer.add("scan", t0)
        if item is None:
            return sp
        f, si = item
        sp.frames += 1
        sp.last_time = f.time
        if si != cur_shot:
            sp.tracker.new_shot(si)
            cur_shot = si
        boxes = models.face.detect(f.image)
        sp.faces += len(boxes)
        sp.tracker.update(f.time, f.image, boxes)
        sp.looks.update(si, f.image)
        t0 = timer.add("faces", t0)
        if sp.subtitles is not None:
            sp.subtitles.update(f.time, f.image)
            t0 = timer.add("subtitles", t0)
        if progress is not None:
            progress(f.time)


def process_video(
    path: Path,
    key: str,
    out: Path,
    cfg: BuildConfig,
    models: Models,
    progress: Callable[[float], None] | None = None,
) -> VideoResult:
    """All stages for one video; writes its outputs atomically and returns what happened."""
    from perr.build.characters import embed_tracks
    from perr.build.proposals import ProposalRules, make_proposals
    from perr.build.scan import ShotScan, shot_index
    from perr.build.segments import clip_windows, segment_shots
    from perr.build.subtitles import existing_subtitles, write_cues_json, write_srt

    timer = _Timer()
    res = VideoResult(video=str(path), key=key, status="done")
    if not path.is_file():
        raise VideoError(path, "file not found")
    with VideoReader(path) as reader:
        info = reader.info
        res.duration = info.duration
        # 1. subtitles the user already has (else OCR in the sampled pass)
        t0 = time.perf_counter()
        subs_source, cues = "none", []
        ocr = False
        if cfg.subtitles != "none":
            found = existing_subtitles(path) if cfg.subtitles == "auto" else None
            if found is not None:
                subs_source, cues = found
            else:
                subs_source, ocr = f"ocr:{cfg.ocr_engine}", True
        t0 = timer.add("subtitles", t0)
        # 2. one decode: PySceneDetect's shot pass in the background, sampled frames handed to us
        scan = ShotScan(path, cfg.detector, cfg.threshold, cfg.min_scene_len, cfg.fps, cfg.max_side,
                        threading_mode=models.decode_threading)
        sampled = _sampled_pass(scan, cfg, models, ocr, timer, progress)
        shots = scan.shots
        scan.write_csv(out / "shots" / f"{key}.csv")
        starts = [s.start for s in shots]
        if not scan.consistent():  # a cut reported too late for a frame already tracked: redo exactly
            res.counts["resampled"] = True
            frames = reader.frames(fps=cfg.fps, max_side=cfg.max_side)
            sampled = _sampled_pass(((f, shot_index(starts, f.time)) for f in frames), cfg, models, ocr, timer, progress)
        t0 = time.perf_counter()
        end_time = max(info.duration, sampled.last_time)
        if sampled.subtitles is not None:
            cues = sampled.subtitles.finish(end_time)
            res.counts["ocr_calls"] = sampled.subtitles.ocr_calls
        if cfg.subtitles != "none":
            write_srt(out / "subtitles" / f"{key}.srt", cues)
            write_cues_json(out / "subtitles" / f"{key}.json", cues, subs_source)
        t0 = timer.add("subtitles", t0)
        n_frames, n_faces, looks = sampled.frames, sampled.faces, sampled.looks
        # 4. segments and their clip windows
        tracks = sampled.tracker.finish()
        segments = segment_shots(shots, looks, cfg.segment_similarity, cfg.segment_lookback)
        plan = [(seg, *clip_windows(seg, cfg.min_clip, cfg.max_clip)) for seg in segments]
        t0 = timer.add("clips", t0)
        # 5. one embedding per track — only for tracks that can make a pair: inside a window that
        #    holds at least two tracks (a lone face or a too-short segment is dropped anyway)
        needed: dict[int, Any] = {}
        for _seg, windows, _rejects in plan:
            for w in windows:
                inside = [t for t in tracks if t.end >= w.start and t.start < w.end]
                if len(inside) >= 2:
                    needed.update((id(t), t) for t in inside)
        embed_tracks(list(needed.values()))
        t0 = timer.add("embed", t0)
        # 6. characters per segment → proposals (and dropped windows, with the reason)
        clips, dropped, embeddings = make_proposals(
            key=key, video=os.path.relpath(path.resolve(), out.resolve()), plan=plan, tracks=tracks, cues=cues,
            cuts=starts[1:], sample_step=1.0 / cfg.fps, out=out, rules=ProposalRules(
                cluster_threshold=cfg.cluster_threshold, min_occurrences=cfg.min_occurrences,
                max_characters=cfg.max_characters, n_candidates=cfg.n_candidates),
            extra={"subtitle_source": subs_source},
        )
        timer.add("clips", t0)
        res.problems = list(dict.fromkeys([*scan.problems, *reader.problems]))
    res.clips, res.dropped = len(clips), len(dropped)
    res.stage_seconds = {k: round(v, 4) for k, v in timer.s.items()}
    res.stage_cpu_seconds = {k: round(v, 4) for k, v in timer.cpu.items()}
    res.counts.update(shots=len(shots), segments=len(segments), sampled_frames=n_frames, faces=n_faces,
                      tracks=len(tracks), embedded_tracks=len(needed), subtitle_events=len(cues))
    with atomic_open(out / "characters" / f"{key}.npz", "wb", encoding=None) as fh:
        np.savez(fh, **embeddings)
    write_manifest(out / "dropped" / f"{key}.jsonl", dropped)
    write_manifest(out / "clips" / f"{key}.jsonl", clips)
    write_json(out / "done" / f"{key}.json", {**asdict(res), "config": cfg.digest()})
    return res


def collect_manifest(out: Path, keys: Iterable[str]) -> Path:
    """Concatenate the per-video proposal files (in input order) into ``manifest.jsonl``."""
    clips: list[Clip] = []
    for key in keys:
        p = out / "clips" / f"{key}.jsonl"
        if p.exists():
            got, errors = parse_manifest(p)
            if errors:
                raise ValueError(f"{p}: {len(errors)} bad record(s): {errors[0]}")
            clips.extend(got)
    return write_manifest(out / "manifest.jsonl", clips)


def build(
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    config: BuildConfig | None = None,
    force: bool = False,
    show_progress: bool = True,
    console: Any = None,
    jobs: int = 1,
    pool: Any = None,
) -> BuildReport:
    """Run every stage on every input (files, folders, globs); resumable, with per-file isolation.

    `jobs` > 1 builds that many videos at once in worker processes (build/workers.py); `pool`, a
    warm `BuildPool` for the same config, is used instead of starting one (benchmarks do that).
    """
    import av
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
        key = keys[path]
        done = out / "done" / f"{key}.json"
        if not force and done.exists():
            prev = read_json(done)
            if prev.get("config") == cfg.digest() and (out / "clips" / f"{key}.jsonl").exists():
                by_key[key] = VideoResult(str(path), key, "skipped", duration=prev.get("duration", 0.0),
                                          clips=prev.get("clips", 0), dropped=prev.get("dropped", 0))
                continue
        todo.append((path, key))
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not show_progress, transient=False,
    ) as bar:
        overall = bar.add_task("videos", total=len(files), completed=len(by_key))

        def finished(res: VideoResult) -> None:
            by_key[res.key] = res
            bar.advance(overall)

        if todo and (pool is not None or (jobs > 1 and len(todo) > 1)):
            from perr.build.workers import BuildPool

            own = pool is None
            pool = pool or BuildPool(cfg, min(jobs, len(todo)))
            try:
                pool.map_videos(todo, out, on_done=finished)
            finally:
                if own:
                    pool.close()
        elif todo:
            models = Models(cfg)
            try:
                for path, key in todo:
                    finished(_build_one(path, key, out, cfg, models, bar))
            finally:
                models.close()
    results = [by_key[keys[p]] for p in files]
    # Only this run's finished videos: a video that failed now keeps no stale proposals from before.
    manifest = collect_manifest(out, [r.key for r in results if r.status != "failed"])
    write_json(out / "failures.json", [{"video": r.video, "error": r.error} for r in results if r.status == "failed"])
    return BuildReport(out, results, manifest)


def _build_one(path: Path, key: str, out: Path, cfg: BuildConfig, models: Models, bar: Any) -> VideoResult:
    """One video in this process, with its own progress bar; errors become a failed result."""
    task = bar.add_task(path.name[:40], total=None)
    try:
        with VideoReader(path) as r:
            bar.update(task, total=round(r.info.duration, 1))
        return process_video(path, key, out, cfg, models,
                             progress=lambda t: bar.update(task, completed=round(t, 1)))
    except VideoError as e:
        return VideoResult(str(path), key, "failed", error=e.reason)
    except Exception as e:  # per-file isolation: record and go on
        return VideoResult(str(path), key, "failed", error=f"{type(e).__name__}: {e}")
    finally:
        bar.remove_task(task)


def print_report(report: BuildReport, console: Any = None) -> None:
    """Per-video table and the failure summary."""
    from rich.console import Console
    from rich.table import Table

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
