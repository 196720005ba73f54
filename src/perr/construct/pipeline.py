"""One video through every build stage: a decode pass per chunk (PySceneDetect shots in the background;
faces, subtitle band and shot looks on the sampled frames — :mod:`perr.construct.chunks`), then over the
whole video: story segments, clip windows, one identity descriptor per useful face track, characters and
proposals.

:func:`process_video` does it all in this process and returns a :class:`VideoBuild`; the batch
(:mod:`perr.construct.run`) spreads chunks and descriptors over worker processes and calls the same
pieces (:func:`subtitle_plan`, :func:`finish_video`). :mod:`perr.construct.outputs` writes the result;
`perr predict` uses :func:`process_video` on a single clip and never reads files back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.cast import Cast, make_cast, shot_people
from perr.construct.cast_edits import apply_edits
from perr.construct.chunks import ChunkResult, MergedChunks, merge_chunks, plan_chunks, scan_chunk
from perr.construct.config import BuildConfig
from perr.construct.ocr import OCR_ENGINES, OcrEngine
from perr.construct.proposals import ProposalRules, Proposals, make_proposals
from perr.construct.segments import Segment, clip_windows, segment_shots
from perr.construct.shots import Shot
from perr.faces import FACE_DETECTORS, FaceDetector, Track, embed_tracks, make_face_detector
from perr.faces.tracker import STILL_SECONDS, is_still
from perr.logs import native_noise_filtered
from perr.people import PersonDetector, make_person_detector
from perr.subtitles import Cue
from perr.subtitles.streams import existing_subtitles
from perr.video import VideoError, VideoInfo, fit_size, probe

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
    tracks: list[Track] = field(default_factory=list)
    cast: Cast = field(default_factory=Cast)
    segments: list[Segment] = field(default_factory=list)
    box_scale: float = 1.0  # source pixels per pixel of the sampled frames
    sample_step: float = 1.0 / 3  # seconds a sampled face stands for
    body_step: float | None = None  # seconds a body detection stands for (None: no person detector)


def takes_option(detector: str, option: str) -> bool:
    """Whether a registered face detector's constructor takes `option`."""
    import inspect

    return option in inspect.signature(FACE_DETECTORS.get(detector)).parameters


class Detectors:
    """The build's models (face detector, OCR engine), created once per process and shared by its work."""

    def __init__(self, cfg: BuildConfig, decode_threading: str = "AUTO") -> None:
        with native_noise_filtered():  # MediaPipe's start-up chatter, on the first detection
            options: dict[str, Any] = {}
            if cfg.face_min_confidence is not None:
                options["min_confidence"] = cfg.face_min_confidence
            if cfg.face_min_side is not None and takes_option(cfg.face_detector, "min_side"):
                options["min_side"] = cfg.face_min_side  # detectors that cannot upscale ignore it
            self.face: FaceDetector = make_face_detector(cfg.face_detector, **options)
            self.face.detect(np.zeros((64, 64, 3), np.uint8))
            self.person: PersonDetector | None = None
            if cfg.person_detector != "none":
                self.person = make_person_detector(cfg.person_detector)
                self.person.detect(np.zeros((64, 64, 3), np.uint8))
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
        if self.person is not None:
            self.person.close()


class Timer:
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

    def merge(self, other: Mapping[str, Mapping[str, float]]) -> None:
        for stage, v in other.get("wall", {}).items():
            self.s[stage] += v
        for stage, v in other.get("cpu", {}).items():
            self.cpu[stage] += v

    def to_json(self) -> dict[str, dict[str, float]]:
        return {"wall": dict(self.s), "cpu": dict(self.cpu)}


@dataclass(frozen=True)
class SubtitlePlan:
    """Where a video's subtitles come from: a file the user has, OCR in the sampled pass, or none."""

    source: str
    cues: tuple[Cue, ...] = ()
    ocr: bool = False


def subtitle_plan(path: Path, cfg: BuildConfig) -> SubtitlePlan:
    """Subtitles the user already has (sidecar .srt, embedded stream) win; else OCR, unless turned off."""
    if cfg.subtitles == "none":
        return SubtitlePlan("none")
    found = existing_subtitles(path) if cfg.subtitles == "auto" else None
    if found is not None:
        return SubtitlePlan(found[0], tuple(found[1]))
    return SubtitlePlan(f"ocr:{cfg.ocr_engine}", ocr=True)


def mostly_still(group: list[Track]) -> bool:
    """A group of tracks seen mostly in tracks that never moved: a picture (:func:`is_still`)."""
    still = sum(len(t.faces) for t in group if is_still(t))
    return still * 2 >= sum(len(t.observations) for t in group) and still > 0


def identity_tracks(tracks: Iterable[Track], min_face: float) -> list[Track]:
    """Tracks whose faces are large enough for an identity descriptor (a face of a few pixels aligns
    badly and its descriptor says little): these are embedded and can join people of other shots."""
    return [t for t in tracks if t.crops and t.faces and (t.face_height() or 0.0) >= min_face]


def finish_video(
    path: Path,
    key: str,
    base: Path,
    cfg: BuildConfig,
    scan: MergedChunks,
    subs: SubtitlePlan,
    res: VideoResult,
    timer: Timer,
    embed: Callable[[list[Track]], None] = embed_tracks,
    box_scale: float = 1.0,
    edits: Sequence[Mapping[str, Any]] = (),
) -> VideoBuild:
    """From the merged pass to proposals: descriptors of the tracks with a usable face (`embed` fills
    `track.embedding`; worker processes in a batch), the cast of the whole video (with a user's
    `edits`), story segments, windows, characters, proposals."""
    t0 = time.perf_counter()
    cues = scan.cues if subs.ocr else list(subs.cues)
    needed = identity_tracks(scan.tracks, cfg.identity_min_face)
    embed(needed)
    t0 = timer.add("embed", t0)
    stills = [t for t in scan.tracks if is_still(t)]
    cast = apply_edits(
        make_cast(scan.tracks, cfg.cluster_threshold, cfg.min_occurrences, not_a_person=mostly_still), edits
    )
    segments = segment_shots(
        scan.shots,
        scan.looks,
        cfg.segment_similarity,
        cfg.segment_lookback,
        people=shot_people(cast),
        people_lookback=cfg.segment_people_lookback,
        min_seconds=cfg.segment_min_seconds,
    )
    plan = [(seg, *clip_windows(seg, cfg.min_clip, cfg.max_clip)) for seg in segments]
    body_step = 1.0 / cfg.person_fps if cfg.person_detector != "none" else None
    proposals = make_proposals(
        key=key,
        video=os.path.relpath(path.resolve(), base.resolve()),
        plan=plan,
        cast=cast,
        cues=cues,
        cuts=[s.start for s in scan.shots[1:]],
        sample_step=cfg.face_every / cfg.fps,
        rules=ProposalRules(
            min_occurrences=cfg.min_occurrences,
            max_characters=cfg.max_characters,
            n_candidates=cfg.n_candidates,
        ),
        extra={"subtitle_source": subs.source, "cast": f"characters/{key}.json"},
        crowded=scan.crowded,
        max_faces=cfg.max_faces,
        box_scale=box_scale,
        body_step=body_step,
    )
    timer.add("clips", t0)
    res.problems = list(dict.fromkeys([*res.problems, *scan.problems]))
    res.clips, res.dropped = len(proposals.clips), len(proposals.dropped)
    res.stage_seconds = {k: round(v, 4) for k, v in timer.s.items()}
    res.stage_cpu_seconds = {k: round(v, 4) for k, v in timer.cpu.items()}
    if scan.resampled:
        res.counts["resampled"] = True
    if subs.ocr:
        res.counts["ocr_calls"] = scan.ocr_calls
    res.counts.update(
        shots=len(scan.shots),
        segments=len(segments),
        sampled_frames=scan.frames,
        faces=scan.faces,
        bodies=scan.bodies,
        tracks=len(scan.tracks),
        still_face_tracks=len(stills),
        crowded_frames=len(scan.crowded),
        body_only_tracks=sum(1 for t in scan.tracks if not t.faces),
        embedded_tracks=len(needed),
        characters=len(cast.members),
        subtitle_events=len(cues),
    )
    if scan.crowded:
        res.problems.append(
            f"{len(scan.crowded)} sampled frame(s) held more faces than max_faces {cfg.max_faces} (a crowd): "
            "only the largest were kept"
        )
    if stills:
        res.problems.append(
            f"{len(stills)} face track(s) never moved for {STILL_SECONDS:g} s or more (a photo, poster or "
            "still screen?): not counted as people"
        )
    if not scan.tracks:
        res.problems.append("no person found in any sampled frame")
    return VideoBuild(
        res,
        proposals,
        scan.shots,
        scan.scene_list,
        cues,
        subs.source,
        scan.tracks,
        cast,
        segments,
        box_scale,
        sample_step=cfg.face_every / cfg.fps,
        body_step=body_step,
    )


def process_video(
    path: Path,
    key: str,
    base: Path,
    cfg: BuildConfig,
    detectors: Detectors,
    progress: Callable[[float], None] | None = None,
    chunk_seconds: float | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
) -> VideoBuild:
    """All stages for one video in this process. `base` is the folder the proposals' paths are relative
    to; `chunk_seconds` splits a long video as the batch does (results are the same either way)."""
    if not path.is_file():
        raise VideoError(path, "file not found")
    timer = Timer()
    info = probe(path)
    duration = info.duration
    res = VideoResult(video=str(path), key=key, status="done", duration=duration)
    t0 = time.perf_counter()
    subs = subtitle_plan(path, cfg)
    timer.add("subtitles", t0)
    ocr = detectors.ocr if subs.ocr else None
    scans = []
    for chunk in plan_chunks(path, duration, chunk_seconds):
        scan = scan_chunk(
            path,
            cfg,
            chunk,
            detectors.face,
            ocr,
            duration,
            timer,
            detectors.decode_threading,
            progress,
            person=detectors.person,
        )
        if on_chunk is not None:
            on_chunk(scan)
        scans.append(scan)
    return finish_video(
        path, key, base, cfg, merge_chunks(scans), subs, res, timer, box_scale=box_scale(info, cfg)
    )


def box_scale(info: VideoInfo, cfg: BuildConfig) -> float:
    """Source pixels per pixel of the sampled frames (which are at most `max_side` on their long side)."""
    size = fit_size(info.width, info.height, cfg.max_side)
    return 1.0 if size is None else info.width / size[0]
