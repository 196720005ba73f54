"""perr's video clock: PTS seconds from the video stream's start, repaired where a file shuffles them.

A frame's time is its presentation timestamp (PTS) in seconds minus the video stream's start time
(the clock PySceneDetect and OpenCV use, so shot times and frame times agree). It is never
``index / fps``, so it stays correct on variable-frame-rate files.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any

import numpy as np

#: Depth of the reorder buffer that restores monotonic time on files whose PTS come out shuffled.
REORDER_DEPTH = 8


def clock_origin(container: Any) -> float:
    """Time zero of perr's clock for a PyAV container: the video stream's start."""
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


def is_vfr(times: np.ndarray, tolerance: float = 0.1) -> bool:
    """True when frame durations vary by more than `tolerance` (relative) around their median."""
    d = np.diff(np.asarray(times, dtype=np.float64))
    if d.size < 2:
        return False
    med = float(np.median(d))
    return bool(med > 0 and np.max(np.abs(d - med)) > tolerance * med)
