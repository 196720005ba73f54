"""Where a long video is cut into chunks, so that several worker processes share one episode.

The video is cut at keyframes into chunks of about `chunk_seconds` (seeks land on keyframes exactly). A
chunk *owns* the shots that start inside it; its worker decodes from `WARMUP` seconds before its start
(:mod:`perr.construct.chunks.scan`). A one-chunk plan (short videos) is the single pass itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from perr.video import open_container

#: Seconds decoded before a chunk's owned start: PySceneDetect's memory (previous frame, min_scene_len
#: of 15 frames, the adaptive detector's window) is well under this at any common frame rate.
WARMUP = 5.0
#: Default chunk length of `perr build run`: long enough that the warm-up and tail are a few percent, short
#: enough that a 20-minute episode keeps 2–4 workers busy and the progress bar moves every minute or so.
CHUNK_SECONDS = 120.0


@dataclass(frozen=True)
class Chunk:
    """Owned region [start, end) of a video; `end` None for the last chunk."""

    index: int
    start: float
    end: float | None

    def owns(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


def plan_chunks(path: Path, duration: float, chunk_seconds: float | None) -> list[Chunk]:
    """Chunks of about `chunk_seconds`, each starting at the keyframe at or before its nominal start
    (seeks land there exactly); one chunk when the video is short or chunking is off."""
    if not chunk_seconds or duration <= 1.5 * chunk_seconds:
        return [Chunk(0, 0.0, None)]
    starts = [0.0]
    container = open_container(path)
    try:
        vs = container.streams.video[0]
        tb = float(vs.time_base)
        origin = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        for k in range(1, math.ceil(duration / chunk_seconds)):
            target = k * chunk_seconds
            container.seek(int((target + origin) / tb), stream=vs, backward=True, any_frame=False)
            pkt = next((p for p in container.demux(vs) if p.pts is not None), None)
            if pkt is None:
                break
            t = round(pkt.pts * tb - origin, 6)
            if t > starts[-1] + 2 * WARMUP and t < duration - chunk_seconds / 4:
                starts.append(t)
    finally:
        container.close()
    return [Chunk(i, s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]
