"""Characters of a clip window: the cast members (:mod:`perr.construct.cast`) seen inside it, counted
and ranked — most frequent first; the top three are the pair candidates (paper §3.2)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from perr.construct.cast import CastMember
from perr.faces import Track
from perr.intervals import merge_spans


@dataclass
class CharacterSummary:
    """One cast member inside a time window: its spans, occurrences and best crop."""

    id: str
    tracks: list[Track]
    spans: list[tuple[float, float]]
    occurrences: int
    thumbnail: np.ndarray | None
    embedding: np.ndarray | None  # mean identity descriptor (None without a face descriptor)

    @property
    def seconds(self) -> float:
        return sum(e - s for s, e in self.spans)


def summarise(
    members: Iterable[CastMember],
    start: float,
    end: float,
    sample_step: float,
    cuts: list[float] | None = None,
    body_step: float | None = None,
) -> list[CharacterSummary]:
    """Characters inside [start, end], most frequent first.

    A sampled face at time t stands for [t, t + step) on screen (a body detection, made on fewer
    frames, for [t, t + body_step)), so spans are the union of those intervals (clipped to the window
    and to the next shot cut in `cuts`; gaps under half a step, from frame-time jitter, are closed);
    occurrences count sampled frames with the face or the body.
    """
    cuts = sorted(cuts or [])
    body_step = body_step or sample_step

    def stop(t: float, step: float) -> float:
        i = bisect.bisect_right(cuts, t + 1e-9)
        return min(end, t + step, cuts[i] if i < len(cuts) else np.inf)

    out: list[CharacterSummary] = []
    for m in members:
        tracks = [t for t in m.tracks if t.end >= start and t.start < end]
        seen = {(round(f.time, 4), sample_step) for t in tracks for f in t.faces if start <= f.time < end}
        seen |= {(round(b.time, 4), body_step) for t in tracks for b in t.bodies if start <= b.time < end}
        if not seen:
            continue
        times = {t for t, _ in seen}
        spans = merge_spans([(t, stop(t, step)) for t, step in seen], gap=0.5 * sample_step)
        crops = sorted((c for t in tracks for c in t.crops if t.faces), key=lambda c: -c[0])
        crops = crops or sorted((c for t in tracks for c in t.crops), key=lambda c: -c[0])
        vecs = [t.embedding for t in tracks if t.embedding is not None]
        emb = np.mean(vecs, axis=0) if vecs else None
        out.append(CharacterSummary(m.id, tracks, spans, len(times), crops[0][1] if crops else None, emb))
    out.sort(key=lambda c: (-c.occurrences, c.spans[0][0], c.id))
    return out
