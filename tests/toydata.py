"""A tiny feature store with a known, learnable signal, for fast trainer/CLI tests (SYNTHETIC, test-only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perr.labels import FINE
from perr.store import ModalitySpec, StoreHeader, write_split

TOY_MODALITIES = (
    ModalitySpec("person_a", 8, "toy", "1"),
    ModalitySpec("person_b", 8, "toy", "1"),
    ModalitySpec("background", 4, "toy", "1"),
    ModalitySpec("audio", 4, "toy", "1"),
    ModalitySpec("text", 6, "toy", "1"),
)


def make_toy_store(
    root: Path, sizes: dict[str, int] | None = None, T: int = 6, seed: int = 0, modalities=TOY_MODALITIES
) -> Path:
    """Write train/val/test splits where feature 0 of each modality encodes the class (plus noise)."""
    rng = np.random.default_rng(seed)
    sizes = sizes or {"train": 100, "val": 30, "test": 40}
    for split, n in sizes.items():
        y = np.arange(n) % len(FINE)
        rng.shuffle(y)
        feats, masks = {}, {}
        for m in modalities:
            x = rng.normal(size=(n, T, m.dim)).astype(np.float32)
            x[:, :, 0] += 1.5 * y[:, None]
            feats[m.name] = x
            masks[m.name] = rng.random((n, T)) > 0.2
        index = [
            {"clip_id": f"toy-{split}-{i}", "label": FINE[c], "drama": f"d{i % 7}"} for i, c in enumerate(y)
        ]
        header = StoreHeader(list(modalities), T, n, dataset="toy-synthetic", synthetic=True)
        write_split(root / split, header, feats, masks, index)
    return root


TINY = ["d_model=16", "stage2_hidden=16", "ff_dim=32", "heads=2"]
