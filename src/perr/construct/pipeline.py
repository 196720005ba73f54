"""One video through every build stage, in memory: one decode pass (PySceneDetect shots in the
background; faces, subtitle band and shot looks on the sampled frames), segments, clip windows, one
identity descriptor per useful face track, characters and proposals.

:func:`process_video` returns a :class:`VideoBuild`; :mod:`perr.construct.outputs` writes it. `perr
predict` uses the same function on a single clip and never reads files back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sklearn.cluster  # noqa: F401  (slow first import; paid when the detectors load, not inside a video)

from perr.construct.config import BuildConfig
from perr.construct.ocr import OCR_ENGINES, BandConfig, OcrEngine, SubtitleSampler
from perr.construct.proposals import ProposalRules, Proposals, make_proposals
from perr.construct.scan import ShotScan, shot_index
from perr.construct.segments import ShotLooks, clip_windows, segment_shots
from perr.construct.shots import Shot
from perr.faces import FaceDetector, FaceTracker, Track, embed_tracks, make_face_detector
from perr.subtitles import Cue
from perr.subtitles.streams import existing_subtitles
from perr.video import Frame, VideoError, VideoReader

#: Timed stages. "scan" is the time spent waiting for the next sampled frame: one decode of the file
#: feeding PySceneDetect's shot pass in a background thread (scan.py), which runs concurrently with
#: "faces" and "subtitles" on the sampled frames.
STAGES = ("scan", "faces", "subtitles", "embed", "clips")


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
class VideoBuild:
    """What one video gave, before anything is written: the proposals and dropped windows (paths in them
    relative to the output folder), their thumbnails and identity descriptors, shots and subtitles."""

    result: VideoResult
    proposals: Proposals
    shots: list[Shot]
    scene_list: tuple[list[Any], list[Any]]  # PySceneDetect's (scenes, cuts), for its own CSV writer
    cues: list[Cue]
    subtitle_source: str  # "none" when subtitles are off


class Detectors:
    """The build's models (face detector, OCR engine), created once per run and shared by its videos."""

    def __init__(self, cfg: BuildConfig, decode_threading: str = "AUTO") -> None:
        self.face: FaceDetector = make_face_detector(
            cfg.face_detector, min_confidence=cfg.face_min_confidence
        )
        self._ocr: OcrEngine | None = None
        self._cfg = cfg
        self.decode_threading = decode_threading  # see scan.ShotScan

    @property
    def ocr(self) -> OcrEngine:
        if self._ocr is None:
            self._ocr = OCR_ENGINES.get(self._cfg.ocr_engine)()
        return self._ocr

    def close(self) -> None:
        self.face.close()


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


@dataclass
class SampledPass:
    """What the sampled frames of one video gave: face tracks, shot looks, the OCR sampler."""

    tracker: FaceTracker
    looks: ShotLooks
    subtitles: SubtitleSampler | None  # None when subtitles came from a file or are off
    frames: int = 0
    faces: int = 0
    last_time: float = 0.0


def _sampled_pass(
    frames: Iterable[tuple[Frame, int]],
    cfg: BuildConfig,
    detectors: Detectors,
    ocr: bool,
    timer: _Timer,
    progress: Callable[[float], None] | None,
) -> SampledPass:
    """Faces + tracking, shot looks and the subtitle band over (frame, shot index) pairs."""
    sp = SampledPass(
        FaceTracker(min_size=cfg.min_face, crops=cfg.embeddings_per_track),
        ShotLooks(),
        SubtitleSampler(detectors.ocr, BandConfig(top=cfg.band_top)) if ocr else None,
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
        boxes = detectors.face.detect(f.image)
        sp.faces += len(boxes)
        sp.tracker.update(f.time, f.image, boxes)
        sp.looks.update(si, f.image)
        t0 = timer.add("faces", t0)
        if sp.subtitles is not None:
            sp.subtitles.update(f.time, f.image)
            t0 = timer.add("subtitles", t0)
        if progress is not None:
            progress(f.time)


def _pair_tracks(tracks: list[Track], windows: Iterable[Any]) -> list[Track]:
    """Tracks that can make a pair: inside a window that holds at least two tracks (a lone face or a
    too-short segment is dropped anyway), so only those are embedded."""
    needed: dict[int, Track] = {}
    for w in windows:
        inside = [t for t in tracks if t.end >= w.start and t.start < w.end]
        if len(inside) >= 2:
            needed.update((id(t), t) for t in inside)
    return list(needed.values())


def process_video(
    path: Path,
    key: str,
    base: Path,
    cfg: BuildConfig,
    detectors: Detectors,
    progress: Callable[[float], None] | None = None,
) -> VideoBuild:
    """All stages for one video, in memory. `base` is the folder the proposals' paths are relative to."""
    timer = _Timer()
    res = VideoResult(video=str(path), key=key, status="done")
    if not path.is_file():
        raise VideoError(path, "file not found")
    with VideoReader(path) as reader:
        info = reader.info
        res.duration = info.duration
        # 1. subtitles the user already has (else OCR in the sampled pass)
        t0 = time.perf_counter()
        subs_source, cues, ocr = "none", [], False
        if cfg.subtitles != "none":
            found = existing_subtitles(path) if cfg.subtitles == "auto" else None
            if found is not None:
                subs_source, cues = found
            else:
                subs_source, ocr = f"ocr:{cfg.ocr_engine}", True
        timer.add("subtitles", t0)
        # 2. one decode: PySceneDetect's shot pass in the background, sampled frames handed to us
        scan = ShotScan(
            path,
            cfg.detector,
            cfg.threshold,
            cfg.min_scene_len,
            cfg.fps,
            cfg.max_side,
            threading_mode=detectors.decode_threading,
        )
        sampled = _sampled_pass(scan, cfg, detectors, ocr, timer, progress)
        shots = scan.shots
        starts = [s.start for s in shots]
        if not scan.consistent():  # a cut reported too late for a frame already tracked: redo exactly
            res.counts["resampled"] = True
            frames = reader.frames(fps=cfg.fps, max_side=cfg.max_side)
            sampled = _sampled_pass(
                ((f, shot_index(starts, f.time)) for f in frames), cfg, detectors, ocr, timer, progress
            )
        t0 = time.perf_counter()
        if sampled.subtitles is not None:
            cues = sampled.subtitles.finish(max(info.duration, sampled.last_time))
            res.counts["ocr_calls"] = sampled.subtitles.ocr_calls
        t0 = timer.add("subtitles", t0)
        # 3. segments and their clip windows
        tracks = sampled.tracker.finish()
        segments = segment_shots(shots, sampled.looks, cfg.segment_similarity, cfg.segment_lookback)
        plan = [(seg, *clip_windows(seg, cfg.min_clip, cfg.max_clip)) for seg in segments]
        t0 = timer.add("clips", t0)
        # 4. one embedding per track that can make a pair
        needed = _pair_tracks(tracks, (w for _seg, windows, _rejects in plan for w in windows))
        embed_tracks(needed)
        t0 = timer.add("embed", t0)
        # 5. characters per segment → proposals (and dropped windows, with the reason)
        proposals = make_proposals(
            key=key,
            video=os.path.relpath(path.resolve(), base.resolve()),
            plan=plan,
            tracks=tracks,
            cues=cues,
            cuts=starts[1:],
            sample_step=1.0 / cfg.fps,
            rules=ProposalRules(
                cluster_threshold=cfg.cluster_threshold,
                min_occurrences=cfg.min_occurrences,
                max_characters=cfg.max_characters,
                n_candidates=cfg.n_candidates,
            ),
            extra={"subtitle_source": subs_source},
        )
        timer.add("clips", t0)
        res.problems = list(dict.fromkeys([*scan.problems, *reader.problems]))
    res.clips, res.dropped = len(proposals.clips), len(proposals.dropped)
    res.stage_seconds = {k: round(v, 4) for k, v in timer.s.items()}
    res.stage_cpu_seconds = {k: round(v, 4) for k, v in timer.cpu.items()}
    res.counts.update(
        shots=len(shots),
        segments=len(segments),
        sampled_frames=sampled.frames,
        faces=sampled.faces,
        tracks=len(tracks),
        embedded_tracks=len(needed),
        subtitle_events=len(cues),
    )
    return VideoBuild(res, proposals, shots, (scan.scenes, scan.cuts), cues, subs_source)
