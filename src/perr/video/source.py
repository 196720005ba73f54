"""A clip's media source: a video file, or a folder of numbered frames (ERATO's released form:
``000001.jpg`` … at a known fps) with an optional separate audio file.

Both give RGB frames at requested times on the same clock: seconds from the start of the source, frame
k of a folder (0-based, sorted by name) showing during [k/fps, (k+1)/fps).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from perr.errors import PerrError
from perr.video.audio import audio_span
from perr.video.files import IMAGE_EXTS
from perr.video.reader import VideoReader, probe
from perr.video.types import VideoError


class SourceError(PerrError, RuntimeError):
    """A clip's media cannot be read; the message names the path."""


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frames folder in presentation order (sorted by name: 000001.jpg, 000002.jpg …)."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise SourceError(f"{folder}: frames folder has no images ({', '.join(IMAGE_EXTS)})")
    return files


def source_frames_at(
    video: str | os.PathLike, times: np.ndarray, fps: float | None = None, max_side: int | None = None
) -> np.ndarray:
    """RGB uint8 frames [T, H, W, 3] on screen at each time (seconds from the start of the source)."""
    video = Path(video)
    if video.is_dir():
        return _folder_frames_at(video, times, fps, max_side)
    with VideoReader(video) as r:
        frames = r.frames_at(np.asarray(times, dtype=np.float64), max_side=max_side, skip_nonref=True)
    if len(frames) != len(times):
        raise SourceError(f"{video}: decoded {len(frames)} of {len(times)} requested frames")
    return np.stack([f.image for f in frames])


def _folder_frames_at(folder: Path, times: np.ndarray, fps: float | None, max_side: int | None) -> np.ndarray:
    import cv2

    if not fps:
        raise SourceError(f"{folder}: a frames folder needs the clip's fps (manifest field 'fps')")
    files = list_frame_files(folder)
    idx = np.clip(np.floor(np.asarray(times) * fps + 1e-6).astype(int), 0, len(files) - 1)
    cache: dict[int, np.ndarray] = {}
    out = []
    for i in idx:
        if i not in cache:
            bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SourceError(f"{files[i]}: not a readable image")
            if max_side is not None and max(bgr.shape[:2]) > max_side:
                s = max_side / max(bgr.shape[:2])
                bgr = cv2.resize(
                    bgr, (round(bgr.shape[1] * s), round(bgr.shape[0] * s)), interpolation=cv2.INTER_AREA
                )
            cache[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out.append(cache[i])
    shapes = {f.shape for f in out}
    if len(shapes) > 1:
        raise SourceError(f"{folder}: frames differ in size {sorted(shapes)}")
    return np.stack(out)


def source_duration(video: str | os.PathLike, fps: float | None = None) -> float:
    """Length in seconds of a video file or a frames folder."""
    video = Path(video)
    if video.is_dir():
        if not fps:
            raise SourceError(f"{video}: a frames folder needs the clip's fps (manifest field 'fps')")
        return len(list_frame_files(video)) / fps
    return probe(video).duration


def source_audio(path: str | os.PathLike, sample_rate: int, start: float, end: float) -> np.ndarray | None:
    """Mono float32 samples of [start, end] from a video or audio file (ERATO's mp3); None when it has no
    audio track or is a frames folder. Only the span is decoded (:mod:`perr.video.audio`). Other read
    failures raise: a clip whose audio exists but cannot be decoded is a real error."""
    path = Path(path)
    if path.is_dir():
        return None
    if not path.exists():
        raise VideoError(path, "file not found")
    return audio_span(path, sample_rate, start, end)


def source_frame_size(video: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the source's native frames."""
    video = Path(video)
    if video.is_dir():
        import cv2

        img = cv2.imread(str(list_frame_files(video)[0]), cv2.IMREAD_COLOR)
        if img is None:
            raise SourceError(f"{video}: first frame is not a readable image")
        return img.shape[1], img.shape[0]
    info = probe(video)
    return info.width, info.height
