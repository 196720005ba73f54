"""Inter-annotator agreement on relationship labels, at the fine (5) and coarse (3) scale.

Measures (only votes that keep the clip and give a label count; discards are not labels):

- **Percent agreement** (the paper's measure, Glen 2016 [29]): for an item with n ≥ 2 labels,
  P_i = (number of agreeing annotator pairs) / C(n, 2); the figure is the mean of P_i over items
  with n ≥ 2. With two annotators per item this is the share of items on which they agree.
- **Cohen's kappa** per annotator pair over the items both labelled (scikit-learn).
- **Fleiss' kappa** over items with n ≥ 2 labels, in the form that allows n to vary per item:
  κ = (P̄ − P_e) / (1 − P_e), P̄ = mean P_i with P_i = (Σ_j n_ij² − n_i) / (n_i(n_i − 1)),
  P_e = Σ_j p_j², p_j = Σ_i n_ij / Σ_i n_i. With a constant n it is Fleiss (1971).
- **Trend**: items are placed at the time their last label was given (`created_at`) and grouped by
  ISO week (the paper's weekly cross-check), day, or consecutive windows of N items; percent
  agreement per group.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

import numpy as np

from perr.annotate.records import ParsedExport
from perr.annotate.schema import AnnotationError
from perr.labels import COARSE, FINE, FINE_TO_COARSE

SCALES: dict[str, tuple[tuple[str, ...], Mapping[str, str] | None]] = {
    "fine": (FINE, None),
    "coarse": (COARSE, FINE_TO_COARSE),
}


@dataclass(frozen=True)
class Item:
    """The labels annotators gave one clip, by annotator, and when the last one was given."""

    task_id: str
    labels: Mapping[str, str]
    time: datetime | None


def items_from_export(parsed: ParsedExport) -> list[Item]:
    items = []
    for t in parsed.tasks:
        votes = [v for v in t.votes if not v.discard and v.label is not None]
        if not votes:
            continue
        times = [v.created_at for v in votes if v.created_at is not None]
        items.append(Item(t.task_id, {v.annotator: v.label for v in votes}, max(times) if times else None))
    return items


def _scaled(labels: Mapping[str, str], scale: str) -> dict[str, str]:
    mapping = SCALES[scale][1]
    return {a: (mapping[x] if mapping else x) for a, x in labels.items()}


def item_agreement(labels: Sequence[str]) -> float | None:
    """Share of annotator pairs on one item that agree (None for fewer than 2 labels)."""
    n = len(labels)
    if n < 2:
        return None
    agree = sum(m * (m - 1) // 2 for m in Counter(labels).values())
    return agree / math.comb(n, 2)


def percent_agreement(items: Sequence[Item], scale: str = "fine") -> float | None:
    """Mean per-item pairwise agreement over items with ≥ 2 labels (a fraction in [0, 1])."""
    vals = [item_agreement(list(_scaled(it.labels, scale).values())) for it in items]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from an items × categories count matrix (rows with < 2 ratings are ignored).

    Returns None when chance agreement is 1 (every rating in one category): kappa is undefined.
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if len(n) == 0:
        return None
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / n.sum()
    p_e = float((p_j**2).sum())
    if math.isclose(p_e, 1.0):
        return None
    return float((p_bar - p_e) / (1 - p_e))


def count_matrix(items: Sequence[Item], scale: str) -> np.ndarray:
    classes = SCALES[scale][0]
    index = {c: j for j, c in enumerate(classes)}
    m = np.zeros((len(items), len(classes)), dtype=int)
    for i, it in enumerate(items):
        for lab in _scaled(it.labels, scale).values():
            m[i, index[lab]] += 1
    return m


def cohen_pairs(items: Sequence[Item], names: Mapping[str, str] | None = None) -> list[dict]:
    """Cohen's kappa and percent agreement for every pair of annotators with a shared item."""
    from sklearn.metrics import cohen_kappa_score

    names = names or {}
    annotators = sorted({a for it in items for a in it.labels}, key=lambda a: (len(a), a))
    rows = []
    for a, b in combinations(annotators, 2):
        shared = [it for it in items if a in it.labels and b in it.labels]
        if not shared:
            continue
        row: dict = {"a": names.get(a, a), "b": names.get(b, b), "a_id": a, "b_id": b, "n_items": len(shared)}
        for scale, (classes, _) in SCALES.items():
            la = [_scaled(it.labels, scale)[a] for it in shared]
            lb = [_scaled(it.labels, scale)[b] for it in shared]
            row[f"percent_{scale}"] = sum(x == y for x, y in zip(la, lb, strict=True)) / len(shared)
            with warnings.catch_warnings():  # undefined kappa (one shared class) is reported as None
                warnings.simplefilter("ignore")
                k = cohen_kappa_score(la, lb, labels=list(classes))
            row[f"kappa_{scale}"] = None if not np.isfinite(k) else float(k)
        rows.append(row)
    return rows


def _period(t: datetime, by: str) -> str:
    if by == "week":
        y, w, _ = t.isocalendar()
        return f"{y}-W{w:02d}"
    if by == "day":
        return t.date().isoformat()
    raise AnnotationError(f"unknown trend grouping {by!r}; use week, day or a number of items")


def trend(items: Sequence[Item], by: str | int = "week") -> list[dict]:
    """Percent agreement per time group (items with ≥ 2 labels and a timestamp), in time order."""
    timed = sorted(
        (it for it in items if it.time is not None and len(it.labels) >= 2), key=lambda it: it.time
    )
    groups: dict[str, list[Item]] = defaultdict(list)
    if isinstance(by, int) or str(by).isdigit():
        size = int(by)
        if size < 1:
            raise AnnotationError("trend window must be at least 1 item")
        for k, it in enumerate(timed):
            groups[f"items {k // size * size + 1}-{min((k // size + 1) * size, len(timed))}"].append(it)
    else:
        for it in timed:
            groups[_period(it.time, str(by))].append(it)
    return [
        {
            "period": name,
            "start": g[0].time.isoformat(),
            "end": g[-1].time.isoformat(),
            "n_items": len(g),
            "percent_fine": percent_agreement(g, "fine"),
            "percent_coarse": percent_agreement(g, "coarse"),
        }
        for name, g in groups.items()
    ]


def agreement_report(
    parsed: ParsedExport, names: Mapping[str, str] | None = None, by: str | int = "week"
) -> dict:
    """Every agreement figure as one JSON-ready dict."""
    names = names or {}
    items = items_from_export(parsed)
    multi = [it for it in items if len(it.labels) >= 2]
    per_item = Counter(len(it.labels) for it in items)
    annotators = sorted({a for it in items for a in it.labels}, key=lambda a: (len(a), a))
    return {
        "n_tasks": parsed.n_tasks,
        "n_items_labelled": len(items),
        "n_items_multi": len(multi),
        "labels_per_item": {str(k): v for k, v in sorted(per_item.items())},
        "annotators": {a: names.get(a, a) for a in annotators},
        "percent_agreement": {s: percent_agreement(multi, s) for s in SCALES},
        "fleiss_kappa": {s: fleiss_kappa(count_matrix(multi, s)) for s in SCALES},
        "cohen_kappa": cohen_pairs(items, names),
        "trend_by": str(by),
        "trend": trend(items, by),
        "n_problems": len(parsed.problems),
        "definition": (
            "percent agreement = mean over items with >=2 labels of (agreeing annotator pairs / all pairs); "
            "discards are not labels; coarse maps hostile,tense->negative, mild,intimate->positive"
        ),
    }
