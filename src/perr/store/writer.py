"""A split folder written chunk by chunk (:class:`SplitWriter`) or from whole arrays (:func:`write_split`),
atomically: a split is either complete or absent."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perr.io import write_json
from perr.store.header import StoreError, StoreHeader
from perr.store.rowfile import RowFile


class SplitWriter:
    """Write one split folder chunk by chunk, so memory stays flat whatever N is.

    Each modality is a float16 [N, T, d_m] `.npy` and a uint8 [N, T] mask, created at full size in a temp
    folder and filled in place by row chunks (:class:`RowFile`); `close` syncs them, writes
    `index.parquet` and `header.json` last and renames the folder into place, so a split is either
    complete or absent. Masked steps are zeroed (a masked step never leaks a value). As a context
    manager, an exception removes the temp folder.
    """

    def __init__(self, folder: str | os.PathLike, header: StoreHeader) -> None:
        self.folder = Path(folder)
        self.header = header
        self.tmp = self.folder.with_name(f".{self.folder.name}.tmp")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        n, t = header.n, header.T
        self._files: list[RowFile] = []
        self._x: dict[str, RowFile] = {}
        self._m: dict[str, RowFile] = {}
        for s in header.modalities:
            self._x[s.name] = RowFile.create(self.tmp / f"{s.name}.npy", (n, t, s.dim), np.float16)
            self._m[s.name] = RowFile.create(self.tmp / f"{s.name}.mask.npy", (n, t), np.uint8)
            self._files += [self._x[s.name], self._m[s.name]]
        self._written = np.zeros(n, dtype=bool)

    def write(self, start: int, features: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> None:
        """Rows `start … start + c - 1`: features[m] [c, T, d_m] (any float dtype), masks[m] [c, T] (bool/0-1)."""
        h = self.header
        count = len(features[h.modalities[0].name])
        if start < 0 or start + count > h.n:
            raise StoreError(f"rows {start}…{start + count - 1} outside the split's {h.n} rows")
        for spec in h.modalities:
            x, m = np.asarray(features[spec.name]), np.asarray(masks[spec.name])
            if x.shape != (count, h.T, spec.dim):
                raise StoreError(f"modality {spec.name}: shape {x.shape}, expected {(count, h.T, spec.dim)}")
            if m.shape != (count, h.T):
                raise StoreError(f"modality {spec.name} mask: shape {m.shape}, expected {(count, h.T)}")
            present = m.astype(bool)
            x16 = x.astype(np.float16)
            x16[~present] = 0
            self._x[spec.name].write(start, x16)
            self._m[spec.name].write(start, present.astype(np.uint8))
        self._written[start : start + count] = True

    def close(
        self,
        index: Sequence[Mapping[str, Any]],
        step_texts: tuple[Sequence[str], Mapping[str, np.ndarray]] | None = None,
    ) -> Path:
        """Sync the arrays, write the step texts (see :func:`write_split`), the index and the header, and
        move the folder into place."""
        n = len(index)
        if self.header.n != n:
            raise StoreError(f"{self.folder}: header says n={self.header.n} but index has {n} rows")
        if not self._written.all():
            missing = np.flatnonzero(~self._written)
            raise StoreError(f"{self.folder}: {len(missing)} row(s) never written (first: {missing[0]})")
        for f in self._files:
            f.sync()
            f.close()
        _write_step_texts(self.tmp, self.header, step_texts)
        rows = [{"row": i, **dict(r)} for i, r in enumerate(index)]
        pq.write_table(pa.Table.from_pylist(rows), self.tmp / "index.parquet")
        write_json(self.tmp / "header.json", self.header.to_json())
        if self.folder.exists():
            shutil.rmtree(self.folder)
        os.replace(self.tmp, self.folder)
        return self.folder

    def abort(self) -> None:
        for f in self._files:
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()


#: rows per chunk when `write_split` copies whole arrays through a SplitWriter
_WRITE_CHUNK = 1024


def write_split(
    folder: str | os.PathLike,
    header: StoreHeader,
    features: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    index: Sequence[Mapping[str, Any]],
    step_texts: tuple[Sequence[str], Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Write one split folder atomically from whole arrays (a :class:`SplitWriter`, fed in chunks).

    features[m]: [N, T, d_m] (any float dtype, stored float16); masks[m]: [N, T] (bool/0-1).
    `step_texts` = (texts, {modality: ids [N, T]}) stores the raw text of each step (id into texts,
    -1 = none) for the modalities named in `header.step_texts`.
    """
    n = len(index)
    if header.n != n:
        raise StoreError(f"{folder}: header says n={header.n} but index has {n} rows")
    for spec in header.modalities:
        shape = np.shape(features[spec.name])
        if shape != (n, header.T, spec.dim):
            raise StoreError(f"modality {spec.name}: shape {shape}, expected {(n, header.T, spec.dim)}")
    with SplitWriter(folder, header) as writer:
        for start in range(0, n, _WRITE_CHUNK):
            stop = min(n, start + _WRITE_CHUNK)
            writer.write(
                start,
                {m.name: features[m.name][start:stop] for m in header.modalities},
                {m.name: masks[m.name][start:stop] for m in header.modalities},
            )
        return writer.close(index, step_texts)


def _write_step_texts(
    folder: Path, header: StoreHeader, step_texts: tuple[Sequence[str], Mapping[str, np.ndarray]] | None
) -> None:
    texts, ids = step_texts if step_texts is not None else ([], {})
    if sorted(ids) != sorted(header.step_texts):
        raise StoreError(f"step texts given for {sorted(ids)}, header.step_texts says {header.step_texts}")
    unknown = set(ids) - set(header.modality_names)
    if unknown:
        raise StoreError(f"step texts for unknown modality(ies) {sorted(unknown)}")
    for m, a in ids.items():
        a = np.asarray(a)
        if a.shape != (header.n, header.T) or (a.size and (a.min() < -1 or a.max() >= len(texts))):
            raise StoreError(f"step texts of {m}: shape {a.shape} or ids outside [-1, {len(texts)})")
        np.save(folder / f"{m}.text.npy", a.astype(np.int32))
    if ids:
        write_json(folder / "texts.json", list(texts), indent=0)
