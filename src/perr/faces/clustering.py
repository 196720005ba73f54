"""One identity per person across a whole video: person tracks grouped by their identity descriptors.

A track is one person inside one shot. Identities are found in two steps:

1. **Stitching** (within a shot): a track that starts just after another one ended, near where that
   one was last seen, continues it — a face lost for a second (a turn of the head, a missed detection)
   would otherwise become a second person. A track another track overlaps in time is never stitched.
2. **Constrained agglomerative clustering** (over the whole video): average linkage on the dlib
   distance between the stitched groups' descriptors; two groups seen in the same sampled frame are
   two people (a cannot-link: their distance is set far beyond any threshold). Groups without a
   descriptor (a body seen from behind, a face too small to align) stay people of their own.

Clustering the whole video at once, rather than each story segment, is what makes ``c3`` the same
person in every clip of an episode. Pairs are only compared inside a shot for the cannot-link (tracks
never cross a cut), so the cost is one N×N distance matrix, not N² set intersections.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perr.faces.tracker import Track

#: Distance that stands for "cannot be the same person": with average linkage a single such pair
#: keeps two clusters apart unless they hold more than a million track pairs.
CANNOT_LINK = 1e6


@dataclass(frozen=True)
class StitchRule:
    """When a track continues an earlier one of the same shot."""

    max_gap: float = 2.0  # seconds between the end of one and the start of the next
    max_shift: float = 1.0  # centre distance, in box widths


def _center(t: Track, first: bool) -> tuple[float, float, float]:
    box = t.boxes[0] if first else t.boxes[-1]
    (cx, cy), w = box.center, max(box.x1 - box.x0, 1.0)
    return cx, cy, w


def stitch(tracks: Sequence[Track], rule: StitchRule | None = None) -> list[list[Track]]:
    """Chains of tracks that are one person within their shot (see module doc), in track order."""
    rule = rule or StitchRule()
    by_shot: dict[int, list[Track]] = defaultdict(list)
    for t in tracks:
        by_shot[t.shot].append(t)
    chains: list[list[Track]] = []
    for shot in sorted(by_shot):
        open_chains: list[list[Track]] = []
        for t in sorted(by_shot[shot], key=lambda t: (t.start, t.id)):
            best, best_shift = None, rule.max_shift
            overlapped = {id(c) for c in open_chains if c[-1].end >= t.start}
            for c in open_chains:
                last = c[-1]
                if id(c) in overlapped or t.start - last.end > rule.max_gap:
                    continue
                if last.kind != t.kind:
                    continue
                (ax, ay, aw), (bx, by, bw) = _center(last, False), _center(t, True)
                shift = float(np.hypot(ax - bx, ay - by)) / max(aw, bw)
                if shift <= best_shift and not _competing(c, t, open_chains, overlapped, rule):
                    best, best_shift = c, shift
            if best is None:
                open_chains.append([t])
            else:
                best.append(t)
        chains.extend(open_chains)
    return chains


def _competing(
    chain: list[Track], t: Track, chains: list[list[Track]], overlapped: set[int], rule: StitchRule
) -> bool:
    """Whether another person is on screen at the gap between `chain` and `t` (then the gap is not
    a lost face but a second person's turn: no stitch)."""
    lo, hi = chain[-1].end, t.start
    return any(
        c is not chain and id(c) in overlapped and c[-1].start <= hi and c[-1].end >= lo for c in chains
    )


def _descriptor(chain: list[Track]) -> np.ndarray | None:
    vecs = [(t.embedding, len(t.faces)) for t in chain if t.embedding is not None]
    if not vecs:
        return None
    w = np.array([n for _, n in vecs], np.float64)
    return (np.stack([v for v, _ in vecs]) * w[:, None]).sum(0) / w.sum()


def _times(chain: list[Track]) -> set[float]:
    return {round(f.time, 4) for t in chain for f in t.faces}


def cluster_identities(
    tracks: Sequence[Track], threshold: float = 0.5, stitch_rule: StitchRule | None = None
) -> list[list[Track]]:
    """Tracks grouped into people over a whole video (see module doc), largest screen presence first.

    Deterministic: the result depends only on the tracks (their order, times and descriptors), so a
    chunked build and a single pass give the same identities."""
    chains = stitch(tracks, stitch_rule)
    with_vec = [(c, v) for c in chains if (v := _descriptor(c)) is not None]
    groups: list[list[Track]] = []
    if len(with_vec) == 1:
        groups.append(with_vec[0][0])
    elif with_vec:
        from sklearn.cluster import AgglomerativeClustering

        x = np.stack([v for _, v in with_vec]).astype(np.float64)
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
        np.fill_diagonal(d, 0.0)
        shots: dict[int, list[int]] = defaultdict(list)
        for i, (c, _) in enumerate(with_vec):
            for s in {t.shot for t in c}:
                shots[s].append(i)
        times = [_times(c) for c, _ in with_vec]
        for members in shots.values():
            for a, i in enumerate(members):
                for j in members[a + 1 :]:
                    if times[i] & times[j]:
                        d[i, j] = d[j, i] = CANNOT_LINK
        labels = AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
        ).fit_predict(d)
        merged: dict[int, list[Track]] = {}
        for (c, _), lab in zip(with_vec, labels, strict=True):
            merged.setdefault(int(lab), []).extend(c)
        groups.extend(merged.values())
    groups.extend(c for c in chains if _descriptor(c) is None)
    for g in groups:
        g.sort(key=lambda t: (t.start, t.id))
    groups.sort(key=lambda g: (-len(_times(g)), g[0].start, g[0].id))
    return groups
