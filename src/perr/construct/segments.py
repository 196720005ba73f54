"""Story segments (consecutive shots of one scene) and interaction-clip windows inside them.

After StoryGraphs: a scene is a run of shots that look alike or show the same people. Shot / reverse-shot
dialogue alternates camera set-ups (A B A B), so a shot joins the open segment when it resembles a
*recent* shot of that segment (within ``lookback`` seconds), not only the one just before it, or when
it shows a person seen in the segment within ``people_lookback`` seconds (the cast's ids, the same
person across shots) in a set-up that looks at least half as alike (one place, another angle; the
same two people in another place start a new scene); a shot that joins by neither still joins when the next shot brings the segment
back (the B of A B A). Then a segment shorter than ``min_seconds`` (three set-ups of a conversation
that share neither look nor face: the listener, then each speaker) is merged into the neighbour that
shares its people, else the one that looks more like it. Shot looks are HSV histograms averaged over
the shot's sampled frames (no extra decoding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from perr.construct.shots import Shot

HIST_BINS = (16, 8, 8)  # H, S, V


def frame_histogram(image: np.ndarray) -> np.ndarray:
    """Normalised HSV colour histogram of an RGB frame (downscaled first; ~0.2 ms)."""
    import cv2

    small = cv2.resize(image, (96, 54), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(float(h.sum()), 1.0)


def histogram_intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection in [0, 1] (1 = identical colour distributions)."""
    return float(np.minimum(a, b).sum())


@dataclass
class ShotLooks:
    """Accumulates the mean histogram of each shot from the sampled frames of the build pass."""

    sums: dict[int, np.ndarray] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)

    def update(self, shot: int, image: np.ndarray) -> None:
        h = frame_histogram(image)
        if shot in self.sums:
            self.sums[shot] += h
            self.counts[shot] += 1
        else:
            self.sums[shot] = h.copy()
            self.counts[shot] = 1

    def get(self, shot: int) -> np.ndarray | None:
        return self.sums[shot] / self.counts[shot] if shot in self.sums else None


@dataclass(frozen=True)
class Segment:
    index: int
    shots: tuple[Shot, ...]

    @property
    def start(self) -> float:
        return self.shots[0].start

    @property
    def end(self) -> float:
        return self.shots[-1].end

    @property
    def duration(self) -> float:
        return self.end - self.start


def segment_shots(
    shots: list[Shot],
    looks: ShotLooks | dict[int, np.ndarray],
    min_similarity: float = 0.5,
    lookback: float = 30.0,
    short_shot: float = 1.0,
    people: Mapping[int, frozenset[str]] | None = None,
    people_lookback: float = 20.0,
    min_seconds: float = 0.0,
) -> list[Segment]:
    """Group consecutive shots into segments (see module doc). Shots without looks join the open one;
    `people` maps a shot index to the characters seen in it."""
    get = looks.get
    people = people or {}
    groups: list[list[Shot]] = []

    def resembles(shot: Shot, group: list[Shot]) -> bool:
        h = get(shot.index)
        if h is None:
            return True
        who = people.get(shot.index, frozenset())
        for prev in reversed(group):
            gap = shot.start - prev.end
            if gap > max(lookback, people_lookback):
                break
            hp = get(prev.index)
            sim = histogram_intersection(h, hp) if hp is not None else 1.0
            if gap <= lookback and sim >= min_similarity:
                return True
            # the same people in a set-up that looks somewhat alike (one place, another angle)
            if (
                who
                and gap <= people_lookback
                and sim >= min_similarity / 2
                and who & people.get(prev.index, frozenset())
            ):
                return True
        return False

    for i, shot in enumerate(shots):
        if not groups:
            groups.append([shot])
            continue
        g = groups[-1]
        nxt = shots[i + 1] if i + 1 < len(shots) else None
        if shot.duration < short_shot or resembles(shot, g) or (nxt is not None and resembles(nxt, g)):
            g.append(shot)
        else:
            groups.append([shot])
    if min_seconds > 0:
        groups = _merge_short(groups, get, people, min_seconds)
    return [Segment(i, tuple(g)) for i, g in enumerate(groups)]


def _merge_short(
    groups: list[list[Shot]],
    get: Callable[[int], np.ndarray | None],
    people: Mapping[int, frozenset[str]],
    min_seconds: float,
) -> list[list[Shot]]:
    """Merge every segment shorter than `min_seconds` into a neighbour, shortest first: the neighbour
    sharing more of its people, then the one whose shots look more like it, then the earlier one."""

    def who(g: list[Shot]) -> frozenset[str]:
        return frozenset().union(*(people.get(s.index, frozenset()) for s in g))

    def look(g: list[Shot]) -> np.ndarray | None:
        hs = [h for s in g if (h := get(s.index)) is not None]
        return np.mean(hs, axis=0) if hs else None

    def affinity(a: list[Shot], b: list[Shot]) -> tuple[int, float]:
        la, lb = look(a), look(b)
        sim = histogram_intersection(la, lb) if la is not None and lb is not None else 0.0
        return len(who(a) & who(b)), sim

    groups = [list(g) for g in groups]
    while len(groups) > 1:
        span = [g[-1].end - g[0].start for g in groups]
        i = min(range(len(groups)), key=lambda k: (span[k], k))
        if span[i] >= min_seconds:
            break
        options = [j for j in (i - 1, i + 1) if 0 <= j < len(groups)]
        j = max(options, key=lambda j: (*affinity(groups[i], groups[j]), -j))
        lo, hi = min(i, j), max(i, j)
        groups[lo : hi + 1] = [groups[lo] + groups[hi]]
    return groups


@dataclass(frozen=True)
class Window:
    """A candidate clip: [start, end) inside one segment, cut at shot boundaries where possible."""

    segment: int
    start: float
    end: float
    shots: tuple[Shot, ...]

    @property
    def duration(self) -> float:
        return self.end - self.start


def clip_windows(
    segment: Segment, min_len: float = 5.0, max_len: float = 35.0
) -> tuple[list[Window], list[tuple[float, float, str]]]:
    """Split a segment into windows of at most `max_len` s at shot boundaries (a shot longer than
    `max_len` is cut inside); windows shorter than `min_len` are returned as rejects with a reason."""
    if min_len <= 0 or max_len < min_len:
        raise ValueError(f"need 0 < min_len ≤ max_len, got {min_len}, {max_len}")
    pieces: list[Shot] = []
    for s in segment.shots:  # cut over-long shots into max_len pieces
        t = s.start
        while s.end - t > max_len:
            pieces.append(Shot(s.index, t, t + max_len, s.start_frame, s.end_frame))
            t += max_len
        pieces.append(Shot(s.index, t, s.end, s.start_frame, s.end_frame))
    windows: list[Window] = []
    rejects: list[tuple[float, float, str]] = []
    cur: list[Shot] = []

    def flush() -> None:
        if not cur:
            return
        start, end = cur[0].start, cur[-1].end
        if end - start >= min_len:
            windows.append(Window(segment.index, start, end, tuple(cur)))
        else:
            rejects.append((start, end, f"shorter than {min_len:g} s ({end - start:.1f} s)"))

    for p in pieces:
        if cur and p.end - cur[0].start > max_len:
            flush()
            cur = []
        cur.append(p)
    flush()
    return windows, rejects
