"""Clip proposals: the characters of each clip window, the pair candidates and their thumbnails.

Input is what the sampled pass produced for one video (face tracks with embeddings, subtitle cues)
and the segment → windows plan; output is one ``Clip`` record per window — ``status="proposal"``
when it holds 2…max_characters characters (paper §3.2: clips with 1 or more than 6 characters are
dropped), else ``status="discarded"`` with the reason in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perr.build.characters import Track, cluster_tracks, summarise
from perr.build.segments import Segment, Window
from perr.build.subtitles import Cue
from perr.io import atomic_open
from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan


@dataclass(frozen=True)
class ProposalRules:
    cluster_threshold: float = 0.5  # dlib distance under which tracks are one character
    min_occurrences: int = 2  # sampled frames a character needs inside a window to count
    max_characters: int = 6
    n_candidates: int = 3


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> None:
    """Atomically write an RGB image as JPEG (thumbnails)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"cannot encode thumbnail {path}")
    with atomic_open(path, "wb", encoding=None) as fh:
        fh.write(buf.tobytes())


def _ms(t: float) -> float:
    return round(t, 3)


def drop_reason(n_characters: int, max_characters: int) -> str | None:
    if n_characters < 2:
        return f"{n_characters} character(s): a pair needs two"
    if n_characters > max_characters:
        return f"{n_characters} characters (more than {max_characters})"
    return None


def make_proposals(
    key: str,
    video: str,
    plan: list[tuple[Segment, list[Window], list[tuple[float, float, str]]]],
    tracks: list[Track],
    cues: list[Cue],
    cuts: list[float],
    sample_step: float,
    out: Path,
    rules: ProposalRules | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[list[Clip], list[Clip], dict[str, np.ndarray]]:
    """(proposals, dropped, embeddings "<clip_id>/<character id>" → mean descriptor) for one video.

    Characters are clustered per segment (the shots of one scene), then counted per window, most
    frequent first (ids c1, c2, …); thumbnails of the candidates go to ``out/thumbnails/<clip_id>/``.
    """
    rules = rules or ProposalRules()
    extra = extra or {}
    clips: list[Clip] = []
    dropped: list[Clip] = []
    embeddings: dict[str, np.ndarray] = {}

    def next_id() -> str:
        return f"{key}_{len(clips) + len(dropped):03d}"

    for seg, windows, rejects in plan:
        first, last = seg.shots[0].index, seg.shots[-1].index
        groups = cluster_tracks([t for t in tracks if first <= t.shot <= last], rules.cluster_threshold)
        for w in windows:
            chars = [c for c in summarise(groups, w.start, w.end, sample_step, cuts)
                     if c.occurrences >= rules.min_occurrences]
            cid = next_id()
            reason = drop_reason(len(chars), rules.max_characters)
            characters = []
            for k, c in enumerate(chars, start=1):
                thumb = None
                if reason is None:
                    if c.embedding is not None:
                        embeddings[f"{cid}/c{k}"] = c.embedding.astype(np.float32)
                    if k <= rules.n_candidates and c.thumbnail is not None:
                        rel = Path("thumbnails") / cid / f"c{k}.jpg"
                        write_jpeg(out / rel, c.thumbnail)
                        thumb = rel.as_posix()
                characters.append(Character(
                    id=f"c{k}", spans=[TimeSpan(start=_ms(a), end=_ms(b)) for a, b in c.spans],
                    occurrences=c.occurrences, thumbnail=thumb,
                ))
            clip = Clip(
                clip_id=cid, video=video, start=_ms(w.start), end=_ms(w.end),
                shots=[TimeSpan(start=_ms(s.start), end=_ms(s.end)) for s in w.shots],
                characters=characters,
                candidates=[c.id for c in characters[: rules.n_candidates]] if reason is None else [],
                subtitles=[
                    SubtitleEvent(start=_ms(max(c.start, w.start)), end=_ms(min(c.end, w.end)), text=c.text)
                    for c in cues if c.end > w.start and c.start < w.end and c.text.strip()
                ],
                status="proposal" if reason is None else "discarded",
                notes=reason,
                extra={"segment": seg.index, **extra},
            )
            (clips if reason is None else dropped).append(clip)
        for a, b, why in rejects:
            dropped.append(Clip(clip_id=next_id(), video=video, start=_ms(a), end=_ms(max(b, a + 1e-3)),
                                status="discarded", notes=why, extra={"segment": seg.index}))
    return clips, dropped, embeddings
