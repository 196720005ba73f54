"""Batches of a store split for training and evaluation, read straight from the memory-mapped arrays."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from perr.labels import Task
from perr.store import FeatureSplit, StoreError
from perr.validation import validate_split

#: One batch: the rows it holds (sorted), features and masks per modality, class indices.
Batch = tuple[np.ndarray, dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]


@dataclass
class Batches:
    """Index batches over one split (or a subset of its rows) for one task's targets."""

    split: FeatureSplit
    modalities: list[str]
    targets: np.ndarray  # [N] class indices for the task
    rows: np.ndarray  # which rows of the split this view covers

    def __len__(self) -> int:
        return len(self.rows)

    def tensors(
        self, rows: np.ndarray, device: torch.device
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        rows = np.sort(rows)  # sorted reads are sequential on the memmap
        x = {
            m: torch.from_numpy(np.asarray(self.split.features(m)[rows], dtype=np.float32)).to(device)
            for m in self.modalities
        }
        mask = {
            m: torch.from_numpy(np.asarray(self.split.mask(m)[rows]).astype(bool)).to(device)
            for m in self.modalities
        }
        return x, mask

    def iterate(
        self, batch_size: int, device: torch.device, order: np.ndarray | None = None
    ) -> Iterator[Batch]:
        rows = self.rows if order is None else self.rows[order]
        for i in range(0, len(rows), batch_size):
            chunk = np.sort(rows[i : i + batch_size])
            x, mask = self.tensors(chunk, device)
            y = torch.from_numpy(self.targets[chunk]).to(device)
            yield chunk, x, mask, y


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of one epoch: a pure function of (seed, epoch), so a resumed run sees the same order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).numpy()


def check_data(split: FeatureSplit, modalities: Sequence[str], task: Task) -> None:
    """Refuse data that would train silently wrong: NaN/inf features, labels outside the task."""
    problems = validate_split(split.folder, modalities=modalities)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems[:20])
        raise StoreError(
            f"{split.folder}: refusing to train on invalid data ({len(problems)} problem(s)):\n{lines}"
        )
    split.targets(task.name)  # raises with the bad label named
