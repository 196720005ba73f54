"""Subtitle files: SRT read/write, perr's cue JSON, and the sidecar ``<video>[.<lang>].srt`` lookup."""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from perr.io import atomic_open
from perr.subtitles.cues import Cue

_SRT_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})")


def _srt_seconds(s: str) -> float:
    m = _SRT_TIME.search(s)
    if not m:
        raise ValueError(f"bad SRT time {s!r}")
    h, mi, se, ms = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(se) + int(ms.ljust(3, "0")) / 1000


def _srt_time(t: float) -> str:
    ms = round(max(0.0, t) * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def read_srt(path: str | os.PathLike) -> list[Cue]:
    """Parse an .srt file (UTF-8, BOM tolerated). Raises ValueError naming the file and block."""
    text = Path(path).read_text(encoding="utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    cues = []
    for n, block in enumerate(re.split(r"\n\s*\n", text.strip()), start=1):
        lines = [ln for ln in block.split("\n") if ln.strip() != ""]
        if not lines:
            continue
        i = 1 if "-->" not in lines[0] else 0
        if i >= len(lines) or "-->" not in lines[i]:
            raise ValueError(f"{path}: block {n}: no 'start --> end' line")
        a, b = lines[i].split("-->", 1)
        cues.append(Cue(_srt_seconds(a), _srt_seconds(b), "\n".join(lines[i + 1 :])))
    return cues


def write_srt(path: str | os.PathLike, cues: list[Cue]) -> None:
    with atomic_open(path) as fh:
        for i, c in enumerate(cues, start=1):
            fh.write(f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text}\n\n")


def write_cues_json(path: str | os.PathLike, cues: list[Cue], source: str) -> None:
    with atomic_open(path) as fh:
        json.dump({"source": source, "events": [asdict(c) for c in cues]}, fh, ensure_ascii=False, indent=1)
        fh.write("\n")


def read_cues_json(path: str | os.PathLike) -> tuple[str, list[Cue]]:
    with open(path, encoding="utf-8") as fh:
        d = json.load(fh)
    return d["source"], [Cue(**e) for e in d["events"]]


def find_sidecar_srt(video: str | os.PathLike) -> Path | None:
    """``movie.srt`` or ``movie.<lang>.srt`` beside ``movie.mp4`` (first in name order)."""
    v = Path(video)
    exact = v.with_suffix(".srt")
    if exact.is_file():
        return exact
    found = sorted(v.parent.glob(f"{glob.escape(v.stem)}.*.srt"))
    return found[0] if found else None
