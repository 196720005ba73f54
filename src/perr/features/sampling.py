"""Which instants of a clip become the T timesteps of its feature sequences.

Two schemes, one output shape: every clip yields exactly T timesteps so a store is a dense
[N, T, d] array. `uniform` puts the T instants at the centres of T equal bins over the clip (the
paper extracts "T frames per clip"); `fps` samples at a fixed rate from the clip start, truncates
long clips to T steps and marks the steps past the end of a short clip invalid (all masks 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Scheme = Literal["uniform", "fps"]
SCHEMES: tuple[str, ...] = ("uniform", "fps")


@dataclass(frozen=True)
class Sampling:
    """T timesteps per clip, uniform over the clip (default) or at a fixed rate."""

    T: int = 32
    scheme: Scheme = "uniform"
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.T < 1:
            raise ValueError(f"sampling: T must be >= 1, got {self.T}")
        if self.scheme not in ("uniform", "fps"):
            raise ValueError(f"sampling: scheme must be 'uniform' or 'fps', got {self.scheme!r}")
        if self.scheme == "fps" and (self.fps is None or self.fps <= 0):
            raise ValueError("sampling: scheme 'fps' needs a positive fps")

    def times(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Absolute times [T] (seconds in the source video) and a validity mask [T].

        Invalid steps carry the last valid time so a reader never seeks past the clip.
        """
        if end <= start:
            raise ValueError(f"sampling: clip end {end} must be after start {start}")
        if self.scheme == "uniform":
            t = start + (np.arange(self.T) + 0.5) * (end - start) / self.T
            return t, np.ones(self.T, dtype=bool)
        assert self.fps is not None
        t = start + (np.arange(self.T) + 0.5) / self.fps
        valid = t < end
        last = t[valid][-1] if valid.any() else start
        return np.where(valid, t, last), valid

    def describe(self) -> dict:
        return {"T": self.T, "scheme": self.scheme, "fps": self.fps}
