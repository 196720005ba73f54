"""The one video reader of perr: probe, frame-accurate sampled decoding, audio and embedded subtitles.

Every stage that touches pixels or samples (build, features, predict) goes through this module, so
timestamps mean the same thing everywhere (see :mod:`perr.video.clock`). Broken files (unreadable,
truncated, no video, no audio when audio is asked for) raise :class:`VideoError` naming the file and
the problem, so a batch can record it and go on. Repairs (shuffled PTS, corrupt packets) are reported
in :attr:`VideoReader.problems` instead of silently producing times that go backwards.

PyAV is the primary backend (:mod:`perr.video.pyav`); OpenCV (:mod:`perr.video.opencv`) is a fallback
behind the same interface for files PyAV cannot open (``backend="auto"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from perr.video.clock import fit_size
from perr.video.opencv import OpenCVBackend
from perr.video.pyav import PyAVBackend
from perr.video.sparse import NonrefSkipping, SparseDecodeUnsafe
from perr.video.types import Frame, RawFrame, VideoBackend, VideoError, VideoInfo


class VideoReader:
    """Sampled, timestamp-exact decoding of one video file.

    Use as a context manager. Iteration methods may be called several times (each restarts).
    ``size`` (width, height) or ``max_side`` scale the returned images (decoder-side, cheap).
    """

    def __init__(self, path: str | os.PathLike, backend: VideoBackend = "auto", threads: bool = True) -> None:
        self.path = Path(path)
        self.problems: list[str] = []
        if backend not in ("auto", "pyav", "opencv"):
            raise ValueError(f"unknown video backend {backend!r}; choose auto, pyav or opencv")
        self._impl: PyAVBackend | OpenCVBackend | None = None
        first_error: VideoError | None = None
        if backend != "opencv":
            try:
                self._impl = PyAVBackend(self.path, self.problems, threads=threads)
            except VideoError as e:
                if backend != "auto" or not self.path.exists() or e.reason == "no video stream":
                    raise
                first_error = e
        if self._impl is None:
            try:
                self._impl = OpenCVBackend(self.path, self.problems)
            except VideoError as e:
                if first_error is not None:  # the PyAV reason says more; note that OpenCV failed too
                    raise VideoError(self.path, f"{first_error.reason} (OpenCV cannot open it either)") from e
                raise
        self.backend = self._impl.name
        self.info: VideoInfo = self._impl.probe()

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()
            self._impl = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def impl(self) -> PyAVBackend | OpenCVBackend:
        if self._impl is None:
            raise VideoError(self.path, "reader is closed")
        return self._impl

    # -- timestamps ------------------------------------------------------------------------------
    def timestamps(self) -> np.ndarray:
        """Presentation times (s) of every frame, sorted, so right for B-frame and VFR files alike.
        PyAV reads packet PTS without decoding pixels; OpenCV decodes."""
        return self.impl.timestamps()

    # -- decoding --------------------------------------------------------------------------------
    def output_size(
        self, size: tuple[int, int] | None = None, max_side: int | None = None
    ) -> tuple[int, int] | None:
        """The (width, height) images will have; None means native. Even sizes keep swscale fast."""
        if size is not None:
            return size
        return fit_size(self.info.width, self.info.height, max_side)

    def to_rgb(self, raw: RawFrame, size: tuple[int, int] | None) -> np.ndarray:
        return self.impl.to_rgb(raw, size)

    def frames(
        self,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        reference_only: bool = False,
        anchor: float | None = None,
    ) -> Iterator[Frame]:
        """Decode frames in [start, end], all of them (fps=None) or one per 1/fps seconds.

        Sampling picks, for each sample time anchor + k/fps (`anchor` defaults to `start`, or 0), the first
        frame whose time is at or after it — so on VFR files samples follow real time, not frame counts.
        ``anchor=0`` keeps the grid of a pass from the file's start when decoding begins later.
        ``reference_only`` lets the decoder skip non-reference (B) frames: about half the decoding
        work for sparse sampling; samples then land on the next reference frame (typically within
        0.1 s), still with its exact PTS. Frame indices then count decoded frames only.
        """
        out = self.output_size(size, max_side)
        step = None if fps is None else 1.0 / fps
        t0 = start or 0.0
        origin = t0 if anchor is None else anchor
        eps = 1e-6
        nxt = t0 if step is None else origin + math.ceil((t0 - origin - eps) / step) * step

        def keep(t: float) -> bool:
            return t >= t0 - eps and (step is None or t >= nxt - eps)

        for raw in self.impl.raw(start, end, keep, reference_only):
            if not keep(raw.time):
                continue
            if step is not None:
                nxt = origin + (math.floor((raw.time - origin + eps) / step) + 1) * step
            yield Frame(raw.index, raw.time, self.to_rgb(raw, out))

    def frames_at(
        self,
        times: Sequence[float] | np.ndarray,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        seek_gap: float = 10.0,
        skip_nonref: bool = False,
    ) -> list[Frame]:
        """The frame on screen at each requested time (last frame with time ≤ t), in request order.

        Times before the first frame give the first frame; after the last, the last frame. Requested
        times more than `seek_gap` seconds apart are reached by seeking instead of decoding the gap.
        `skip_nonref`: see :meth:`iter_frames_at` (the same frames, less decoding).
        """
        req = np.asarray(times, dtype=np.float64)
        order = np.argsort(req, kind="stable")
        result: list[Frame | None] = [None] * len(req)
        frames = self.iter_frames_at(
            req[order], size=size, max_side=max_side, seek_gap=seek_gap, skip_nonref=skip_nonref
        )
        for i, frame in frames:
            if isinstance(frame, VideoError):
                raise frame
            result[order[i]] = frame
        return [f for f in result if f is not None]

    def iter_frames_at(
        self,
        times: Sequence[float] | np.ndarray,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        seek_gap: float = 10.0,
        skip_nonref: bool = False,
    ) -> Iterator[tuple[int, Frame | VideoError]]:
        """Stream the frame on screen at each of the ascending `times`: (index into `times`, frame) as soon
        as decoding has passed it, so a caller can finish one clip while the decode goes on to the next.

        Times closer than `seek_gap` are reached by decoding forward; a larger gap seeks (to the keyframe
        before the next time). A group of times whose decoding fails yields the error for each of its
        times instead of a frame, and the stream goes on with the next group: a corrupt span costs only
        the times inside it. `skip_nonref` lets the decoder drop non-reference frames away from the
        times (perr.video.sparse): the same frames, checked, for about 40 % less decoding when sparse.
        """
        if len(times) == 0:
            return
        out = self.output_size(size, max_side)
        ts = np.asarray(times, dtype=np.float64)
        breaks = np.flatnonzero(np.diff(ts) > seek_gap) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(ts)], strict=True):
            group = ts[lo:hi]
            done = 0  # times of the group already yielded
            sparse = skip_nonref and self.backend == "pyav"
            while done < len(group):
                try:
                    for _, frame in self._decode_group(group[done:], out, sparse):
                        yield int(lo + done), frame
                        done += 1
                except SparseDecodeUnsafe:  # decode the rest of the group again, every frame
                    sparse = False
                    continue
                except VideoError as e:
                    error = e
                except Exception as e:  # a decoder error inside the span
                    error = VideoError(
                        self.path, f"decoding failed near {float(group[done]):.1f} s: {type(e).__name__}: {e}"
                    )
                else:
                    break
                for j in range(done, len(group)):
                    yield int(lo + j), error
                break

    def _decode_group(
        self, group: np.ndarray, out: tuple[int, int] | None, sparse: bool
    ) -> Iterator[tuple[int, Frame]]:
        """The frames on screen at the ascending `group` times, from one forward decode."""
        t_first, t_last = float(group[0]), float(group[-1])

        def keep(t: float) -> bool:  # OpenCV: retrieve near the span
            return t_first - 1.0 <= t <= t_last + 1.0

        skipping = NonrefSkipping(group, self.info.fps) if sparse else None

        def pick(i: int, chosen: RawFrame) -> tuple[int, Frame]:
            if skipping is not None:
                skipping.check(chosen.time, float(group[i]))
            return i, Frame(chosen.index, chosen.time, self.to_rgb(chosen, out))

        i, prev = 0, None
        for raw in self.impl.raw(max(0.0, t_first - 1.0), None, keep, sparse=skipping):
            while i < len(group) and raw.time > group[i] + 1e-6:
                yield pick(i, prev if prev is not None else raw)
                i += 1
            if i >= len(group):
                return
            prev = raw
        while i < len(group) and prev is not None:
            yield pick(i, prev)
            i += 1

    def keyframe_interval(self, seconds: float = 60.0) -> float:
        """Median seconds between keyframes over the first `seconds` (packets only, no decoding)."""
        return self.impl.keyframe_interval(seconds)

    # -- audio and subtitle streams --------------------------------------------------------------
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
        return self.impl.audio(sample_rate, mono, start, end)

    def subtitle_events(self, stream: int | None = None) -> list[tuple[float, float, str]]:
        """Text events (start, end, text) of an embedded subtitle stream (first one by default)."""
        return self.impl.subtitle_events(stream)


def probe(path: str | os.PathLike, backend: VideoBackend = "auto") -> VideoInfo:
    """Read stream metadata (no pixel decoding). Raises VideoError for unreadable files."""
    with VideoReader(path, backend=backend) as r:
        return r.info


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
