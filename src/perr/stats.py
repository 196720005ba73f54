"""Dataset statistics of paper §3.3 for any list of clips, as numbers (figures: perr.report.dataset).

* durations (Fig. 2a), shots per clip (Fig. 2b), appearance ratio of the pair (Fig. 2c: the pair's
  seconds on screen, smaller over larger), subtitle ratio (Fig. 2d: seconds with a subtitle over the
  clip's length), interaction mode by IoM (Fig. 3: intersection of the two characters' on-screen time
  over the smaller of the two; = 0, between, = 1), and the class table (Table 2) when labels exist.
* The pair is the clip's own rule (:meth:`perr.manifest.Clip.pair_ids`): the annotated pair, else the
  top candidates, else the characters seen most often.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perr.intervals import merge_spans, overlap, total_length
from perr.labels import COARSE, FINE, to_coarse
from perr.manifest import Clip, TimeSpan

#: IoM values within this of 0 or 1 count as exactly 0 or 1 (span ends are rounded to ms).
IOM_EPS = 1e-3
IOM_MODES = ("IoM=0", "0<IoM<1", "IoM=1")


def clipped_spans(spans: Sequence[TimeSpan], start: float, end: float | None) -> list[tuple[float, float]]:
    """Spans cut to [start, end] and merged where they overlap."""
    hi = np.inf if end is None else end
    return merge_spans([(max(s.start, start), min(s.end, hi)) for s in spans])


def pair_of(clip: Clip) -> tuple[str, str] | None:
    """The clip's pair (:meth:`perr.manifest.Clip.pair_ids`) when it has two characters, else None."""
    a, b = clip.pair_ids()
    return (a, b) if a is not None and b is not None else None


@dataclass(frozen=True)
class PairTiming:
    seconds: tuple[float, float]
    appearance_ratio: float | None  # min/max seconds on screen; None when neither appears
    iom: float | None  # intersection / min; None when one of them never appears

    @property
    def mode(self) -> str | None:
        if self.iom is None:
            return None
        if self.iom <= IOM_EPS:
            return IOM_MODES[0]
        if self.iom >= 1 - IOM_EPS:
            return IOM_MODES[2]
        return IOM_MODES[1]


def pair_timing(clip: Clip) -> PairTiming | None:
    pair = pair_of(clip)
    if pair is None:
        return None
    try:
        a, b = (clip.character(p) for p in pair)
    except KeyError:
        return None
    sa, sb = clipped_spans(a.spans, clip.start, clip.end), clipped_spans(b.spans, clip.start, clip.end)
    la, lb = total_length(sa), total_length(sb)
    ratio = (min(la, lb) / max(la, lb)) if max(la, lb) > 0 else None
    iom = (overlap(sa, sb) / min(la, lb)) if min(la, lb) > 0 else None
    return PairTiming((la, lb), ratio, iom)


def subtitle_ratio(clip: Clip) -> float | None:
    if clip.duration is None or clip.duration <= 0:
        return None
    return min(1.0, total_length(clipped_spans(list(clip.subtitles), clip.start, clip.end)) / clip.duration)


def _summary(x: list[float]) -> dict[str, float | int | None]:
    if not x:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    a = np.asarray(x, dtype=float)
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def _hist(x: list[float], edges: np.ndarray) -> dict[str, list[float]]:
    counts, e = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
    return {"edges": [round(float(v), 4) for v in e], "counts": [int(c) for c in counts]}


def _class_table(labels: Sequence[str]) -> dict[str, Any] | None:
    """Table 2: count and ratio per fine class, grouped by coarse class. None if nothing is labelled."""
    if not labels:
        return None
    n = len(labels)
    fine = Counter(labels)
    coarse = Counter(to_coarse(lab) for lab in labels)
    return {
        "n": n,
        "fine": {k: {"count": fine.get(k, 0), "ratio": fine.get(k, 0) / n} for k in FINE},
        "coarse": {k: {"count": coarse.get(k, 0), "ratio": coarse.get(k, 0) / n} for k in COARSE},
    }


class ClipStats:
    """The §3.3 numbers gathered clip by clip, keeping a few scalars per clip instead of the clips, so a
    generator or a reader can stream any number of clips through it (:func:`compute_stats` uses it)."""

    def __init__(self) -> None:
        self.n = 0
        self.durations: list[float] = []
        self.shots: list[int] = []
        self.ratios: list[float] = []
        self.modes: Counter[str] = Counter()
        self.subs: list[float] = []
        self.labels: list[str] = []
        self.videos: set[str] = set()
        self.dramas: set[str] = set()
        self.status: Counter[str] = Counter()

    def add(self, clip: Clip) -> None:
        self.n += 1
        if clip.duration is not None:
            self.durations.append(clip.duration)
        if clip.shots:
            self.shots.append(len(clip.shots))
        t = pair_timing(clip)
        if t is not None:
            if t.appearance_ratio is not None:
                self.ratios.append(t.appearance_ratio)
            if t.mode is not None:
                self.modes[t.mode] += 1
        r = subtitle_ratio(clip)
        if r is not None:
            self.subs.append(r)
        if clip.label is not None:
            self.labels.append(clip.label)
        self.videos.add(clip.video)
        if clip.drama:
            self.dramas.add(clip.drama)
        self.status[clip.status or "unset"] += 1

    def result(self) -> dict[str, Any]:
        durations, subs, ratios, modes = self.durations, self.subs, self.ratios, self.modes
        shots = [float(s) for s in self.shots]
        max_shots = max(self.shots, default=1)
        n_modes = sum(modes.values())
        return {
            "n_clips": self.n,
            "total_hours": sum(durations) / 3600,
            "videos": len(self.videos),
            "dramas": len(self.dramas),
            "status": dict(self.status),
            "duration": {**_summary(durations), "hist": _hist(durations, np.arange(0, 36, 1.0))},
            "shots_per_clip": {
                **_summary(shots),
                "hist": _hist(shots, np.arange(0.5, max(max_shots, 25) + 1.5, 1.0)),
            },
            "appearance_ratio": {**_summary(ratios), "hist": _hist(ratios, np.linspace(0, 1, 11))},
            "interaction_mode": {
                "n": n_modes,
                "counts": {m: modes.get(m, 0) for m in IOM_MODES},
                "ratios": {m: (modes.get(m, 0) / n_modes if n_modes else None) for m in IOM_MODES},
            },
            "subtitle_ratio": {
                **_summary(subs),
                "hist": _hist(subs, np.linspace(0, 1, 11)),
                "no_subtitle_share": (sum(r == 0 for r in subs) / len(subs)) if subs else None,
            },
            "classes": _class_table(self.labels),
        }


def compute_stats(clips: Iterable[Clip]) -> dict[str, Any]:
    """All §3.3 numbers for a list of clips (proposals or annotated)."""
    acc = ClipStats()
    for c in clips:
        acc.add(c)
    return acc.result()
