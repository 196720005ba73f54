"""Subtitles a user already has for a video: a sidecar .srt, else an embedded text subtitle stream."""

from __future__ import annotations

import os

from perr.subtitles.cues import Cue
from perr.subtitles.files import find_sidecar_srt, read_srt
from perr.video import VideoReader


def existing_subtitles(video: str | os.PathLike) -> tuple[str, list[Cue]] | None:
    """(source description, cues) from a sidecar .srt, else the first embedded text stream with events;
    None when neither exists (then OCR is needed)."""
    side = find_sidecar_srt(video)
    if side is not None:
        return f"srt:{side.name}", read_srt(side)
    with VideoReader(video, backend="pyav") as r:
        for s in r.info.subtitle_streams:
            events = r.subtitle_events(s.index)
            if events:
                return f"stream:{s.index}:{s.language or 'und'}", [Cue(a, b, t) for a, b, t in events]
    return None
