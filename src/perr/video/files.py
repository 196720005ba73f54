"""Which files are videos (and images): expanding the user's files, folders and globs."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

VIDEO_EXTS: tuple[str, ...] = (
    ".mp4",
    ".mkv",
    ".avi",
    ".mov",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".flv",
    ".wmv",
)
IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def iter_video_files(inputs: Iterable[str | os.PathLike], exts: Sequence[str] = VIDEO_EXTS) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated file list."""
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
