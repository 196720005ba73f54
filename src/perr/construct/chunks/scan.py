"""One chunk of a video, decoded once: what its sampled frames give.

A chunk (:mod:`perr.construct.chunks.plan`) *owns* the shots that start inside it; its worker decodes
from a little before its start (`WARMUP` seconds, so PySceneDetect's state — the previous frame, the
minimum scene length, the flash filter — is the single pass's by the time the owned region begins) and on
past its end until the last owned shot ends (the first cut at or after the end). The decode pass is a
:class:`~perr.construct.scan.ShotScan`; over its owned shots the chunk does everything the single pass
does on the sampled frames: face detection and tracking (tracks never cross a cut, so a chunk's tracks
are whole), shot looks and the subtitle band. The subtitle sampler is fed the warm-up samples too, and
keeps reading past the owned shots until the subtitle on screen there ends, so a subtitle that straddles
a chunk boundary is read whole by the chunk where it starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.chunks.plan import WARMUP, Chunk
from perr.construct.config import BuildConfig
from perr.construct.ocr import BandConfig, OcrEngine, SubtitleSampler
from perr.construct.scan import ShotScan, shot_index
from perr.construct.segments import ShotLooks
from perr.faces import FaceDetector, FaceTracker, Track, link_bodies
from perr.people import PersonDetector
from perr.subtitles import Cue
from perr.video import Frame, VideoReader

#: Seconds the subtitle sampler may read past a chunk's last owned shot to finish the subtitle on screen.
OCR_TAIL = 15.0


@dataclass
class ChunkResult:
    """What one chunk of a video gave (see the module docstring); :func:`scan_chunk` makes it."""

    chunk: Chunk
    cuts: list[Any]  # PySceneDetect FrameTimecodes of the owned cuts
    video_end: Any | None  # the last scene's end (last chunk only)
    tracks: list[Track]  # person tracks of the owned shots; `shot` is the start time of the track's shot
    looks: dict[float, tuple[np.ndarray, int]]  # shot start → (histogram sum, samples)
    cues: list[Cue]  # subtitles that start in the owned shots
    frames: int = 0
    faces: int = 0
    ocr_calls: int = 0
    last_time: float = 0.0
    resampled: bool = False
    problems: list[str] = field(default_factory=list)
    bodies: int = 0
    crowded: list[float] = field(default_factory=list)  # times of sampled frames with > cfg.max_faces faces


SampleStream = Iterable[tuple[Frame, float]]  # (frame, start time of the shot it is in)


class _ChunkConsumer:
    """The sampled-frame work of one chunk: faces, bodies, person tracks and looks over the owned shots,
    the subtitle band over the warm-up, the owned shots and the tail.

    The person detector costs more than the face detector, so it runs on the first sample of each shot
    and then once every 1/`person_fps` s of it; its boxes are tracked like faces and, at the end of each
    shot, linked to the face tracks (:func:`perr.faces.link_bodies`)."""

    def __init__(
        self,
        cfg: BuildConfig,
        face: FaceDetector,
        ocr: OcrEngine | None,
        chunk: Chunk,
        person: PersonDetector | None = None,
    ) -> None:
        self.cfg, self.face, self.chunk, self.person = cfg, face, chunk, person
        face_step = cfg.face_every / cfg.fps
        self.tracker = FaceTracker(
            max_gap=max(1.0, 2.2 * face_step), min_size=cfg.min_face, crops=cfg.embeddings_per_track
        )
        self.body_step = 1.0 / cfg.person_fps
        self.body_tracker = FaceTracker(
            min_iou=0.3,
            max_center_shift=0.5,
            max_gap=1.5 * self.body_step + 0.01,
            min_faces=1,
            min_size=cfg.min_face,
            crops=1,
        )
        self.people: list[Track] = []
        self._next_body = -1.0
        self.looks = ShotLooks()
        self.sampler = SubtitleSampler(ocr, BandConfig(top=cfg.band_top)) if ocr is not None else None
        self.frames = self.faces = self.bodies = 0
        self.crowded: list[float] = []
        self.last_time = 0.0
        self.owned_from: float | None = 0.0 if chunk.start <= 0 else None
        self.stop_at: float | None = None  # start of the first shot past the owned region

    def run(self, samples: SampleStream, progress: Callable[[float], None] | None, timer: Any) -> None:
        import time

        cur: float | None = None
        t0 = time.perf_counter()
        for f, shot_start in samples:
            t0 = timer.add("scan", t0)
            self.last_time = f.time
            before = self.chunk.start > 0 and shot_start < self.chunk.start
            after = self.chunk.end is not None and shot_start >= self.chunk.end
            if after:
                if self.stop_at is None:
                    self.stop_at = shot_start
                if self.sampler is None or self.sampler.idle or f.time - self.stop_at > OCR_TAIL:
                    break
            if not before and not after:
                if self.owned_from is None:
                    self.owned_from = shot_start
                self.frames += 1
                first_of_shot = shot_start != cur
                if first_of_shot:
                    self._close_shot(shot_start)
                    cur = shot_start
                self.looks.update(shot_start, f.image)  # type: ignore[arg-type]
                # faces on the absolute sample grid (k = t · fps), so every chunking picks the same frames
                if first_of_shot or round(f.time * self.cfg.fps) % self.cfg.face_every == 0:
                    self._detect(f)
                t0 = timer.add("faces", t0)
            if self.sampler is not None:
                self.sampler.update(f.time, f.image)
                t0 = timer.add("subtitles", t0)
            if progress is not None:
                progress(f.time)

    def _detect(self, f: Frame) -> None:
        """Faces (and, on its own schedule, bodies) of one sampled frame, into the trackers."""
        boxes = self.face.detect(f.image)
        if len(boxes) > self.cfg.max_faces:  # a crowd: the largest faces, bounded work
            self.crowded.append(round(f.time, 4))
            boxes = sorted(boxes, key=lambda b: -b.area * b.score)[: self.cfg.max_faces]
        self.faces += len(boxes)
        self.tracker.update(f.time, f.image, boxes)
        if self.person is not None and f.time >= self._next_body:
            self._next_body = f.time + self.body_step - 1e-6
            bodies = self.person.detect(f.image)[: self.cfg.max_faces]
            self.bodies += len(bodies)
            self.body_tracker.update(f.time, f.image, bodies)

    def _close_shot(self, next_shot: float | None) -> None:
        """End the open shot's tracks and put its faces and bodies together into people."""
        faces = self.tracker.finish()
        bodies = self.body_tracker.finish()
        self.tracker.finished, self.body_tracker.finished = [], []
        if faces or bodies:
            self.people.extend(link_bodies(faces, bodies, next_id=0))
        if next_shot is not None:
            self.tracker.new_shot(next_shot)  # type: ignore[arg-type]
            self.body_tracker.new_shot(next_shot)  # type: ignore[arg-type]
        self._next_body = -1.0

    def finish(self) -> list[Track]:
        """The chunk's person tracks, numbered in the order their shots ended."""
        self._close_shot(None)
        for i, t in enumerate(self.people):
            t.id = i
        return self.people

    def cues(self, end_time: float) -> list[Cue]:
        if self.sampler is None:
            return []
        lo = self.owned_from if self.owned_from is not None else math.inf
        hi = self.stop_at if self.stop_at is not None else math.inf
        return [c for c in self.sampler.finish(end_time) if lo - 1e-6 <= c.start < hi - 1e-6]


def _scan_samples(scan: ShotScan) -> Iterator[tuple[Frame, float]]:
    for f, si in scan:
        yield f, ([0.0, *scan.cut_times])[si]


def _reread_samples(
    path: Path, cfg: BuildConfig, start: float, cut_times: list[float]
) -> Iterator[tuple[Frame, float]]:
    """The chunk's samples again from the file, with the final cuts (the late-cut fallback)."""
    starts = [0.0, *cut_times]
    with VideoReader(path) as reader:
        for f in reader.frames(fps=cfg.fps, start=start or None, max_side=cfg.max_side, anchor=0.0):
            yield f, starts[shot_index(starts, f.time)]


def scan_chunk(
    path: Path,
    cfg: BuildConfig,
    chunk: Chunk,
    face: FaceDetector,
    ocr: OcrEngine | None,
    duration: float,
    timer: Any,
    decode_threading: str = "AUTO",
    progress: Callable[[float], None] | None = None,
    person: PersonDetector | None = None,
) -> ChunkResult:
    """Decode one chunk once (PySceneDetect in the background, the sampled work here) — see module doc."""
    decode_start = 0.0 if chunk.start <= 0 else max(0.0, chunk.start - WARMUP)
    scan = ShotScan(
        path,
        cfg.detector,
        cfg.threshold,
        cfg.min_scene_len,
        cfg.fps,
        cfg.max_side,
        threading_mode=decode_threading,
        start=decode_start,
    )
    work = _ChunkConsumer(cfg, face, ocr, chunk, person)
    work.run(_scan_samples(scan), progress, timer)
    resampled = False
    if not scan.consistent():  # a cut reported too late for a sample already handed out: redo exactly
        resampled = True
        work = _ChunkConsumer(cfg, face, ocr, chunk, person)
        final = [float(s.start) for s in scan.shots[1:]]
        work.run(_reread_samples(path, cfg, decode_start, final), progress, timer)
    last = chunk.end is None
    cuts = [c for c in scan.cuts if chunk.owns(float(c.seconds))]
    end_time = max(duration, work.last_time) if last else work.last_time
    return ChunkResult(
        chunk=chunk,
        cuts=cuts,
        video_end=scan.scenes[-1][1] if last and scan.scenes else None,
        tracks=work.finish(),
        looks={k: (work.looks.sums[k], work.looks.counts[k]) for k in work.looks.sums},
        cues=work.cues(end_time),
        frames=work.frames,
        faces=work.faces,
        ocr_calls=work.sampler.ocr_calls if work.sampler is not None else 0,
        last_time=work.last_time,
        resampled=resampled,
        problems=list(scan.problems),
        bodies=work.bodies,
        crowded=work.crowded,
    )
