"""The one splitter of perr: seeded, stratified by class, or disjoint by group (drama).

``val_fraction`` and ``test_fraction`` mean the same everywhere: the share of the clips being split
(per class, for stratified splits) that goes to that split. ``perr annotate split`` and ``perr data
synth`` split a whole dataset; training holds out part of a store's train split when it has no val
split (``TrainConfig.holdout_fraction``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from perr.errors import PerrError

Seed = int | Sequence[int]


class SplitError(PerrError, ValueError):
    """Fractions or groups that leave a split empty; the message names the values."""


def check_fractions(test_fraction: float, val_fraction: float) -> None:
    """Refuse fractions that leave nothing to train on (the message names both values)."""
    if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise SplitError(
            f"need 0 <= test_fraction, 0 <= val_fraction and test_fraction + val_fraction < 1; "
            f"got {test_fraction}, {val_fraction}"
        )


def stratified_split(
    labels: Sequence[Hashable],
    fractions: Mapping[str, float],
    seed: Seed,
    classes: Sequence[Hashable] | None = None,
) -> list[str]:
    """The split of each item (same order as `labels`); items not drawn stay in ``"train"``.

    Within each class (in `classes` order, default sorted), the class's items keep their given order,
    are shuffled by one generator seeded with `seed`, and the first ``round(n_c * fraction)`` go to each
    split of `fractions` in turn (e.g. ``{"test": 0.2, "val": 0.1}``). Callers that want a result
    independent of row order pass the items sorted (``perr annotate split`` sorts by clip id).
    """
    rng = np.random.default_rng(seed)
    out = ["train"] * len(labels)
    order = list(classes) if classes is not None else sorted(set(labels))  # type: ignore[type-var]
    by_class: dict[Hashable, list[int]] = {c: [] for c in order}
    for i, lab in enumerate(labels):
        if lab in by_class:
            by_class[lab].append(i)
    for c in order:
        idx = np.asarray(by_class[c], dtype=np.int64)
        idx = idx[rng.permutation(len(idx))]
        k = 0
        for name, fraction in fractions.items():
            n = round(len(idx) * fraction)
            for i in idx[k : k + n]:
                out[int(i)] = name
            k += n
    return out


def group_split(
    groups: Sequence[Hashable], fractions: Mapping[str, float], seed: Seed, noun: str = "group"
) -> list[str]:
    """The split of each item such that every group (drama) lies in exactly one split.

    Groups are drawn in seeded random order (`noun` names them in errors, e.g. "drama"); each split of `fractions` takes whole groups while that
    brings its share of the items closer to its fraction. Train is never left empty: when every group
    was taken, the last one goes back to train.
    """
    size = Counter(groups)
    names = sorted(size)  # type: ignore[type-var]
    if len(names) < 1 + sum(1 for f in fractions.values() if f > 0):
        need = 1 + sum(1 for f in fractions.values() if f > 0)
        raise SplitError(f"a {noun}-disjoint split needs at least {need} {noun}s, found {len(names)}")
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    total = sum(size.values())
    assign: dict[Hashable, str] = {}
    for split, fraction in fractions.items():
        if fraction <= 0:
            continue
        target, got = fraction * total, 0
        for g in order:
            if g in assign:
                continue
            if got == 0 or abs(got + size[g] - target) < abs(got - target):
                assign[g] = split
                got += size[g]
    if all(g in assign for g in order):  # never leave train empty: give back the last group taken
        assign.pop(order[-1])
    return [assign.get(g, "train") for g in groups]
