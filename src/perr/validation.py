"""Checks of a packed store split that training runs before it trusts the data: index and header agree,
clip ids are unique, labels belong to the tasks, arrays have the header's shapes and hold no NaN/inf.

`perr data validate` prints the same lines, so what a user sees there is exactly what would have
stopped a run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from perr.store import FeatureSplit, StoreError

#: rows are scanned for NaN/inf in chunks, so a multi-GB memmap never loads whole
_CHUNK = 1024


def validate_split(folder: str | os.PathLike, modalities: Sequence[str] | None = None) -> list[str]:
    """Problems of one split folder as human-readable lines (empty list = valid)."""
    folder = Path(folder)
    try:
        split = FeatureSplit(folder)
    except StoreError as e:
        return [str(e)]
    problems: list[str] = []
    header = split.header
    ids = [r.get("clip_id") for r in split.index]
    if len(split.index) != header.n:
        problems.append(f"{folder}/index.parquet: {len(split.index)} rows, header.json says n={header.n}")
    seen: dict[str, int] = {}
    for row, cid in enumerate(ids):
        if cid in seen:
            problems.append(f"row {row} (clip {cid}): clip_id: duplicate (first at row {seen[cid]})")
        else:
            seen[cid] = row
    for task in header.tasks.values():
        for row, rec in enumerate(split.index):
            value = rec.get(task.column)
            try:
                task.target(value)
            except (KeyError, TypeError):
                problems.append(
                    f"row {row} (clip {ids[row]}): {task.column}: label {value!r} is not a class of task {task.name} "
                    f"({', '.join(task.classes)})"
                )
    for spec in header.modalities:
        if modalities is not None and spec.name not in modalities:
            continue
        for suffix, shape in ((".npy", (header.n, header.T, spec.dim)), (".mask.npy", (header.n, header.T))):
            path = folder / f"{spec.name}{suffix}"
            if not path.exists():
                problems.append(f"{path}: missing file for modality {spec.name!r}")
                continue
            try:
                arr = np.load(path, mmap_mode="r")
            except (ValueError, OSError) as e:
                problems.append(f"{path}: unreadable ({e})")
                continue
            if arr.shape != shape:
                problems.append(f"{path}: shape {arr.shape}, expected {shape} from header.json")
                continue
            if suffix == ".npy":
                for start in range(0, arr.shape[0], _CHUNK):
                    block = np.asarray(arr[start : start + _CHUNK], dtype=np.float32)
                    bad = ~np.isfinite(block)
                    for r in np.flatnonzero(bad.any(axis=(1, 2))):
                        steps = int(bad[r].any(axis=-1).sum())
                        row = start + int(r)
                        problems.append(
                            f"row {row} (clip {ids[row] if row < len(ids) else '?'}): {spec.name}: NaN/inf at {steps} step(s)"
                        )
    return problems
