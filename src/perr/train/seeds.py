"""Several seeds of one configuration: one run folder each, then mean ± std of the test metrics."""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perr.config import TrainConfig
from perr.io import write_json
from perr.store import FeatureStore
from perr.train.trainer import train


def train_seeds(
    store: str | os.PathLike,
    cfg: TrainConfig,
    seeds: Sequence[int],
    out: str | os.PathLike,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """One run per seed under `out/seed-N`, then mean ± std of the test metrics in `out/summary.json`."""
    fs = FeatureStore(store)
    out = Path(out)
    results = [
        train(fs, dataclasses.replace(cfg, seed=int(seed)), out / f"seed-{seed}", progress=progress)
        for seed in seeds
    ]
    summary = summarise_runs([r.metrics for r in results])
    summary.update(
        model=cfg.model,
        task=cfg.task,
        seeds=list(seeds),
        dataset=fs.header.dataset,
        synthetic=fs.header.synthetic,
    )
    write_json(out / "summary.json", summary)
    return summary


def summarise_runs(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and (sample) std over seeds of each scalar F1 figure, per task; std is None for one seed."""
    out: dict[str, Any] = {}
    if not metrics or not metrics[0]:
        return out
    for task_name in metrics[0]:
        if not isinstance(metrics[0][task_name], dict):
            continue
        entry: dict[str, Any] = {}
        for key in ("micro_f1", "macro_f1", "weighted_f1"):
            values = [m[task_name][key] for m in metrics]
            entry[f"{key}_mean"] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
            entry[f"{key}_values"] = values
        classes = metrics[0][task_name]["classes"]
        entry["per_class_f1_mean"] = {
            c: statistics.fmean(m[task_name]["per_class_f1"][c] for m in metrics) for c in classes
        }
        out[task_name] = entry
    return out
