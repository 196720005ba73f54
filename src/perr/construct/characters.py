"""Characters of a clip window: face tracks of one story segment grouped into identities
(:func:`perr.faces.cluster_tracks`), then counted inside the window — most frequent first; the top
three are the pair candidates (paper §3.2)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from perr.faces import Track
from perr.intervals import merge_spans


@dataclass
class CharacterSummary:
    """One identity inside a time window: its spans, occurrences and best face crop."""

    tracks: list[Track]
    spans: list[tuple[float, float]]
    occurrences: int
    thumbnail: np.ndarray | None
    embedding: np.ndarray | None  # mean identity descriptor (None when its tracks were not embedded)

    @property
    def seconds(self) -> float:
        return sum(e - s for s, e in self.spans)


def summarise(
    groups: list[list[Track]], start: float, end: float, sample_step: float, cuts: list[float] | None = None
) -> list[CharacterSummary]:
    """Characters inside [start, end], most frequent first.

    A sampled face at time t stands for [t, t + step) on screen, so spans are the union of those
    intervals (clipped to the window and to the next shot cut in `cuts`; gaps under half a step,
    from frame-time jitter, are closed); occurrences count sampled frames with the face.
    """
    cuts = sorted(cuts or [])

    def stop(t: float) -> float:
        i = bisect.bisect_right(cuts, t + 1e-9)
        return min(end, t + sample_step, cuts[i] if i < len(cuts) else np.inf)

    out: list[CharacterSummary] = []
    for g in groups:
        times = sorted({f.time for t in g for f in t.faces if start <= f.time < end})
        if not times:
            continue
        spans = merge_spans([(t, stop(t)) for t in times], gap=0.5 * sample_step)
        crops = sorted((c for t in g for c in t.crops), key=lambda c: -c[0])
        vecs = [t.embedding for t in g if t.embedding is not None]
        emb = np.mean(vecs, axis=0) if vecs else None
        out.append(CharacterSummary(g, spans, len(times), crops[0][1] if crops else None, emb))
    out.sort(key=lambda c: (-c.occurrences, c.spans[0][0]))
    return out
