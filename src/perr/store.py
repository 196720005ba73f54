"""The packed feature store: what training reads.

Layout of one split folder (e.g. `features/train/`):

    header.json              modalities (name, dim, extractor, version), T, N, tasks, provenance
    index.parquet            one row per clip: row, clip_id, label columns, drama, ...
    <modality>.npy           float16 [N, T, d_m], memory-mapped (or read by rows) on read
    <modality>.mask.npy      uint8   [N, T]; 0 = evidence missing (feature row is zeros)
    texts.json, <modality>.text.npy   optional step texts (header `step_texts`): the raw text behind a
                             text modality's vector at each step, as int32 [N, T] ids into texts.json
                             (-1 = none), so a text encoder can be fine-tuned (`text_encoder=finetune`).
                             A step text may carry past context after its line: "line | earlier | …"
                             (CONTEXT_SEPARATOR; lines never contain it), which `text_pooling=line` reads

A store root holds one such folder per split (`train/`, `val/`, `test/`). Folders are written under
a temp name, chunk by chunk (:class:`SplitWriter`), and renamed, so a store is either complete or
absent. Plain `.npy` files keep the store readable from any language with a NumPy reader; the header
makes a mismatch with a model's config a clear error instead of a silent wrong answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perr.errors import PerrError
from perr.io import write_json
from perr.labels import Task, perr_tasks

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
#: between a step text's own line and the earlier lines it carries as context (dialogue --target-context)
CONTEXT_SEPARATOR = " | "


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


class StoreError(PerrError, ValueError):
    """A store that cannot be used; the message names the file and the field."""


#: chunks `RowFile.load` asks the kernel for ahead of the one it copies
LOAD_AHEAD = 4


class RowFile:
    """Rows of one `.npy` array read and written in place with pread/pwrite, never through a mapping.

    A memory map's touched pages count toward the process's RSS, so streaming a 3.7 GB store through
    one shows 3.7 GB of RSS although the pages are only page cache; plain reads and writes at the rows'
    offsets keep RSS at the size of the rows in flight. The file stays a plain `.npy` that
    `np.load(mmap_mode="r")` reads.
    """

    def __init__(self, path: str | os.PathLike, write: bool = False) -> None:
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR if write else os.O_RDONLY)
        try:
            with open(self.fd, "rb", closefd=False) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                self.offset = fh.tell()
        except Exception:
            os.close(self.fd)
            raise
        if fortran or not shape:
            os.close(self.fd)
            raise StoreError(f"{self.path}: expected a C-ordered array with rows")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.memory: np.ndarray | None = None  # the whole array, once `load` read it in

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def load(self, chunk_bytes: int = 64 << 20, on_bytes: Callable[[int], None] | None = None) -> None:
        """Read the whole array into this process's memory, front to back, so later row reads never touch
        the disk: one sequential pass instead of an epoch of scattered reads (a slow or network disk, or
        a page cache that does not keep the store). `on_bytes(n)` reports progress."""
        if self.memory is not None:
            return
        out = np.empty(self.shape, self.dtype)
        flat = memoryview(out.reshape(-1)).cast("B") if out.size else memoryview(b"")
        # the kernel's readahead alone reads a cold file at ~200 MB/s on the benchmark VM; asking for the
        # next chunks while copying this one keeps more reads in flight (730–1,040 MB/s there)
        advise = getattr(os, "posix_fadvise", None)  # not on macOS: plain reads
        if advise is not None:
            advise(self.fd, self.offset, len(flat), os.POSIX_FADV_SEQUENTIAL)
            for lo in range(0, min(len(flat), LOAD_AHEAD * chunk_bytes), chunk_bytes):
                advise(self.fd, self.offset + lo, chunk_bytes, os.POSIX_FADV_WILLNEED)
        for lo in range(0, len(flat), chunk_bytes):
            ahead = lo + LOAD_AHEAD * chunk_bytes
            if advise is not None and ahead < len(flat):
                advise(self.fd, self.offset + ahead, chunk_bytes, os.POSIX_FADV_WILLNEED)
            part = flat[lo : lo + chunk_bytes]
            self._read_into(part, self.offset + lo)
            if on_bytes is not None:
                on_bytes(len(part))
        self.memory = out

    @classmethod
    def create(cls, path: str | os.PathLike, shape: tuple[int, ...], dtype: Any) -> RowFile:
        """A new `.npy` file of `shape` (zeros, sparse until written), open for writing."""
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.truncate(fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        return cls(path, write=True)

    def __len__(self) -> int:
        return self.shape[0]

    def write(self, start: int, rows: np.ndarray) -> None:
        buf = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        pos = self.offset + start * self.row_bytes
        while len(buf):
            done = os.pwrite(self.fd, buf, pos)
            buf, pos = buf[done:], pos + done

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Rows start … stop - 1 as a new array."""
        if self.memory is not None:
            return self.memory[start:stop].copy()
        out = np.empty((stop - start, *self.row_shape), self.dtype)
        self._read_into(memoryview(out).cast("B"), self.offset + start * self.row_bytes)
        return out

    def read_rows(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The given rows (any order) into `out` (or a new array); runs of consecutive rows are one read."""
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((len(rows), *self.row_shape), self.dtype)
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= self.shape[0]:
            raise IndexError(f"{self.path}: rows outside 0 … {self.shape[0] - 1}")
        if self.memory is not None:
            return np.take(self.memory, rows, axis=0, out=out)
        flat = memoryview(out.reshape(len(rows), -1)).cast("B")
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for lo, hi in zip([0, *breaks.tolist()], [*breaks.tolist(), len(rows)], strict=True):
            self._read_into(
                flat[lo * self.row_bytes : hi * self.row_bytes], self.offset + int(rows[lo]) * self.row_bytes
            )
        return out

    def _read_into(self, buf: memoryview, pos: int) -> None:
        while len(buf):
            got = os.preadv(self.fd, [buf], pos)
            if got <= 0:
                raise StoreError(f"{self.path}: file ends early (truncated?)")
            buf, pos = buf[got:], pos + got

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.close()


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
        self._files: dict[str, RowFile] = {}

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

    def row_file(self, modality: str, mask: bool = False) -> RowFile:
        """A modality's features (or mask) for row reads that keep RSS small (:class:`RowFile`)."""
        name = f"{modality}.mask.npy" if mask else f"{modality}.npy"
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
