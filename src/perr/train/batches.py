"""Batches of a store split for training and evaluation, prepared ahead of the step.

A background thread reads each batch's rows from the store files (pread, so RSS stays at the batches in
flight rather than growing with the pages of a memory map), converts float16 → float32 straight into one
host buffer per batch (pinned memory when the device is CUDA, so the copy to the GPU is asynchronous)
and hands them over through a bounded queue. The step then finds its batch ready: reading and
converting overlap the model's arithmetic on another core. Order is the caller's (the epoch's shuffle),
so results do not depend on the thread; NumPy releases the GIL while it reads and converts. On CPU the
thread runs only when torch's threads leave a core spare for it (perr.train.threads.spare_core);
otherwise the step's thread gathers the batch itself.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from perr.labels import Task
from perr.models import TextFinetuneModel
from perr.store import FeatureSplit, StoreError
from perr.train.threads import spare_core
from perr.validation import validate_split

#: One batch: the rows it holds (sorted), features and masks per modality, class indices.
Batch = tuple[np.ndarray, dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]


@dataclass
class TextSource:
    """Text modalities read as raw step texts (text_encoder=finetune): the loader gives each one as int64
    ids [n, T] into the batch's distinct texts, tokenized by `tokenize` (perr.models.text_encoder)."""

    modalities: list[str]
    tokenize: Callable[[Sequence[str]], dict[str, torch.Tensor]]


def text_source(model: torch.nn.Module) -> TextSource | None:
    """The text source a model needs (a TextFinetuneModel), else None."""
    if isinstance(model, TextFinetuneModel):
        return TextSource(model.text_modalities, model.tokenize)
    return None


#: batches prepared ahead of the step (bounded: memory stays a few batches)
PREFETCH = 3


@dataclass
class LoaderStats:
    """Where a pass over the batches spent its time, for profiles (seconds, summed over batches)."""

    batches: int = 0
    gather_s: float = 0.0  # loader thread: read rows + float16 → float32 (+ pinning)
    wait_s: float = 0.0  # step thread: blocked waiting for the next batch
    h2d_s: float = 0.0  # step thread: host → device copies issued (asynchronous when pinned)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Batches:
    """Index batches over one split (or a subset of its rows) for one task's targets."""

    split: FeatureSplit
    modalities: list[str]
    targets: np.ndarray  # [N] class indices for the task; [N, 2] with a joint task's in column 1
    rows: np.ndarray  # which rows of the split this view covers
    prefetch: int | None = None  # batches prepared ahead by the loader thread; 0: in the step's thread;
    # None: PREFETCH when a core is spare for it (perr.train.threads.spare_core), else 0
    text: TextSource | None = None  # text modalities given as raw step texts (text_encoder=finetune)
    groups: np.ndarray | None = None  # a group per row of this view: the epoch shuffles groups (batch_by)

    def __len__(self) -> int:
        return len(self.rows)

    def gather(self, rows: np.ndarray, pin: bool = False) -> HostBatch:
        """Host tensors of `rows` (sorted: runs of consecutive rows are one read) in one buffer per kind,
        so a batch reaches the device in three copies whatever the number of modalities; pinned when `pin`."""
        n = len(rows)
        dense = self.dense_modalities
        files = [self.split.row_file(m) for m in dense]
        sizes = [n * int(np.prod(f.row_shape)) for f in files]
        features = torch.empty(sum(sizes), dtype=torch.float32, pin_memory=pin)
        masks = torch.empty((len(self.modalities), n, self.split.header.T), dtype=torch.bool, pin_memory=pin)
        present = masks.numpy()
        at = 0
        for f, size in zip(files, sizes, strict=True):
            # float16 → float32 straight into the batch buffer: torch's cast uses F16C/AVX (0.2 ms for a
            # d-64 batch of the ERATO-sized store) where NumPy 1.26 converts element by element (3.6 ms)
            features[at : at + size].view(n, *f.row_shape).copy_(torch.from_numpy(f.read_rows(rows)))
            at += size
        for k, m in enumerate(self.modalities):
            np.not_equal(self.split.row_file(m, mask=True).read_rows(rows), 0, out=present[k])
        y = torch.from_numpy(self.targets[rows])
        texts = self._texts(rows) if self.text is not None else None
        return HostBatch(
            rows, features, masks, y.pin_memory() if pin else y, [tuple(f.row_shape) for f in files], texts
        )

    @property
    def dense_modalities(self) -> list[str]:
        """The modalities read as float vectors (all but the raw-text ones)."""
        skip = set(self.text.modalities) if self.text is not None else set()
        return [m for m in self.modalities if m not in skip]

    def _texts(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Each text modality's step ids [n, T] into the batch's distinct texts, and their tokens."""
        assert self.text is not None
        ids = {m: np.asarray(self.split.step_text_ids(m)[rows], dtype=np.int64) for m in self.text.modalities}
        used = np.unique(np.concatenate([a[a >= 0] for a in ids.values()]))
        where = np.full(len(self.split.texts) + 1, -1, dtype=np.int64)  # id -1 → where[-1] = -1
        where[used] = np.arange(len(used))
        all_texts = self.split.texts
        out = dict(self.text.tokenize([all_texts[i] for i in used]))
        out.update({m: torch.from_numpy(where[a]) for m, a in ids.items()})
        return out

    def unpack(self, batch: HostBatch, device: torch.device) -> Batch:
        """The batch on `device` (one copy per buffer, asynchronous from pinned memory) as per-modality views."""
        features, masks, y = batch.features, batch.masks, batch.targets
        if device.type != "cpu":
            features = features.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
        n, x, at = len(batch.rows), {}, 0
        for m, shape in zip(self.dense_modalities, batch.shapes, strict=True):
            size = n * int(np.prod(shape))
            x[m] = features[at : at + size].view(n, *shape)
            at += size
        for k, v in (batch.texts or {}).items():
            x[k] = v.to(device) if device.type != "cpu" else v
        return batch.rows, x, dict(zip(self.modalities, masks.unbind(0), strict=True)), y

    def tensors(
        self, rows: np.ndarray, device: torch.device
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Features and masks of `rows` on `device` (no prefetch: for single look-ups)."""
        _, x, mask, _ = self.unpack(self.gather(np.sort(rows)), device)
        return x, mask

    def iterate(
        self,
        batch_size: int,
        device: torch.device,
        order: np.ndarray | None = None,
        stats: LoaderStats | None = None,
    ) -> Iterator[Batch]:
        """Batches of `batch_size` rows in `order` (default: row order), each sorted within itself,
        prepared `self.prefetch` ahead by a background thread (0: in the calling thread; None: when a
        core is spare for it)."""
        rows = self.rows if order is None else self.rows[order]
        chunks = [np.sort(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
        pin = device.type == "cuda"
        stats = stats if stats is not None else LoaderStats()

        def make(chunk: np.ndarray) -> HostBatch:
            t0 = time.perf_counter()
            batch = self.gather(chunk, pin)
            stats.gather_s += time.perf_counter() - t0
            return batch

        ahead = self.prefetch if self.prefetch is not None else (PREFETCH if spare_core(device) else 0)
        if ahead > 0:
            source: Iterator[HostBatch] = _prefetched(chunks, make, ahead, stats)
        else:
            source = (make(c) for c in chunks)
        for host in source:
            t0 = time.perf_counter()
            batch = self.unpack(host, device)
            stats.h2d_s += time.perf_counter() - t0
            stats.batches += 1
            yield batch


@dataclass
class HostBatch:
    """A batch on the host: all modalities' features in one float32 buffer (modality after modality,
    each [n, T, d_m] contiguous), masks [M, n, T] bool, targets [n]."""

    rows: np.ndarray
    features: torch.Tensor
    masks: torch.Tensor
    targets: torch.Tensor
    shapes: list[tuple[int, ...]]
    texts: dict[str, torch.Tensor] | None = None  # raw-text modalities: step ids [n, T] and the tokens


_DONE = object()


def _prefetched(
    chunks: Sequence[np.ndarray], make: Callable[[np.ndarray], HostBatch], depth: int, stats: LoaderStats
) -> Iterator[HostBatch]:
    """`make(chunk)` for each chunk in a background thread, `depth` ahead, results in order. An error
    in the thread is raised here; leaving the loop early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for c in chunks:
                if stop.is_set():
                    return
                item = make(c)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    thread = threading.Thread(target=work, name="perr-batches", daemon=True)
    thread.start()
    try:
        while True:
            t0 = time.perf_counter()
            item = q.get()
            stats.wait_s += time.perf_counter() - t0
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        thread.join()


def epoch_order(n: int, seed: int, epoch: int, groups: np.ndarray | None = None) -> np.ndarray:
    """The shuffle of one epoch: a pure function of (seed, epoch), so a resumed run sees the same order.

    With `groups` (a group code per row, e.g. the dialogue of each utterance), the groups are shuffled
    and each group's rows follow one another in row order, so a batch of consecutive positions holds a
    few whole groups (TrainConfig.batch_by)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if groups is None:
        return torch.randperm(n, generator=g).numpy()
    if len(groups) != n:
        raise ValueError(f"epoch_order: {len(groups)} group codes for {n} rows")
    codes, inverse = np.unique(groups, return_inverse=True)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[torch.randperm(len(codes), generator=g).numpy()] = np.arange(len(codes))
    return np.lexsort((np.arange(n), rank[inverse]))


def row_groups(split: FeatureSplit, rows: np.ndarray, column: str) -> np.ndarray:
    """The value of index column `column` for each of `rows`, as strings (TrainConfig.batch_by);
    an error naming the column, the row and the columns the index has when a row lacks it."""
    out = []
    for r in rows:
        entry = split.index[int(r)]
        if column not in entry:
            raise StoreError(
                f"{split.folder}: batch_by: index row {int(r)} has no column {column!r}; "
                f"its columns are {', '.join(entry)}"
            )
        out.append(str(entry[column]))
    return np.asarray(out)


def check_data(split: FeatureSplit, modalities: Sequence[str], task: Task) -> None:
    """Refuse data that would train silently wrong: NaN/inf features, labels outside the task.
    The NaN/inf scan is recorded per file (perr.validation), so an unchanged store is not read again."""
    problems = validate_split(split.folder, modalities=modalities)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems[:20])
        raise StoreError(
            f"{split.folder}: refusing to train on invalid data ({len(problems)} problem(s)):\n{lines}"
        )
    split.targets(task.name)  # raises with the bad label named
