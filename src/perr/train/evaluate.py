"""`perr evaluate`: a checkpoint on a store split → metrics.json and predictions.csv.

The store's feature signature (modality names, dims, extractor names and versions) and T must match
the ones the checkpoint records; anything else is a clear error, never a silent wrong answer.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from perr.checkpoint import Checkpoint
from perr.device import resolve_device
from perr.io import atomic_open, write_json
from perr.store import FeatureStore
from perr.train.batches import check_data
from perr.train.evaluation import evaluate_split


def evaluate(
    checkpoint: str | os.PathLike,
    store: str | os.PathLike,
    split: str = "test",
    out: str | os.PathLike | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    dev = resolve_device(device)
    ckpt = Checkpoint.load(checkpoint, dev)
    data_split = FeatureStore(store)[split]
    ckpt.check_features(data_split.header, str(data_split.folder))
    task = ckpt.task
    check_data(data_split, ckpt.modalities, task)
    joint = ckpt.config.joint_task
    if joint and joint not in data_split.header.tasks:
        raise ValueError(f"{data_split.folder}: no task {joint!r} for the checkpoint's joint head")
    metrics, _, pred = evaluate_split(
        ckpt.build_model(dev),
        data_split,
        ckpt.modalities,
        task,
        dev,
        joint_task=data_split.header.tasks[joint] if joint else None,
    )
    result = {
        "checkpoint": str(checkpoint),
        "store": str(store),
        "split": split,
        "model": ckpt.model_name,
        "task": task.name,
        "dataset": data_split.header.dataset,
        "synthetic": data_split.header.synthetic,
        "metrics": metrics,
    }
    if out is not None:
        out = Path(out)
        write_json(out / "metrics.json", result)
        with atomic_open(out / "predictions.csv", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["clip_id", "true", "pred", *[f"p_{c}" for c in task.classes]])
            for r, p in zip(pred["rows"], pred["probs"], strict=True):
                w.writerow(
                    [
                        data_split.index[r].get("clip_id"),
                        task.target(data_split.index[r][task.column]),
                        task.classes[int(p.argmax())],
                        *[f"{v:.6f}" for v in p],
                    ]
                )
    return result
