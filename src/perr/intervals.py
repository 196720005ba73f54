"""Time intervals as (start, end) pairs: runs of a per-step flag, union, length, intersection.

On-screen spans, subtitle spans and masked steps all reduce to these few operations, shared by the
build, the statistics, the features and the synthetic generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Span = tuple[float, float]


def true_runs(flags: Iterable[bool] | np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) index runs where `flags` is true."""
    out, start = [], None
    for i, f in enumerate([*list(flags), False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def merge_spans(spans: Iterable[Span], gap: float = 0.0) -> list[Span]:
    """The union of `spans`, sorted; spans separated by at most `gap` are joined, empty ones dropped."""
    out: list[Span] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def total_length(spans: Sequence[Span]) -> float:
    return float(sum(e - s for s, e in spans))


def overlap(a: Sequence[Span], b: Sequence[Span]) -> float:
    """Total length of the intersection of two merged, sorted span lists."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total
