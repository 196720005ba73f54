"""Seeded train/val/test splits written into each clip's `split` field.

- `stratified`: the paper's split — within every fine class, a random `test_frac` of the clips
  (rounded) goes to test (and `val_frac` to val), the rest to train.
- `drama`: no drama appears in two splits, so a model is tested on unseen shows; whole dramas are
  drawn in random order and added to test while that brings the test share closer to `test_frac`
  of the clips (then the same for val).

Only clips with a label that are not discarded or under review are split; the others get
`split = None`. Results depend only on the seed and the clips (not on the manifest's row order).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from perr.labels import FINE
from perr.manifest import Clip, load_manifest, write_manifest

MODES = ("stratified", "drama")


def eligible(clip: Clip) -> bool:
    return clip.label is not None and clip.status not in ("discarded", "review")


def _check_fracs(test_frac: float, val_frac: float) -> None:
    if not (0 < test_frac < 1 and 0 <= val_frac < 1 and test_frac + val_frac < 1):
        raise ValueError(f"need 0 < test_frac, 0 <= val_frac and test_frac + val_frac < 1; got {test_frac}, {val_frac}")


def stratified_split(clips: Sequence[Clip], seed: int, test_frac: float = 0.2, val_frac: float = 0.0) -> dict[str, str]:
    """clip_id → split, drawing `round(n_c * frac)` clips of every class c at random."""
    _check_fracs(test_frac, val_frac)
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = defaultdict(list)
    for c in clips:
        if eligible(c):
            by_class[c.label].append(c.clip_id)
    out: dict[str, str] = {}
    for label in FINE:
        ids = sorted(by_class.get(label, []))
        order = [ids[i] for i in rng.permutation(len(ids))]
        n_test = round(len(ids) * test_frac)
        n_val = round(len(ids) * val_frac)
        for k, cid in enumerate(order):
            out[cid] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return out


def drama_split(clips: Sequence[Clip], seed: int, test_frac: float = 0.2, val_frac: float = 0.0) -> dict[str, str]:
    """clip_id → split with every drama in exactly one split; raises naming clips without a drama."""
    _check_fracs(test_frac, val_frac)
    pool = [c for c in clips if eligible(c)]
    missing = [c.clip_id for c in pool if not c.drama]
    if missing:
        raise ValueError(f"drama split needs a drama for every clip; missing for {len(missing)}: {missing[:10]}")
    size = Counter(c.drama for c in pool)
    if len(size) < 2 + (val_frac > 0):
        raise ValueError(f"drama split needs at least {2 + (val_frac > 0)} dramas, found {len(size)}")
    rng = np.random.default_rng(seed)
    dramas = sorted(size)
    order = [dramas[i] for i in rng.permutation(len(dramas))]
    total = sum(size.values())
    assign: dict[str, str] = {}
    for split, frac in (("test", test_frac), ("val", val_frac)):
        if frac <= 0:
            continue
        target, got = frac * total, 0
        for d in order:
            if d in assign:
                continue
            if got == 0 or abs(got + size[d] - target) < abs(got - target):
                assign[d] = split
                got += size[d]
    left = [d for d in order if d not in assign]
    if not left:  # never leave train empty: give back the last drama taken
        assign.pop(order[-1])
    return {c.clip_id: assign.get(c.drama, "train") for c in pool}


def split_clips(clips: Sequence[Clip], mode: str, seed: int, test_frac: float = 0.2, val_frac: float = 0.0) -> list[Clip]:
    """Clips with `split` set by `mode` (ineligible clips get None)."""
    if mode not in MODES:
        raise ValueError(f"unknown split mode {mode!r}; expected one of {', '.join(MODES)}")
    fn = stratified_split if mode == "stratified" else drama_split
    assign = fn(clips, seed, test_frac, val_frac)
    return [c.model_copy(update={"split": assign.get(c.clip_id)}) for c in clips]


def split_summary(clips: Sequence[Clip]) -> dict[str, dict[str, int]]:
    """split → fine class → count (plus 'total'), for the printed table and tests."""
    out: dict[str, dict[str, int]] = {}
    for s in ("train", "val", "test"):
        in_s = [c for c in clips if c.split == s]
        counts = Counter(c.label for c in in_s)
        out[s] = {**{label: counts.get(label, 0) for label in FINE}, "total": len(in_s)}
    return out


def split_manifest(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    mode: str,
    seed: int,
    test_frac: float = 0.2,
    val_frac: float = 0.0,
) -> tuple[Path, list[Clip]]:
    clips = split_clips(load_manifest(manifest), mode, seed, test_frac, val_frac)
    return write_manifest(out, clips), clips
