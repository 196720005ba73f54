"""Sparse decoding: skip the non-reference frames nobody will look at, and prove it changed nothing.

Feature extraction wants T frames of a clip (about one a second) but must decode forward through every
frame between them. Non-reference frames (most B-frames of H.264/HEVC) are used by no other frame, so the
decoder may drop them unseen (``skip_frame = NONREF``): about 40 % less decoding on x264's defaults. The
decoder skips them only away from the requested times; within `window` seconds before a requested time
every packet is decoded, so the frame on screen at that time is there.

Exactness is checked, not assumed: every packet decoded in skipping mode is recorded, and a frame picked
for time t is wrong exactly when such a packet lies between the picked frame and t (a reference frame
there would have been decoded and picked instead). The reader then decodes that span again in full, as
it does when the file's timestamps are shuffled or missing. So results equal a full decode, always.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

#: Frame intervals before a requested time that are always decoded in full.
WINDOW_FRAMES = 4


class SparseDecodeUnsafe(RuntimeError):
    """Skipping cannot be proven exact here (shuffled or missing timestamps, or a skipped frame that
    should have been picked): decode this span again in full."""


class NonrefSkipping:
    """Which packets of one forward decode may skip non-reference frames, and the record to check it."""

    def __init__(self, times: np.ndarray, fps: float) -> None:
        self.times = np.asarray(times, dtype=np.float64)  # ascending requested times
        frame = 1.0 / fps if fps and fps > 0 else 0.04
        self.window = max(0.1, WINDOW_FRAMES * frame)
        self._packets: list[float] = []  # every packet time seen (sorted), for frame indices
        self._skipping: list[float] = []  # packet times decoded in skipping mode (sorted)
        self.skipped_any = False

    def full(self, t: float) -> bool:
        """Must the packet at time `t` be decoded in full (a requested time lies in [t, t + window])?"""
        k = bisect.bisect_left(self.times, t - 1e-6)  # type: ignore[arg-type]
        return k < len(self.times) and self.times[k] - t <= self.window

    def note(self, t: float, full: bool) -> None:
        bisect.insort(self._packets, t)
        if not full:
            bisect.insort(self._skipping, t)
            self.skipped_any = True

    def index(self, t: float) -> int:
        """The frame's position among all frames of this decode, skipped ones included."""
        return bisect.bisect_left(self._packets, t - 1e-9)

    def check(self, picked: float, t: float) -> None:
        """Raise unless the frame at `picked` is what a full decode shows at `t` (last frame ≤ t)."""
        lo = picked if picked <= t + 1e-6 else -math.inf
        k = bisect.bisect_right(self._skipping, lo + 1e-9)
        if k < len(self._skipping) and self._skipping[k] <= t + 1e-6:
            raise SparseDecodeUnsafe(
                f"a skipped frame at {self._skipping[k]:.3f} s may be the one on screen at {t:.3f} s"
            )
