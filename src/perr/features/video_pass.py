"""The clips of one video, extracted from one forward decode.

A manifest's clips are grouped by video and ordered by time. For each group, the frames every clip needs
(its T sampled times) are decoded in one pass: seek to the first time, decode forward, and seek again only
where the gap to the next time is longer than the video's keyframe interval (:meth:`VideoReader.iter_frames_at`).
Overlapping clips share that pass. A clip is extracted as soon as the decode has passed its last time, and
its file is written at once (atomically), so the run stays resumable clip by clip and memory holds only the
clips in flight. Audio comes from :class:`perr.video.audio.AudioSpans`: a clip's audio costs time in
proportion to the clip, never the file. A span the decoder cannot read fails only the clips that need it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perr.features.base import ClipContext, Extractor
from perr.features.config import ExtractConfig
from perr.manifest import Clip
from perr.video import VideoError, VideoReader
from perr.video.audio import AudioSpans

#: What stopped a clip: (message, traceback).
ClipError = tuple[str, str]
#: What happens to one clip: (clip, its context or None, the error that stopped it or None, decode seconds).
ClipReady = Callable[[Clip, ClipContext | None, ClipError | None, float], None]


def _error(e: BaseException) -> ClipError:
    return f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e))


@dataclass
class _Pending:
    ctx: ClipContext
    left: int
    frames: np.ndarray | None = None
    error: ClipError | None = None


@dataclass
class _SharedAudio:
    """One AudioSpans per (file, rate), shared by the clips of a group."""

    spans: dict[tuple[str, int], AudioSpans] = field(default_factory=dict)

    def __call__(self, path: Path, rate: int) -> AudioSpans:
        key = (str(path), rate)
        if key not in self.spans:
            self.spans[key] = AudioSpans(path, rate)
        return self.spans[key]

    def close(self) -> None:
        for s in self.spans.values():
            s.close()


def needs_frames(extractors: dict[str, Extractor]) -> bool:
    return any(e.needs_frames for e in extractors.values())


def extract_group(
    clips: Sequence[Clip],
    base: Path,
    cfg: ExtractConfig,
    extractors: dict[str, Extractor],
    on_ready: ClipReady,
) -> None:
    """Prepare every clip of one video (same source) from one decode; call `on_ready` for each, in the
    order their frames complete. `on_ready` extracts and writes; it receives the error instead of a
    context when the clip cannot be prepared."""
    audio = _SharedAudio()
    try:
        pending: list[_Pending] = []
        for clip in sorted(clips, key=lambda c: (c.start, c.clip_id)):
            try:
                ctx = ClipContext(
                    clip, base, sampling=cfg.sampling, frame_max_side=cfg.frame_max_side, shared_audio=audio
                )
            except Exception as e:  # a missing file or a bad span: this clip only
                on_ready(clip, None, _error(e), 0.0)
                continue
            pending.append(_Pending(ctx, ctx.T))
        if not pending:
            return
        video = pending[0].ctx.video_path
        if not needs_frames(extractors) or video.is_dir():  # frames folders: random access per clip
            for p in pending:
                on_ready(p.ctx.clip, p.ctx, None, 0.0)
            return
        _stream(video, pending, cfg, on_ready)
    finally:
        audio.close()


def _stream(video: Path, pending: list[_Pending], cfg: ExtractConfig, on_ready: ClipReady) -> None:
    requests = sorted(
        ((float(t), i, k) for i, p in enumerate(pending) for k, t in enumerate(p.ctx.times)),
        key=lambda r: r[:2],
    )
    times = np.array([r[0] for r in requests])
    t0 = time.perf_counter()
    try:
        reader = VideoReader(video)
    except VideoError as e:
        for p in pending:
            on_ready(p.ctx.clip, None, _error(e), 0.0)
        return
    with reader:
        frames = reader.iter_frames_at(
            times, max_side=cfg.frame_max_side, seek_gap=reader.keyframe_interval(), skip_nonref=True
        )
        for j, frame in frames:
            _, i, k = requests[j]
            p = pending[i]
            if isinstance(frame, VideoError):
                p.error = p.error or _error(frame)
            elif p.error is None:
                if p.frames is None:
                    p.frames = np.zeros((p.ctx.T, *frame.image.shape), np.uint8)
                if frame.image.shape != p.frames.shape[1:]:
                    p.error = (
                        f"frame size changed inside the clip ({frame.image.shape} vs {p.frames.shape[1:]})"
                    )
                else:
                    p.frames[k] = frame.image
            p.left -= 1
            if p.left == 0:
                decoded = time.perf_counter() - t0
                if p.error is None:
                    p.ctx.cache["frames"] = p.frames
                on_ready(p.ctx.clip, p.ctx if p.error is None else None, p.error, decoded)
                p.frames = None  # free the clip's frames before the next ones arrive
                t0 = time.perf_counter()
    for p in pending:  # requests the decoder never reached (a file shorter than its manifest says)
        if p.left > 0:
            on_ready(
                p.ctx.clip, None, p.error or f"{video}: the video ended before {p.ctx.times[-1]:.2f} s", 0.0
            )


def clip_groups(clips: Sequence[Clip], base: Path, group_seconds: float) -> list[list[Clip]]:
    """Clips by video (sorted by time), each video's cut into runs covering about `group_seconds`, so a
    long episode is shared by several workers; every run is decoded in one pass."""
    by_video: dict[str, list[Clip]] = {}
    for c in clips:
        by_video.setdefault(str(c.resolve(c.video, base)), []).append(c)
    groups: list[list[Clip]] = []
    for items in by_video.values():
        items.sort(key=lambda c: (c.start, c.clip_id))
        run: list[Clip] = []
        for c in items:
            if run and (c.end or c.start) - run[0].start > group_seconds:
                groups.append(run)
                run = []
            run.append(c)
        groups.append(run)
    return groups
