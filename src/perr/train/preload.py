"""`preload`: read the splits a run reads every epoch into memory once, front to back.

Every epoch reads the whole train split in a shuffled order: a scattered read per row and modality. When
the store is in the page cache that costs nothing, but on a slow or network disk, or where the page cache
does not keep the store (a VM whose host reclaims guest pages, as perr's benchmark machine does), the
loader waits on the disk every epoch: a d-64 epoch of the 25,000-clip synthetic store read cold took
74–114 s against 45–56 s from the cache (README, "The disk"). One sequential pass (≈ 550 MB/s there,
direct reads) costs seconds, once per run. `auto` preloads when the files take at most half the memory
available; the bytes are the same, so results are too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from perr.machine import available_memory
from perr.progress import progress_bar
from perr.store import FeatureSplit

#: auto preloads when the splits' files take at most this share of the memory available
AUTO_SHARE = 0.5


def should_preload(mode: str, nbytes: int, available: int | None) -> bool:
    """`on` / `off` as given; `auto` when `nbytes` is at most AUTO_SHARE of `available` (known)."""
    if mode in ("on", "off"):
        return mode == "on"
    return available is not None and nbytes <= AUTO_SHARE * available


def preload_splits(mode: str, splits: Sequence[FeatureSplit], modalities: Sequence[str]) -> dict[str, Any]:
    """Preload `modalities` of each distinct split when `mode` says so; what was done, for history.jsonl."""
    distinct = list({id(s): s for s in splits}.values())
    nbytes = sum(s.preload_bytes(modalities) for s in distinct)
    available = available_memory()
    if not should_preload(mode, nbytes, available):
        return {"preload": False, "bytes": nbytes, "available_gb": _gb(available)}
    t0 = time.perf_counter()
    done = 0
    with progress_bar("reading the store into memory", nbytes, "bytes") as update:

        def on_bytes(n: int) -> None:
            nonlocal done
            done += n
            update(done, nbytes)

        for split in distinct:
            split.preload(modalities, on_bytes)
    return {
        "preload": True,
        "bytes": nbytes,
        "seconds": round(time.perf_counter() - t0, 2),
        "available_gb": _gb(available),
    }


def _gb(n: int | None) -> float | None:
    return round(n / 1e9, 2) if n is not None else None
