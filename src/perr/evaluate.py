"""`perr evaluate`: a checkpoint on a store split → metrics.json and predictions.csv.

The store's feature signature (modality names, dims, extractor names and versions) must match the
one recorded in the checkpoint; anything else is a clear error, never a silent wrong answer.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from perr.device import resolve_device
from perr.io import atomic_open, write_json
from perr.labels import Task
from perr.store import FeatureStore
from perr.train import Batches, check_data, check_signature, load_checkpoint, predict_batches, task_metrics


def evaluate(
    checkpoint: str | os.PathLike, store: str | os.PathLike, split: str = "test", out: str | os.PathLike | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    dev = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint, dev)
    fs = FeatureStore(store)
    data_split = fs[split]
    check_signature(ckpt["features"], data_split.header, str(data_split.folder))
    if ckpt["T"] != data_split.header.T:
        raise ValueError(f"{data_split.folder}: T={data_split.header.T}, the checkpoint was trained with T={ckpt['T']}")
    task = Task.from_json(ckpt["task"])
    modalities = list(ckpt["model_args"]["input_dims"])
    check_data(data_split, modalities, task)
    targets = np.asarray(task.encode(data_split.column(task.column)))
    pred = predict_batches(model, Batches(data_split, modalities, targets, np.arange(len(data_split))), dev)
    stored = [data_split.index[r][task.column] for r in pred["rows"]]
    metrics = task_metrics(pred["probs"], stored, task, data_split.header.tasks)
    result = {
        "checkpoint": str(checkpoint), "store": str(store), "split": split, "model": ckpt["model_args"]["name"],
        "task": task.name, "dataset": data_split.header.dataset, "synthetic": data_split.header.synthetic, "metrics": metrics,
    }
    if out is not None:
        out = Path(out)
        write_json(out / "metrics.json", result)
        with atomic_open(out / "predictions.csv", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["clip_id", "true", "pred", *[f"p_{c}" for c in task.classes]])
            for r, p in zip(pred["rows"], pred["probs"], strict=True):
                w.writerow([data_split.index[r].get("clip_id"), task.target(data_split.index[r][task.column]),
                            task.classes[int(p.argmax())], *[f"{v:.6f}" for v in p]])
    return result
