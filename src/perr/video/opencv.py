"""The OpenCV backend of the video reader: the fallback for files PyAV cannot open (no audio, no
subtitle streams; frame times from OpenCV's position in milliseconds)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perr.video.types import RawFrame, VideoError, VideoInfo


class OpenCVBackend:
    name = "opencv"

    def __init__(self, path: Path, problems: list[str]) -> None:
        import cv2

        self.path = path
        self.problems = problems
        if not path.exists():
            raise VideoError(path, "file not found")
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise VideoError(path, "OpenCV cannot open it; the file may be truncated or not a video")

    def close(self) -> None:
        self.cap.release()

    def probe(self) -> VideoInfo:
        import cv2

        cap = self.cap
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

    def timestamps(self) -> np.ndarray:
        return np.array([f.time for f in self.raw(None, None, keep=lambda t: False)])

    def keyframe_interval(self, seconds: float) -> float:
        return 1.0  # OpenCV decodes from the start anyway; seek gaps do not matter

    def raw(
        self,
        start: float | None,
        end: float | None,
        keep: Callable[[float], bool],
        reference_only: bool = False,
        sparse: object | None = None,
    ) -> Iterator[RawFrame]:
        """Every frame from the beginning (OpenCV seeks are not frame-accurate); pixels are retrieved
        only where `keep(time)` says so. `sparse` is ignored: OpenCV cannot skip frames undecoded."""
        import cv2

        cap = self.cap
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        index = 0
        while True:
            if not cap.grab():
                break
            t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            if end is not None and t > end:
                break
            img = None
            if keep(t):
                ok, bgr = cap.retrieve()
                if ok:
                    img = bgr
            yield RawFrame(index, t, img)
            index += 1
        if index == 0:
            raise VideoError(self.path, "no frame could be decoded")

    @staticmethod
    def to_rgb(raw: RawFrame, size: tuple[int, int] | None) -> np.ndarray:
        import cv2

        img: Any = raw.payload
        if size is not None and (img.shape[1], img.shape[0]) != size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def audio(self, sample_rate: int, mono: bool, start: float | None, end: float | None) -> np.ndarray:
        raise VideoError(self.path, "audio needs the PyAV backend")

    def subtitle_events(self, stream: int | None) -> list[tuple[float, float, str]]:
        return []
