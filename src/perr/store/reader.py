"""A split folder and a store root, read. Every array is read through :class:`~perr.store.rowfile.RowFile`:
by rows (training), or whole and once (:meth:`FeatureSplit.features`, :meth:`FeatureSplit.preload`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from perr.labels import Task
from perr.store.header import SPLITS, StoreError, StoreHeader
from perr.store.rowfile import RowFile


class FeatureSplit:
    """A read-only view of one split folder; its arrays are read through :class:`RowFile` only."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        hp = self.folder / "header.json"
        if not hp.exists():
            raise StoreError(f"{self.folder}: not a feature store split (no header.json)")
        try:
            self.header = StoreHeader.from_json(json.loads(hp.read_text(encoding="utf-8")))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"{hp}: malformed header ({e})") from e
        ip = self.folder / "index.parquet"
        if not ip.exists():
            raise StoreError(f"{self.folder}: missing index.parquet")
        self.index: list[dict[str, Any]] = pq.read_table(ip).to_pylist()
        self._files: dict[str, RowFile] = {}

    def __len__(self) -> int:
        return self.header.n

    @property
    def modalities(self) -> list[str]:
        return self.header.modality_names

    def features(self, modality: str) -> np.ndarray:
        """A modality's float16 features [N, T, d], read whole into memory once (read-only; the rows
        that :meth:`row_file` reads then come from there too). Training reads rows instead."""
        return _whole(self.row_file(modality))

    def mask(self, modality: str) -> np.ndarray:
        """A modality's uint8 mask [N, T], read whole once (see :meth:`features`)."""
        return _whole(self.row_file(modality, mask=True))

    def row_file(self, modality: str, mask: bool = False) -> RowFile:
        """A modality's features (or mask) for row reads that keep RSS small (:class:`RowFile`)."""
        return self._file(f"{modality}.mask.npy" if mask else f"{modality}.npy", modality)

    def _file(self, name: str, modality: str) -> RowFile:
        if name not in self._files:
            if modality not in self.modalities:
                raise StoreError(f"{self.folder}: no modality {modality!r}; has {', '.join(self.modalities)}")
            p = self.folder / name
            if not p.exists():
                raise StoreError(f"{p}: missing")
            self._files[name] = RowFile(p)
        return self._files[name]

    def preload_bytes(self, modalities: Iterable[str]) -> int:
        """Bytes that `preload(modalities)` reads (features and masks)."""
        return sum(self.row_file(m, mask).nbytes for m in modalities for mask in (False, True))

    def preload(self, modalities: Iterable[str], on_bytes: Callable[[int], None] | None = None) -> None:
        """Read these modalities' features and masks into memory (:meth:`RowFile.load`); row reads then
        come from there. Same bytes, so the same results."""
        for m in modalities:
            for mask in (False, True):
                self.row_file(m, mask).load(on_bytes=on_bytes)

    def step_text_ids(self, modality: str) -> np.ndarray:
        """int32 [N, T] ids into `texts` (-1 = no text) of a modality in `header.step_texts`."""
        if modality not in self.header.step_texts:
            raise StoreError(
                f"{self.folder}: modality {modality!r} has no step texts (has: {self.header.step_texts or 'none'})"
            )
        return _whole(self._file(f"{modality}.text.npy", modality))

    @property
    def texts(self) -> list[str]:
        """The split's distinct step texts (texts.json), loaded once."""
        if not hasattr(self, "_texts"):
            self._texts: list[str] = json.loads((self.folder / "texts.json").read_text(encoding="utf-8"))
        return self._texts

    def column(self, name: str) -> list[Any]:
        if self.index and name not in self.index[0]:
            raise StoreError(f"{self.folder}/index.parquet: no column {name!r}")
        return [r[name] for r in self.index]

    def targets(self, task: str) -> np.ndarray:
        t = self.task(task)
        return np.asarray(t.encode(self.column(t.column)), dtype=np.int64)

    def task(self, task: str) -> Task:
        try:
            return self.header.tasks[task]
        except KeyError:
            raise StoreError(f"{self.folder}: no task {task!r}; has {', '.join(self.header.tasks)}") from None


def _whole(f: RowFile) -> np.ndarray:
    """The file's whole array (:meth:`RowFile.load`), as a read-only view."""
    f.load()
    assert f.memory is not None
    view = f.memory.view()
    view.flags.writeable = False
    return view


class FeatureStore:
    """A store root: one FeatureSplit per split folder present."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: feature store folder not found")
        self.splits = {
            s: FeatureSplit(self.root / s) for s in SPLITS if (self.root / s / "header.json").exists()
        }
        if not self.splits:
            raise StoreError(f"{self.root}: no split folders ({', '.join(SPLITS)}) with a header.json")
        first = next(iter(self.splits.values())).header
        for name, sp in self.splits.items():
            if sp.header.feature_signature() != first.feature_signature() or sp.header.T != first.T:
                raise StoreError(f"{self.root}/{name}: modalities or T differ from the other splits")

    @property
    def header(self) -> StoreHeader:
        return next(iter(self.splits.values())).header

    def __getitem__(self, split: str) -> FeatureSplit:
        try:
            return self.splits[split]
        except KeyError:
            raise StoreError(f"{self.root}: no {split!r} split; has {', '.join(self.splits)}") from None

    def __contains__(self, split: str) -> bool:
        return split in self.splits
