"""A long video in chunks, so that several worker processes share one episode.

The video is cut at keyframes into chunks of about `chunk_seconds`. A chunk *owns* the shots that start
inside it; its worker decodes from a little before its start (`warmup` seconds, so PySceneDetect's state —
the previous frame, the minimum scene length, the flash filter — is the single pass's by the time the
owned region begins) and on past its end until the last owned shot ends (the first cut at or after the
end). Over its owned shots it does everything the single pass does on the sampled frames: face detection
and tracking (tracks never cross a cut, so a chunk's tracks are whole), shot looks and the subtitle band.
The subtitle sampler is fed the warm-up samples too, and keeps reading past the owned shots until the
subtitle on screen there ends, so a subtitle that straddles a chunk boundary is read whole by the chunk
where it starts.

:func:`merge_chunks` puts the chunks' cuts, tracks, looks and subtitles together into what one pass over
the whole video gives. The cut list is the single pass's exactly when each warm-up is longer than the
detector's memory (tests check this on generated episodes and on PySceneDetect's golden cut lists).
A one-chunk plan (short videos) is the single pass itself.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.config import BuildConfig
from perr.construct.ocr import BandConfig, OcrEngine, SubtitleSampler, merge_adjacent
from perr.construct.scan import ShotScan, shot_index
from perr.construct.segments import ShotLooks
from perr.construct.shots import Shot
from perr.faces import FaceBox, FaceDetector, FaceTracker, Track, TrackedFace
from perr.io import atomic_path, write_json
from perr.subtitles import Cue
from perr.video import Frame, VideoReader, open_container

#: Seconds decoded before a chunk's owned start: PySceneDetect's memory (previous frame, min_scene_len
#: of 15 frames, the adaptive detector's window) is well under this at any common frame rate.
WARMUP = 5.0
#: Default chunk length of `perr build run`: long enough that the warm-up and tail are a few percent, short
#: enough that a 20-minute episode keeps 2–4 workers busy and the progress bar moves every minute or so.
CHUNK_SECONDS = 120.0
#: Seconds the subtitle sampler may read past a chunk's last owned shot to finish the subtitle on screen.
OCR_TAIL = 15.0


@dataclass(frozen=True)
class Chunk:
    """Owned region [start, end) of a video; `end` None for the last chunk."""

    index: int
    start: float
    end: float | None

    def owns(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


def plan_chunks(path: Path, duration: float, chunk_seconds: float | None) -> list[Chunk]:
    """Chunks of about `chunk_seconds`, each starting at the keyframe at or before its nominal start
    (seeks land there exactly); one chunk when the video is short or chunking is off."""
    if not chunk_seconds or duration <= 1.5 * chunk_seconds:
        return [Chunk(0, 0.0, None)]
    starts = [0.0]
    container = open_container(path)
    try:
        vs = container.streams.video[0]
        tb = float(vs.time_base)
        origin = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        for k in range(1, math.ceil(duration / chunk_seconds)):
            target = k * chunk_seconds
            container.seek(int((target + origin) / tb), stream=vs, backward=True, any_frame=False)
            pkt = next((p for p in container.demux(vs) if p.pts is not None), None)
            if pkt is None:
                break
            t = round(pkt.pts * tb - origin, 6)
            if t > starts[-1] + 2 * WARMUP and t < duration - chunk_seconds / 4:
                starts.append(t)
    finally:
        container.close()
    return [Chunk(i, s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]


@dataclass
class ChunkScan:
    """What one chunk of a video gave (see the module docstring)."""

    chunk: Chunk
    cuts: list[Any]  # PySceneDetect FrameTimecodes of the owned cuts
    video_end: Any | None  # the last scene's end (last chunk only)
    tracks: list[Track]  # face tracks of the owned shots; `shot` is the start time of the track's shot
    looks: dict[float, tuple[np.ndarray, int]]  # shot start → (histogram sum, samples)
    cues: list[Cue]  # subtitles that start in the owned shots
    frames: int = 0
    faces: int = 0
    ocr_calls: int = 0
    last_time: float = 0.0
    resampled: bool = False
    problems: list[str] = field(default_factory=list)


SampleStream = Iterable[tuple[Frame, float]]  # (frame, start time of the shot it is in)


class _ChunkConsumer:
    """The sampled-frame work of one chunk: faces, tracks and looks over the owned shots, the subtitle
    band over the warm-up, the owned shots and the tail."""

    def __init__(self, cfg: BuildConfig, face: FaceDetector, ocr: OcrEngine | None, chunk: Chunk) -> None:
        self.cfg, self.face, self.chunk = cfg, face, chunk
        self.tracker = FaceTracker(min_size=cfg.min_face, crops=cfg.embeddings_per_track)
        self.looks = ShotLooks()
        self.sampler = SubtitleSampler(ocr, BandConfig(top=cfg.band_top)) if ocr is not None else None
        self.frames = self.faces = 0
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
                if shot_start != cur:
                    self.tracker.new_shot(shot_start)  # type: ignore[arg-type]
                    cur = shot_start
                boxes = self.face.detect(f.image)
                self.faces += len(boxes)
                self.tracker.update(f.time, f.image, boxes)
                self.looks.update(shot_start, f.image)  # type: ignore[arg-type]
                t0 = timer.add("faces", t0)
            if self.sampler is not None:
                self.sampler.update(f.time, f.image)
                t0 = timer.add("subtitles", t0)
            if progress is not None:
                progress(f.time)

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
) -> ChunkScan:
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
    work = _ChunkConsumer(cfg, face, ocr, chunk)
    work.run(_scan_samples(scan), progress, timer)
    resampled = False
    if not scan.consistent():  # a cut reported too late for a sample already handed out: redo exactly
        resampled = True
        work = _ChunkConsumer(cfg, face, ocr, chunk)
        final = [float(s.start) for s in scan.shots[1:]]
        work.run(_reread_samples(path, cfg, decode_start, final), progress, timer)
    last = chunk.end is None
    cuts = [c for c in scan.cuts if chunk.owns(float(c.seconds))]
    end_time = max(duration, work.last_time) if last else work.last_time
    return ChunkScan(
        chunk=chunk,
        cuts=cuts,
        video_end=scan.scenes[-1][1] if last and scan.scenes else None,
        tracks=work.tracker.finish(),
        looks={k: (work.looks.sums[k], work.looks.counts[k]) for k in work.looks.sums},
        cues=work.cues(end_time),
        frames=work.frames,
        faces=work.faces,
        ocr_calls=work.sampler.ocr_calls if work.sampler is not None else 0,
        last_time=work.last_time,
        resampled=resampled,
        problems=list(scan.problems),
    )


@dataclass
class VideoScan:
    """One pass over a whole video, put together from its chunks."""

    shots: list[Shot]
    scene_list: tuple[list[Any], list[Any]]  # PySceneDetect's (scenes, cuts), for its own CSV writer
    tracks: list[Track]  # `shot` is the global shot index
    looks: ShotLooks  # keyed by global shot index
    cues: list[Cue]
    frames: int
    faces: int
    ocr_calls: int
    last_time: float
    resampled: bool
    problems: list[str]


def merge_chunks(scans: list[ChunkScan]) -> VideoScan:
    """The chunks of one video (any order) as one pass: cuts, shots, tracks, looks and subtitles."""
    import scenedetect

    scans = sorted(scans, key=lambda s: s.chunk.index)
    cuts = sorted((c for s in scans for c in s.cuts), key=lambda c: c.seconds)
    end = scans[-1].video_end
    if end is None:
        raise ValueError("the last chunk has no video end: chunks are missing")
    first = scenedetect.FrameTimecode(0, fps=end.frame_rate)
    bounds = [first, *cuts, end]
    scenes = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    shots = [
        Shot(i, float(a.seconds), float(b.seconds), int(a.frame_num), int(b.frame_num))
        for i, (a, b) in enumerate(scenes)
    ]
    starts = [s.start for s in shots]

    def index(t: float) -> int:
        return max(0, bisect.bisect_right(starts, t + 1e-6) - 1)

    tracks: list[Track] = []
    for s in scans:
        for t in sorted(s.tracks, key=lambda t: t.id):
            t.shot = index(t.start)
            t.id = len(tracks)
            tracks.append(t)
    looks = ShotLooks()
    for s in scans:
        for start, (total, count) in s.looks.items():
            looks.sums[index(start)] = total
            looks.counts[index(start)] = count
    cues = merge_adjacent(sorted((c for s in scans for c in s.cues), key=lambda c: c.start))
    return VideoScan(
        shots=shots,
        scene_list=(scenes, cuts),
        tracks=tracks,
        looks=looks,
        cues=cues,
        frames=sum(s.frames for s in scans),
        faces=sum(s.faces for s in scans),
        ocr_calls=sum(s.ocr_calls for s in scans),
        last_time=max(s.last_time for s in scans),
        resampled=any(s.resampled for s in scans),
        problems=list(dict.fromkeys(p for s in scans for p in s.problems)),
    )


# -- a chunk on disk (resume after a kill) -----------------------------------------------------------
def _timecode_json(tc: Any) -> dict[str, Any]:
    t = tc._time  # PySceneDetect keeps a Timecode (pts, time_base) for PyAV frames
    rate = Fraction(tc.frame_rate)
    if hasattr(t, "pts"):
        tb = Fraction(t.time_base)
        return {
            "pts": int(t.pts),
            "time_base": [tb.numerator, tb.denominator],
            "rate": [rate.numerator, rate.denominator],
        }
    return {"frame": int(tc.frame_num), "rate": [rate.numerator, rate.denominator]}


def _timecode(d: dict[str, Any]) -> Any:
    import scenedetect
    from scenedetect.common import Timecode

    rate = Fraction(*d["rate"])
    if "pts" in d:
        return scenedetect.FrameTimecode(
            Timecode(pts=d["pts"], time_base=Fraction(*d["time_base"])), fps=rate
        )
    return scenedetect.FrameTimecode(d["frame"], fps=rate)


def save_chunk(scan: ChunkScan, folder: Path) -> Path:
    """Write one chunk's result as JSON + NPZ (atomically, NPZ first, the JSON marks it complete)."""
    stem = folder / f"chunk-{scan.chunk.index:04d}"
    arrays: dict[str, np.ndarray] = {}
    tracks = []
    for k, t in enumerate(scan.tracks):
        for j, (_, crop, _) in enumerate(t.crops):
            arrays[f"crop_{k}_{j}"] = crop
        tracks.append(
            {
                "id": t.id,
                "shot": t.shot,
                "faces": [
                    [f.time, f.box.x0, f.box.y0, f.box.x1, f.box.y1, f.box.score, f.index] for f in t.faces
                ],
                "crops": [[q, b.x0, b.y0, b.x1, b.y1, b.score] for q, _, b in t.crops],
            }
        )
    looks = []
    for i, (start, (total, count)) in enumerate(scan.looks.items()):
        arrays[f"look_{i}"] = total
        looks.append([start, count])
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(stem.with_suffix(".npz")) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    meta = {
        "chunk": asdict(scan.chunk),
        "cuts": [_timecode_json(c) for c in scan.cuts],
        "video_end": _timecode_json(scan.video_end) if scan.video_end is not None else None,
        "tracks": tracks,
        "looks": looks,
        "cues": [asdict(c) for c in scan.cues],
        "frames": scan.frames,
        "faces": scan.faces,
        "ocr_calls": scan.ocr_calls,
        "last_time": scan.last_time,
        "resampled": scan.resampled,
        "problems": scan.problems,
    }
    write_json(stem.with_suffix(".json"), meta, indent=0)
    return stem.with_suffix(".json")


def load_chunk(meta_path: Path) -> ChunkScan:
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(meta_path.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    tracks = []
    for k, t in enumerate(meta["tracks"]):
        track = Track(t["id"], t["shot"])
        track.faces = [TrackedFace(f[0], FaceBox(*f[1:6]), int(f[6])) for f in t["faces"]]
        track.crops = [(c[0], arrays[f"crop_{k}_{j}"], FaceBox(*c[1:6])) for j, c in enumerate(t["crops"])]
        tracks.append(track)
    looks = {start: (arrays[f"look_{i}"], count) for i, (start, count) in enumerate(meta["looks"])}
    return ChunkScan(
        chunk=Chunk(**meta["chunk"]),
        cuts=[_timecode(c) for c in meta["cuts"]],
        video_end=_timecode(meta["video_end"]) if meta["video_end"] is not None else None,
        tracks=tracks,
        looks=looks,
        cues=[Cue(**c) for c in meta["cues"]],
        frames=meta["frames"],
        faces=meta["faces"],
        ocr_calls=meta["ocr_calls"],
        last_time=meta["last_time"],
        resampled=meta["resampled"],
        problems=meta["problems"],
    )


def saved_chunks(folder: Path, config_digest: str) -> dict[int, Path]:
    """Chunk results an earlier run of the same configuration finished (index → JSON path)."""
    marker = folder / "config.txt"
    if not marker.exists() or marker.read_text().strip() != config_digest:
        return {}
    return {int(p.stem.split("-")[1]): p for p in folder.glob("chunk-*.json")}


def start_partial(folder: Path, config_digest: str) -> None:
    """A fresh partial folder for this configuration (an older configuration's chunks are dropped)."""
    marker = folder / "config.txt"
    if marker.exists() and marker.read_text().strip() == config_digest:
        return
    for p in folder.glob("chunk-*"):
        p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(marker) as tmp:
        tmp.write_text(config_digest + "\n")
