"""`perr data validate`: list every bad row and field of a manifest or a feature store.

Training calls the same checks and refuses bad data with the same messages, so what a user sees
from `validate` is exactly what would have stopped a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from perr.manifest import RowError, parse_manifest
from perr.store import SPLITS, FeatureSplit, StoreError

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
                        problems.append(f"row {row} (clip {ids[row] if row < len(ids) else '?'}): {spec.name}: NaN/inf at {steps} step(s)")
    return problems


def validate_path(path: str | os.PathLike) -> list[str]:
    """Validate a manifest (.jsonl), a split folder or a store root; return every problem found."""
    path = Path(path)
    if not path.exists():
        return [f"{path}: not found"]
    if path.is_file():
        _clips, errors = parse_manifest(path, check_files=True)
        return [f"{path}: {e}" for e in errors]
    if (path / "header.json").exists():
        return validate_split(path)
    splits = [s for s in SPLITS if (path / s).is_dir()]
    if not splits:
        return [f"{path}: neither a manifest (.jsonl) nor a feature store (no header.json, no {'/'.join(SPLITS)} folders)"]
    problems: list[str] = []
    signatures = {}
    for s in splits:
        problems.extend(validate_split(path / s))
        hp = path / s / "header.json"
        if hp.exists():
            try:
                h = json.loads(hp.read_text(encoding="utf-8"))
                signatures[s] = json.dumps([h.get("modalities"), h.get("T")], sort_keys=True)
            except json.JSONDecodeError as e:
                problems.append(f"{hp}: not valid JSON ({e.msg})")
    if len(set(signatures.values())) > 1:
        problems.append(f"{path}: splits disagree on modalities or T: {', '.join(signatures)}")
    return problems


__all__ = ["RowError", "validate_path", "validate_split"]
