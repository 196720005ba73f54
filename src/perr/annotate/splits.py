"""Seeded train/val/test splits written into each clip's `split` field.

- `stratified`: the paper's split — within every fine class, a random `test_fraction` of the clips
  (rounded) goes to test (and `val_fraction` to val), the rest to train (:func:`perr.splits.stratified_split`).
- `drama`: no drama appears in two splits, so a model is tested on unseen shows; whole dramas are
  drawn in random order and added to test while that brings the test share closer to `test_fraction`
  of the clips (then the same for val) (:func:`perr.splits.group_split`).

Only clips with a label that are not discarded or under review are split; the others get
`split = None`. Results depend only on the seed and the clips (not on the manifest's row order).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from perr.annotate.schema import AnnotationError
from perr.labels import FINE
from perr.manifest import Clip, load_manifest, write_manifest
from perr.splits import check_fractions, group_split, stratified_split

MODES = ("stratified", "drama")


def eligible(clip: Clip) -> bool:
    return clip.label is not None and clip.status not in ("discarded", "review")


def stratified_assignment(
    clips: Sequence[Clip], seed: int, test_fraction: float = 0.2, val_fraction: float = 0.0
) -> dict[str, str]:
    """clip_id → split: `round(n_c * fraction)` clips of every class c drawn at random (clips sorted by id
    first, so the result does not depend on the manifest's row order)."""
    check_fractions(test_fraction, val_fraction)
    pool = sorted((c for c in clips if eligible(c)), key=lambda c: c.clip_id)
    splits = stratified_split(
        [c.label for c in pool], {"test": test_fraction, "val": val_fraction}, seed, classes=FINE
    )
    return {c.clip_id: s for c, s in zip(pool, splits, strict=True)}


def drama_assignment(
    clips: Sequence[Clip], seed: int, test_fraction: float = 0.2, val_fraction: float = 0.0
) -> dict[str, str]:
    """clip_id → split with every drama in exactly one split; raises naming clips without a drama."""
    check_fractions(test_fraction, val_fraction)
    pool = [c for c in clips if eligible(c)]
    missing = [c.clip_id for c in pool if not c.drama]
    if missing:
        raise AnnotationError(
            f"drama split needs a drama for every clip; missing for {len(missing)}: {missing[:10]}"
        )
    splits = group_split(
        [c.drama for c in pool], {"test": test_fraction, "val": val_fraction}, seed, noun="drama"
    )
    return {c.clip_id: s for c, s in zip(pool, splits, strict=True)}


def split_clips(
    clips: Sequence[Clip], mode: str, seed: int, test_fraction: float = 0.2, val_fraction: float = 0.0
) -> list[Clip]:
    """Clips with `split` set by `mode` (ineligible clips get None)."""
    if mode not in MODES:
        raise AnnotationError(f"unknown split mode {mode!r}; expected one of {', '.join(MODES)}")
    fn = stratified_assignment if mode == "stratified" else drama_assignment
    assign = fn(clips, seed, test_fraction, val_fraction)
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
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
) -> tuple[Path, list[Clip]]:
    clips = split_clips(load_manifest(manifest), mode, seed, test_fraction, val_fraction)
    return write_manifest(out, clips), clips
