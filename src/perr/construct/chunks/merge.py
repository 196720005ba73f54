"""The chunks of one video put together into what one pass over the whole video gives.

The cut list is the single pass's exactly when each chunk's warm-up is longer than the detector's memory
(tests check this on generated episodes and on PySceneDetect's golden cut lists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perr.construct.chunks.scan import ChunkResult
from perr.construct.ocr import merge_adjacent
from perr.construct.scan import shot_index
from perr.construct.segments import ShotLooks
from perr.construct.shots import Shot
from perr.faces import Track
from perr.subtitles import Cue


@dataclass
class MergedChunks:
    """A whole video's chunks as one pass: its shots and what its sampled frames gave."""

    shots: list[Shot]
    scene_list: tuple[list[Any], list[Any]]  # PySceneDetect's (scenes, cuts), for its own CSV writer
    tracks: list[Track]  # `shot` is the global shot index
    looks: ShotLooks  # keyed by global shot index
    cues: list[Cue]
    frames: int
    faces: int
    ocr_calls: int
    last_time: float
    resampled: bool
    problems: list[str]
    bodies: int = 0
    crowded: list[float] = field(default_factory=list)  # sampled frames with more than max_faces faces


def merge_chunks(scans: list[ChunkResult]) -> MergedChunks:
    """The chunks of one video (any order) as one pass: cuts, shots, tracks, looks and subtitles."""
    import scenedetect

    scans = sorted(scans, key=lambda s: s.chunk.index)
    cuts = sorted((c for s in scans for c in s.cuts), key=lambda c: c.seconds)
    end = scans[-1].video_end
    if end is None:
        raise ValueError("the last chunk has no video end: chunks are missing")
    first = scenedetect.FrameTimecode(0, fps=end.frame_rate)
    bounds = [first, *cuts, end]
    scenes = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    shots = [
        Shot(i, float(a.seconds), float(b.seconds), int(a.frame_num), int(b.frame_num))
        for i, (a, b) in enumerate(scenes)
    ]
    starts = [s.start for s in shots]
    tracks: list[Track] = []
    for s in scans:
        for t in sorted(s.tracks, key=lambda t: t.id):
            t.shot = shot_index(starts, t.start)
            t.id = len(tracks)
            tracks.append(t)
    looks = ShotLooks()
    for s in scans:
        for start, (total, count) in s.looks.items():
            i = shot_index(starts, start)
            looks.sums[i], looks.counts[i] = total, count
    cues = merge_adjacent(sorted((c for s in scans for c in s.cues), key=lambda c: c.start))
    return MergedChunks(
        shots=shots,
        scene_list=(scenes, cuts),
        tracks=tracks,
        looks=looks,
        cues=cues,
        frames=sum(s.frames for s in scans),
        faces=sum(s.faces for s in scans),
        ocr_calls=sum(s.ocr_calls for s in scans),
        last_time=max(s.last_time for s in scans),
        resampled=any(s.resampled for s in scans),
        problems=list(dict.fromkeys(p for s in scans for p in s.problems)),
        bodies=sum(s.bodies for s in scans),
        crowded=sorted(t for s in scans for t in s.crowded),
    )
