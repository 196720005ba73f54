"""Checks of a packed store split that training runs before it trusts the data: index and header agree,
clip ids are unique, labels belong to the tasks, arrays have the header's shapes and hold no NaN/inf.

`perr data validate` prints the same lines, so what a user sees there is exactly what would have
stopped a run.

The NaN/inf scan reads every value (3.7 GB at ERATO's size), so it streams the files in chunks with a
progress bar, and its result is kept in `<split>/validation.json` beside each file's size and
modification time: an unchanged file is not scanned again, a changed one (size or mtime) is. A file
modified less than `RACY_NS` before it was checked is not recorded (a later change within the same
timestamp tick would look unchanged), so it is simply scanned again next time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perr.io import read_json, write_json
from perr.progress import progress_bar
from perr.store import FeatureSplit, RowFile, StoreError

#: bytes read per chunk of the NaN/inf scan, so a multi-GB file never loads whole
_CHUNK_BYTES = 32 * 2**20
VALIDATION_FILE = "validation.json"
_CACHE_FORMAT = 1
#: a file modified this recently when checked is not recorded (coarse file timestamps; see above)
RACY_NS = 250_000_000


def validate_split(
    folder: str | os.PathLike, modalities: Sequence[str] | None = None, use_cache: bool = True
) -> list[str]:
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
    to_scan: list[tuple[str, Path]] = []
    for spec in header.modalities:
        if modalities is not None and spec.name not in modalities:
            continue
        for suffix, shape in ((".npy", (header.n, header.T, spec.dim)), (".mask.npy", (header.n, header.T))):
            path = folder / f"{spec.name}{suffix}"
            if not path.exists():
                problems.append(f"{path}: missing file for modality {spec.name!r}")
                continue
            try:
                found = _shape(path)
            except (ValueError, OSError) as e:
                problems.append(f"{path}: unreadable ({e})")
                continue
            if found != shape:
                problems.append(f"{path}: shape {found}, expected {shape} from header.json")
                continue
            if suffix == ".npy":
                to_scan.append((spec.name, path))
    for name, bad in _nonfinite(folder, to_scan, use_cache).items():
        for row, steps in bad:
            problems.append(
                f"row {row} (clip {ids[row] if row < len(ids) else '?'}): {name}: NaN/inf at {steps} step(s)"
            )
    return problems


def _nonfinite(
    folder: Path, files: Sequence[tuple[str, Path]], use_cache: bool
) -> dict[str, list[tuple[int, int]]]:
    """Per modality, the rows holding NaN/inf and at how many steps; unchanged files from the cache."""
    cache_path = folder / VALIDATION_FILE
    cached = _read_cache(cache_path) if use_cache else {}
    result: dict[str, list[tuple[int, int]]] = {}
    todo: list[tuple[str, Path, os.stat_result, int]] = []
    for name, path in files:
        st = path.stat()
        entry = cached.get(path.name)
        if isinstance(entry, dict) and entry.get("stat") == [st.st_size, st.st_mtime_ns]:
            result[name] = [(int(r), int(s)) for r, s in entry["nonfinite"]]
        else:
            todo.append((name, path, st, time.time_ns()))
    if not todo:
        return result
    fresh: dict[str, Any] = {}
    total = sum(_shape(p)[0] for _, p, _, _ in todo)
    with progress_bar("NaN/inf scan", total, "rows") as update:
        done = 0
        for name, path, st, checked_ns in todo:
            bad: list[tuple[int, int]] = []
            for rows, chunk_bad in _scan(path):
                bad += chunk_bad
                done += rows
                update(done, total)
            result[name] = bad
            if checked_ns - st.st_mtime_ns > RACY_NS and path.stat().st_mtime_ns == st.st_mtime_ns:
                fresh[path.name] = {"stat": [st.st_size, st.st_mtime_ns], "nonfinite": bad}
    if use_cache and fresh:
        _write_cache(cache_path, {**cached, **fresh})
    return result


def _shape(path: Path) -> tuple[int, ...]:
    """An array's shape from its `.npy` header, read as the store reads it (:class:`RowFile`)."""
    f = RowFile(path)
    f.close()
    return f.shape


def _scan(path: Path) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """Yield (rows read, [(row, steps with NaN/inf)]) per chunk of a float16/float32 [N, T, d] file."""
    f = RowFile(path)
    try:
        per = max(1, _CHUNK_BYTES // max(1, f.row_bytes))
        for start in range(0, len(f), per):
            stop = min(len(f), start + per)
            block = f.read_range(start, stop)
            # float16: exponent bits all ones is inf or NaN (an integer test, no float conversion)
            half = block.dtype == np.float16
            bad = ((block.view(np.uint16) & 0x7C00) == 0x7C00) if half else ~np.isfinite(block)
            steps = bad.any(axis=-1)
            rows = np.flatnonzero(steps.any(axis=-1))
            yield stop - start, [(start + int(r), int(steps[r].sum())) for r in rows]
    finally:
        f.close()


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _write_cache(path: Path, files: dict[str, Any]) -> None:
    """Record the scan beside the data; a read-only store is simply scanned every time."""
    with contextlib.suppress(OSError):
        write_json(
            path,
            {
                "format": _CACHE_FORMAT,
                "check": "NaN/inf per feature file; [size, mtime_ns] of the file when it was scanned",
                "files": files,
            },
            indent=1,
        )
