"""The one video reader of perr: probe, frame-accurate sampled decoding, audio and embedded subtitles.

Every stage that touches pixels or samples (build, features, predict) goes through this module, so
timestamps mean the same thing everywhere:

* A frame's time is its presentation timestamp (PTS) in seconds, minus the video stream's start time
  (the clock PySceneDetect and OpenCV use, so shot times and frame times agree). It is never
  ``index / fps``, so it stays correct on variable-frame-rate files. Audio and embedded subtitles are
  put on the same clock (audio before time 0 is dropped, so picture and sound stay in sync).
* Broken files (unreadable, truncated, no video, no audio when audio is asked for) raise
  :class:`VideoError` naming the file and the problem, so a batch can record it and go on.
* Files with a broken index (e.g. AVI with packed B-frames, where decoded frames come out with
  their PTS shuffled) are repaired with a small reorder buffer, and the repair is reported in
  :attr:`VideoReader.problems` instead of silently producing times that go backwards.

PyAV is the primary backend; OpenCV is a fallback behind the same interface for files PyAV cannot
open (``backend="auto"``).
"""

from __future__ import annotations

import heapq
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Backend = Literal["auto", "pyav", "opencv"]
#: Depth of the reorder buffer that restores monotonic time on files whose PTS come out shuffled.
REORDER_DEPTH = 8


class VideoError(RuntimeError):
    """A video cannot be read (or lacks what was asked for). The message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class SubtitleStreamInfo:
    index: int
    codec: str
    language: str | None
    title: str | None


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learns without decoding pixels."""

    path: str
    duration: float  # seconds of video (last frame end − first frame start when known)
    fps: float  # average frame rate (frames / duration); use frame times, not this, for timing
    width: int
    height: int
    n_frames: int | None  # from the container; None when it does not say
    codec: str
    start_time: float  # video stream start (seconds, container clock) that frame times are relative to
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    subtitle_streams: tuple[SubtitleStreamInfo, ...] = ()
    backend: str = "pyav"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: index, time in seconds (PTS), RGB uint8 image (H×W×3).

    ``index`` counts the frames decoded by this call from where decoding started — the absolute
    frame number only when decoding starts at the beginning of the file. Use ``time`` for timing.
    """

    index: int
    time: float
    image: np.ndarray


@dataclass
class _Raw:
    """A decoded frame before conversion (conversion to RGB is paid only for frames we keep)."""

    index: int
    time: float
    payload: Any


def _open_av(path: Path) -> Any:
    import av

    if not path.exists():
        raise VideoError(path, "file not found")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise VideoError(path, f"cannot open ({type(e).__name__}: {e}); the file may be truncated or not a video") from e
    if not container.streams.video:
        container.close()
        raise VideoError(path, "no video stream")
    return container


def clock_origin(container: Any) -> float:
    """Time zero of perr's clock: the video stream's start (as PySceneDetect and OpenCV count)."""
    vs = container.streams.video[0]
    if vs.start_time is not None and vs.time_base:
        return max(0.0, float(vs.start_time * vs.time_base))
    st = container.start_time
    return 0.0 if st is None else max(0.0, st / 1_000_000)


class PtsRepair:
    """Frames in decode order paired with their timestamps sorted over a small window.

    Packed B-frames and broken indexes give frames whose PTS are shuffled while the frames themselves
    come out in display order; pairing each frame with the smallest pending PTS (REORDER_DEPTH frames
    of look-ahead) restores monotone, correct times. `shuffled` says whether any repair happened.
    """

    def __init__(self, time_base: float, origin: float, depth: int = REORDER_DEPTH) -> None:
        self.tb, self.origin, self.depth = time_base, origin, depth
        self._fifo: deque[Any] = deque()
        self._heap: list[float] = []
        self._last = -math.inf
        self.shuffled = False

    def push(self, frame: Any) -> list[tuple[Any, float]]:
        """Add a decoded frame; returns the (frame, time) pairs now final (zero or one)."""
        t = round((frame.pts if frame.pts is not None else (frame.dts or 0)) * self.tb - self.origin, 9)
        if t < self._last - 1e-9:
            self.shuffled = True
        self._last = max(self._last, t)
        self._fifo.append(frame)
        heapq.heappush(self._heap, t)
        if len(self._fifo) > self.depth:
            return [(self._fifo.popleft(), heapq.heappop(self._heap))]
        return []

    def flush(self) -> list[tuple[Any, float]]:
        """The pending pairs at the end of the stream."""
        out = []
        while self._fifo:
            out.append((self._fifo.popleft(), heapq.heappop(self._heap)))
        return out


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """(width, height) with the long side at most `max_side`, even sizes (fast swscale); None = native."""
    if max_side is None or max(width, height) <= max_side:
        return None
    s = max_side / max(width, height)
    return (max(2, round(width * s / 2) * 2), max(2, round(height * s / 2) * 2))


def probe(path: str | os.PathLike, backend: Backend = "auto") -> VideoInfo:
    """Read stream metadata (no pixel decoding). Raises VideoError for unreadable files."""
    with VideoReader(path, backend=backend) as r:
        return r.info


class VideoReader:
    """Sampled, timestamp-exact decoding of one video file.

    Use as a context manager. Iteration methods may be called several times (each restarts).
    ``size`` (width, height) or ``max_side`` scale the returned images (decoder-side, cheap).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: Backend = "auto",
        threads: bool = True,
    ) -> None:
        self.path = Path(path)
        self.problems: list[str] = []
        self._container: Any = None
        self._cap: Any = None
        if backend not in ("auto", "pyav", "opencv"):
            raise ValueError(f"unknown video backend {backend!r}; choose auto, pyav or opencv")
        self.backend = "opencv" if backend == "opencv" else "pyav"
        first_error: VideoError | None = None
        if self.backend == "pyav":
            try:
                self._container = _open_av(self.path)
                if threads:
                    self._container.streams.video[0].thread_type = "AUTO"
            except VideoError as e:
                if backend != "auto" or not self.path.exists() or e.reason == "no video stream":
                    raise
                first_error = e
                self.backend = "opencv"
        if self.backend == "opencv":
            try:
                self._cap = self._open_cv()
            except VideoError as e:
                if first_error is not None:  # the PyAV reason says more; note that OpenCV failed too
                    raise VideoError(self.path, f"{first_error.reason} (OpenCV cannot open it either)") from e
                raise
        self.info = self._probe()

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- probing ---------------------------------------------------------------------------------
    def _open_cv(self) -> Any:
        import cv2

        if not self.path.exists():
            raise VideoError(self.path, "file not found")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise VideoError(self.path, "OpenCV cannot open it; the file may be truncated or not a video")
        return cap

    def _probe(self) -> VideoInfo:
        if self.backend == "opencv":
            import cv2

            cap = self._cap
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
            return VideoInfo(
                path=str(self.path),
                duration=(n / fps) if (n and fps) else 0.0,
                fps=fps,
                width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                n_frames=n,
                codec="unknown",
                start_time=0.0,
                has_audio=False,
                audio_rate=None,
                audio_channels=None,
                backend="opencv",
            )
        c = self._container
        vs = c.streams.video[0]
        start = clock_origin(c)
        tb = float(vs.time_base) if vs.time_base else 0.0
        if vs.duration is not None and tb:
            duration = vs.duration * tb
        elif c.duration is not None:
            duration = c.duration / 1_000_000
        else:
            duration = 0.0
        n = vs.frames or None
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else ((n / duration) if (n and duration) else 0.0)
        a = c.streams.audio[0] if c.streams.audio else None
        subs = tuple(
            SubtitleStreamInfo(
                index=s.index,
                codec=s.codec_context.name if s.codec_context else "unknown",
                language=s.language,
                title=(s.metadata or {}).get("title"),
            )
            for s in c.streams.subtitles
        )
        return VideoInfo(
            path=str(self.path),
            duration=float(duration),
            fps=fps,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            n_frames=n,
            codec=vs.codec_context.name,
            start_time=start,
            has_audio=a is not None,
            audio_rate=a.codec_context.sample_rate if a is not None else None,
            audio_channels=a.codec_context.channels if a is not None else None,
            subtitle_streams=subs,
        )

    # -- timestamps ------------------------------------------------------------------------------
    def timestamps(self) -> np.ndarray:
        """Presentation times (s) of every frame, from packet PTS, without decoding pixels.

        Sorted, so they are right for B-frame and VFR files alike. OpenCV backend: decodes.
        """
        if self.backend == "opencv":
            return np.array([f.time for f in self._iter_cv(None, None, keep=lambda t: False)])
        c = self._container
        vs = c.streams.video[0]
        c.seek(0)
        start = clock_origin(c)
        tb = float(vs.time_base)
        pts = [p.pts for p in c.demux(vs) if p.pts is not None and p.size > 0]
        return np.sort(np.asarray(pts, dtype=np.float64) * tb - start)

    # -- decoding --------------------------------------------------------------------------------
    def _iter_av(self, start: float | None, end: float | None, reference_only: bool = False) -> Iterator[_Raw]:
        import av

        c = self._container
        vs = c.streams.video[0]
        vs.codec_context.skip_frame = "NONREF" if reference_only else "DEFAULT"
        c0 = clock_origin(c)
        tb = float(vs.time_base)
        if start is not None and start > 1.0:
            # Seek to the keyframe before `start` (backward) and decode forward from there.
            c.seek(int((start + c0 - 0.5) / tb), stream=vs, backward=True, any_frame=False)
        else:
            c.seek(0)
        repair = PtsRepair(tb, c0)
        bad_packets = 0

        def frames() -> Iterator[Any]:
            nonlocal bad_packets
            for pkt in c.demux(vs):
                try:
                    yield from pkt.decode()
                except av.error.FFmpegError as e:
                    bad_packets += 1
                    if bad_packets <= 3:
                        self.problems.append(f"corrupt packet at pts {pkt.pts}: {e}")

        def timed() -> Iterator[tuple[Any, float]]:
            for fr in frames():
                yield from repair.push(fr)
            yield from repair.flush()

        index = 0
        for fr, t in timed():
            if end is not None and t > end:
                break
            yield _Raw(index, t, fr)
            index += 1
        if repair.shuffled:
            self.problems.append("frame timestamps out of order (packed B-frames or a broken index); times were re-sorted")
        if bad_packets > 3:
            self.problems.append(f"{bad_packets} corrupt packets in total")
        if index == 0:
            raise VideoError(self.path, "no frame could be decoded")

    def _iter_cv(self, start: float | None, end: float | None, keep: Any) -> Iterator[_Raw]:
        import cv2

        cap = self._cap
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        index = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            if end is not None and t > end:
                break
            img = None
            if keep(t):
                ok, bgr = cap.retrieve()
                if ok:
                    img = bgr
            yield _Raw(index, t, img)
            index += 1
        if index == 0:
            raise VideoError(self.path, "no frame could be decoded")

    def _to_rgb(self, raw: _Raw, size: tuple[int, int] | None) -> np.ndarray:
        if self.backend == "pyav":
            # threads=1: PyAV's default lets swscale start threads per frame — same pixels, 1.5–3.5× the CPU
            if size is None:
                return raw.payload.to_ndarray(format="rgb24", threads=1)
            return raw.payload.to_ndarray(format="rgb24", width=size[0], height=size[1], threads=1)
        import cv2

        img = raw.payload
        if size is not None and (img.shape[1], img.shape[0]) != size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def output_size(self, size: tuple[int, int] | None = None, max_side: int | None = None) -> tuple[int, int] | None:
        """The (width, height) images will have; None means native. Even sizes keep swscale fast."""
        if size is not None:
            return size
        return fit_size(self.info.width, self.info.height, max_side)

    def _raw(self, start: float | None, end: float | None, keep: Any, reference_only: bool = False) -> Iterator[_Raw]:
        if self.backend == "pyav":
            return self._iter_av(start, end, reference_only)
        return self._iter_cv(start, end, keep)

    def frames(
        self,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        reference_only: bool = False,
    ) -> Iterator[Frame]:
        """Decode frames in [start, end], all of them (fps=None) or one per 1/fps seconds.

        Sampling picks, for each sample time k/fps (from `start`, or 0), the first frame whose time
        is at or after it — so on VFR files samples follow real time, not frame counts.
        ``reference_only`` lets the decoder skip non-reference (B) frames: about half the decoding
        work for sparse sampling; samples then land on the next reference frame (typically within
        0.1 s), still with its exact PTS. Frame indices then count decoded frames only.
        """
        out = self.output_size(size, max_side)
        step = None if fps is None else 1.0 / fps
        t0 = start or 0.0
        nxt = t0
        eps = 1e-6

        def keep(t: float) -> bool:
            return t >= t0 - eps and (step is None or t >= nxt - eps)

        for raw in self._raw(start, end, keep, reference_only):
            if not keep(raw.time):
                continue
            if step is not None:
                nxt = t0 + (math.floor((raw.time - t0 + eps) / step) + 1) * step
            yield Frame(raw.index, raw.time, self._to_rgb(raw, out))

    def frames_at(
        self,
        times: Sequence[float] | np.ndarray,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        seek_gap: float = 10.0,
    ) -> list[Frame]:
        """The frame on screen at each requested time (last frame with time ≤ t), in request order.

        Times before the first frame give the first frame; after the last, the last frame. Requested
        times more than `seek_gap` seconds apart are reached by seeking instead of decoding the gap.
        """
        if len(times) == 0:
            return []
        out = self.output_size(size, max_side)
        req = np.asarray(times, dtype=np.float64)
        order = np.argsort(req, kind="stable")
        ts = req[order]
        result: list[Frame | None] = [None] * len(ts)
        # groups of nearby times, each decoded from a seek just before its first time
        breaks = np.flatnonzero(np.diff(ts) > seek_gap) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(ts)], strict=True):
            group = ts[lo:hi]
            t_first, t_last = float(group[0]), float(group[-1])

            def keep(t: float, a: float = t_first, b: float = t_last) -> bool:  # OpenCV: retrieve near the span
                return a - 1.0 <= t <= b + 1.0

            i, prev = 0, None
            for raw in self._raw(max(0.0, t_first - 1.0), None, keep):
                while i < len(group) and raw.time > group[i] + 1e-6:
                    pick = prev if prev is not None else raw
                    result[order[lo + i]] = Frame(pick.index, pick.time, self._to_rgb(pick, out))
                    i += 1
                if i >= len(group):
                    break
                prev = raw
            while i < len(group) and prev is not None:
                result[order[lo + i]] = Frame(prev.index, prev.time, self._to_rgb(prev, out))
                i += 1
        return [f for f in result if f is not None]

    # -- audio -----------------------------------------------------------------------------------
    def audio(
        self,
        sample_rate: int = 16000,
        mono: bool = True,
        start: float | None = None,
        end: float | None = None,
    ) -> np.ndarray:
        """Decode the first audio stream, resampled, as float32 in [-1, 1].

        Shape (n,) when mono, else (channels, n). Sample 0 is at time `start` (or 0) on the same
        clock as frame times. Raises VideoError when the file has no audio.
        """
        import av

        if self.backend != "pyav":
            raise VideoError(self.path, "audio needs the PyAV backend")
        c = self._container
        if not c.streams.audio:
            raise VideoError(self.path, "no audio stream")
        a = c.streams.audio[0]
        c.seek(0)
        layout = "mono" if mono else ("stereo" if (a.codec_context.channels or 1) >= 2 else "mono")
        res = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
        c0 = clock_origin(c)
        chunks: list[np.ndarray] = []
        first_t: float | None = None
        try:
            for pkt in c.demux(a):
                try:
                    decoded = pkt.decode()
                except av.error.FFmpegError as e:
                    self.problems.append(f"corrupt audio packet at pts {pkt.pts}: {e}")
                    continue
                for fr in decoded:
                    if first_t is None and fr.pts is not None:
                        first_t = fr.pts * float(fr.time_base) - c0
                    for o in res.resample(fr):
                        chunks.append(o.to_ndarray())
            for o in res.resample(None):
                chunks.append(o.to_ndarray())
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"audio decoding failed: {e}") from e
        if not chunks:
            raise VideoError(self.path, "audio stream has no decodable samples")
        x = np.concatenate(chunks, axis=1).astype(np.float32)  # packed flt → (1, n*ch)
        nch = 1 if layout == "mono" else 2
        x = x.reshape(-1, nch).T
        # Align sample 0 with time 0 (pad or trim the audio's own start offset).
        lead = round((first_t or 0.0) * sample_rate)
        if lead > 0:
            x = np.concatenate([np.zeros((nch, lead), np.float32), x], axis=1)
        elif lead < 0:
            x = x[:, -lead:]
        s0 = round((start or 0.0) * sample_rate)
        s1 = None if end is None else round(end * sample_rate)
        x = x[:, s0:s1]
        return x[0] if mono else x

    # -- embedded subtitles ----------------------------------------------------------------------
    def subtitle_events(self, stream: int | None = None) -> list[tuple[float, float, str]]:
        """Text events (start, end, text) of an embedded subtitle stream (first one by default)."""
        import av

        if self.backend != "pyav":
            return []
        c = self._container
        subs = list(c.streams.subtitles)
        if not subs:
            return []
        s = subs[0] if stream is None else next((x for x in subs if x.index == stream), None)
        if s is None:
            raise VideoError(self.path, f"no subtitle stream with index {stream}")
        c.seek(0)
        c0 = clock_origin(c)
        events: list[tuple[float, float, str]] = []
        for pkt in c.demux(s):
            if pkt.pts is None:
                continue
            try:
                decoded = pkt.decode()
            except av.error.FFmpegError as e:
                self.problems.append(f"corrupt subtitle packet at pts {pkt.pts}: {e}")
                continue
            t = pkt.pts * float(pkt.time_base) - c0
            dur = (pkt.duration or 0) * float(pkt.time_base)
            for sub in decoded:
                # PyAV ≥ 14 yields one subtitle rectangle per item (timed by its packet); older
                # versions yield a set of rectangles with display offsets.
                rects = list(sub) if hasattr(sub, "__iter__") else [sub]
                text = "\n".join(x for x in (_subtitle_rect_text(r) for r in rects) if x)
                if not text:
                    continue
                off0 = getattr(sub, "start_display_time", 0) / 1000.0
                off1 = getattr(sub, "end_display_time", 0) / 1000.0
                s0 = t + off0
                s1 = t + (off1 if off1 else dur)
                events.append((max(0.0, s0), max(s0, s1), text))
        return events


def _subtitle_rect_text(rect: Any) -> str:
    """Plain text of one decoded subtitle rectangle (ASS override tags and style fields removed)."""
    import re

    for attr in ("dialogue", "text", "ass"):
        val = getattr(rect, attr, None)
        if isinstance(val, bytes):
            val = val.decode("utf-8", "replace")
        if not val:
            continue
        val = str(val)
        if attr == "ass":  # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text"
            val = val.split(",", 8)[-1]
        val = re.sub(r"\{[^}]*\}", "", val)
        return val.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ").strip()
    return ""


def is_vfr(times: np.ndarray, tolerance: float = 0.1) -> bool:
    """True when frame durations vary by more than `tolerance` (relative) around their median."""
    d = np.diff(np.asarray(times, dtype=np.float64))
    if d.size < 2:
        return False
    med = float(np.median(d))
    return bool(med > 0 and np.max(np.abs(d - med)) > tolerance * med)


def read_frames(
    path: str | os.PathLike,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    max_side: int | None = None,
) -> list[Frame]:
    """Convenience: all sampled frames of a file as a list (small clips only)."""
    with VideoReader(path) as r:
        return list(r.frames(fps=fps, start=start, end=end, max_side=max_side))


def read_audio(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    mono: bool = True,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Convenience: the audio of a file as float32 (see :meth:`VideoReader.audio`)."""
    with VideoReader(path, backend="pyav") as r:
        return r.audio(sample_rate=sample_rate, mono=mono, start=start, end=end)


def iter_video_files(inputs: Iterable[str | os.PathLike], exts: Sequence[str] = (
    ".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv",
)) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated file list."""
    import glob

    out: dict[Path, None] = {}
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_file() and q.suffix.lower() in exts:
                    out[q] = None
        elif any(ch in s for ch in "*?["):
            for q in sorted(glob.glob(s, recursive=True)):
                qp = Path(q)
                if qp.is_file():
                    out[qp] = None
        else:
            out[p] = None  # missing files are kept so the batch reports them
    return list(out)
