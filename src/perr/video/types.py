"""What the video reader hands out: the error, the probe, a decoded frame."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from perr.errors import PerrError

#: Which library decodes: PyAV (FFmpeg; default), OpenCV (fallback for files PyAV cannot open).
VideoBackend = Literal["auto", "pyav", "opencv"]


class VideoError(PerrError, RuntimeError):
    """A video cannot be read (or lacks what was asked for). The message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (type(self), (self.path, self.reason))


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
class RawFrame:
    """A decoded frame before conversion (conversion to RGB is paid only for frames that are kept)."""

    index: int
    time: float
    payload: Any
