"""Reading an epoch's batches from a store that is not in the page cache, with and without read-ahead.

    python benchmarks/store_read.py --store /tmp/erato/data/synthetic-erato --out F.json [--batches 300]

The training loader (perr.train.batches.Batches.iterate) reads each batch's rows with pread, in the
epoch's shuffled order, and asks the kernel to start reading the rows of the batches `READAHEAD` ahead
(posix_fadvise WILLNEED, RowFile.will_need). Here only the loader runs (no model), over the first
`--batches` batches of epoch 0's order at batch 16, after the store's pages are evicted
(erato_scale.set_page_cache "cold"), alternating read-ahead depths. Data: a --like-extractors SYNTHETIC
store; the figure is I/O and conversion time, so it depends on the disk and on what else runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from erato_scale import set_page_cache

import perr.train.batches as batches
from perr.io import write_json
from perr.machine import cpu_info, package_versions
from perr.store import FeatureStore


def read_ms(store: Path, depth: int, n_batches: int) -> float:
    """ms a batch for the first `n_batches` of epoch 0 with read-ahead `depth`, from a cold store."""
    sp = FeatureStore(store)["train"]
    batches.READAHEAD = depth
    set_page_cache(store, "cold")
    data = batches.Batches(sp, [m.name for m in sp.header.modalities], sp.targets("5"), np.arange(len(sp)))
    t0, n = time.perf_counter(), 0
    for _ in data.iterate(16, torch.device("cpu"), batches.epoch_order(len(sp), 0, 0)):
        n += 1
        if n == n_batches:
            break
    return (time.perf_counter() - t0) * 1e3 / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--store", type=Path, required=True, help="a store made by perr data synth --like-extractors"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--depths", default="0,16", help="read-ahead depths compared (0: none)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    default = batches.READAHEAD
    depths = [int(v) for v in args.depths.split(",")]
    rows: dict[str, list[float]] = {str(d): [] for d in depths}
    for r in range(args.rounds):
        for d in depths if r % 2 == 0 else depths[::-1]:
            rows[str(d)].append(round(read_ms(args.store, d, args.batches), 2))
            print(f"round {r}, read-ahead {d}: {rows[str(d)][-1]} ms a batch", flush=True)
    write_json(
        args.out,
        {
            "benchmark": "store_read",
            "data": "SYNTHETIC (perr data synth --like-extractors)",
            "store": str(args.store),
            "batch": 16,
            "batches": args.batches,
            "page_cache": "cold (posix_fadvise DONTNEED before each pass)",
            "perr_readahead_default": default,
            "ms_per_batch": rows,
            "ms_per_batch_mean": {d: round(float(np.mean(v)), 2) for d, v in rows.items()},
            "cpu": cpu_info(),
            "versions": package_versions(("numpy", "torch")),
            "loadavg": [round(v, 2) for v in os.getloadavg()],
        },
    )


if __name__ == "__main__":
    main()
