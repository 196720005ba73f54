"""The packed feature store: what training reads.

Layout of one split folder (e.g. `features/train/`):

    header.json              modalities (name, dim, extractor, version), T, N, tasks, provenance
    index.parquet            one row per clip: row, clip_id, label columns, drama, ...
    <modality>.npy           float16 [N, T, d_m], memory-mapped on read
    <modality>.mask.npy      uint8   [N, T]; 0 = evidence missing (feature row is zeros)
    texts.json, <modality>.text.npy   optional step texts (header `step_texts`): the raw text behind a
                             text modality's vector at each step, as int32 [N, T] ids into texts.json
                             (-1 = none), so a text encoder can be fine-tuned (`text_encoder=finetune`)

A store root holds one such folder per split (`train/`, `val/`, `test/`). Folders are written under
a temp name and renamed, so a store is either complete or absent. Plain `.npy` files keep the store
readable from any language with a NumPy reader; the header makes a mismatch with a model's config a
clear error instead of a silent wrong answer.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perr.io import write_json
from perr.labels import Task, perr_tasks

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """One input modality: its name, width, and the extractor (name, version) that produced it."""

    name: str
    dim: int
    extractor: str = ""
    version: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModalitySpec:
        return cls(
            name=d["name"],
            dim=int(d["dim"]),
            extractor=d.get("extractor", ""),
            version=str(d.get("version", "")),
        )


@dataclass
class StoreHeader:
    modalities: list[ModalitySpec]
    T: int
    n: int
    tasks: dict[str, Task] = field(default_factory=perr_tasks)
    dataset: str = ""
    synthetic: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    step_texts: list[str] = field(default_factory=list)  # modalities whose raw step texts are stored

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def dims(self) -> dict[str, int]:
        return {m.name: m.dim for m in self.modalities}

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "T": self.T,
            "n": self.n,
            "modalities": [asdict(m) for m in self.modalities],
            "tasks": {k: t.to_json() for k, t in self.tasks.items()},
            "provenance": self.provenance,
            **({"step_texts": list(self.step_texts)} if self.step_texts else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StoreHeader:
        return cls(
            modalities=[ModalitySpec.from_json(m) for m in d["modalities"]],
            T=int(d["T"]),
            n=int(d["n"]),
            tasks={k: Task.from_json(t) for k, t in d.get("tasks", {}).items()} or perr_tasks(),
            dataset=d.get("dataset", ""),
            synthetic=bool(d.get("synthetic", False)),
            provenance=dict(d.get("provenance", {})),
            format_version=int(d.get("format_version", FORMAT_VERSION)),
            step_texts=[str(m) for m in d.get("step_texts", [])],
        )

    def feature_signature(self) -> list[dict[str, Any]]:
        """What a checkpoint records and later compares: modality names, dims, extractors, versions."""
        return [asdict(m) for m in self.modalities]


class StoreError(ValueError):
    """A store that cannot be used; the message names the file and the field."""


def write_split(
    folder: str | os.PathLike,
    header: StoreHeader,
    features: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    index: Sequence[Mapping[str, Any]],
    step_texts: tuple[Sequence[str], Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Write one split folder atomically (temp folder + rename).

    features[m]: [N, T, d_m] (any float dtype, stored float16); masks[m]: [N, T] (bool/0-1).
    Rows masked out are zeroed so a masked step never leaks a value. `step_texts` = (texts, {modality:
    ids [N, T]}) stores the raw text of each step (id into texts, -1 = none) for the modalities named
    in `header.step_texts`.
    """
    folder = Path(folder)
    n = len(index)
    if header.n != n:
        raise StoreError(f"{folder}: header says n={header.n} but index has {n} rows")
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for spec in header.modalities:
        x = np.asarray(features[spec.name])
        m = np.asarray(masks[spec.name]).astype(np.uint8)
        if x.shape != (n, header.T, spec.dim):
            raise StoreError(f"modality {spec.name}: shape {x.shape}, expected {(n, header.T, spec.dim)}")
        if m.shape != (n, header.T):
            raise StoreError(f"modality {spec.name} mask: shape {m.shape}, expected {(n, header.T)}")
        out = np.lib.format.open_memmap(tmp / f"{spec.name}.npy", mode="w+", dtype=np.float16, shape=x.shape)
        out[:] = np.where(m[..., None].astype(bool), x, 0).astype(np.float16)
        out.flush()
        del out
        np.save(tmp / f"{spec.name}.mask.npy", m)
    _write_step_texts(tmp, header, step_texts)
    rows = [{"row": i, **dict(r)} for i, r in enumerate(index)]
    pq.write_table(pa.Table.from_pylist(rows), tmp / "index.parquet")
    write_json(tmp / "header.json", header.to_json())
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


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


class FeatureSplit:
    """A read-only view of one split folder; arrays are memory-mapped."""

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
        self._x: dict[str, np.ndarray] = {}
        self._m: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.header.n

    @property
    def modalities(self) -> list[str]:
        return self.header.modality_names

    def features(self, modality: str) -> np.ndarray:
        if modality not in self._x:
            self._x[modality] = self._load(f"{modality}.npy", modality)
        return self._x[modality]

    def mask(self, modality: str) -> np.ndarray:
        if modality not in self._m:
            self._m[modality] = self._load(f"{modality}.mask.npy", modality)
        return self._m[modality]

    def _load(self, name: str, modality: str) -> np.ndarray:
        if modality not in self.modalities:
            raise StoreError(f"{self.folder}: no modality {modality!r}; has {', '.join(self.modalities)}")
        p = self.folder / name
        if not p.exists():
            raise StoreError(f"{p}: missing")
        return np.load(p, mmap_mode="r")

    def step_text_ids(self, modality: str) -> np.ndarray:
        """int32 [N, T] ids into `texts` (-1 = no text) of a modality in `header.step_texts`."""
        if modality not in self.header.step_texts:
            raise StoreError(
                f"{self.folder}: modality {modality!r} has no step texts (has: {self.header.step_texts or 'none'})"
            )
        return self._load(f"{modality}.text.npy", modality)

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
