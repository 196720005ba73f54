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
from perr.labels import Task
from perr.store import FeatureSplit, FeatureStore, StoreError
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
    joint = _joint_task(ckpt, data_split)
    metrics, _, pred = evaluate_split(
        ckpt.build_model(dev),
        data_split,
        ckpt.modalities,
        task,
        dev,
        joint_task=joint,
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
        write_predictions(out / "predictions.csv", data_split, task, pred, joint)
    return result


def _joint_task(ckpt: Checkpoint, data_split: FeatureSplit) -> Task | None:
    """The joint head's task, as this split's store defines it (it holds the head's truth)."""
    name = ckpt.config.joint_task
    if not name:
        return None
    if name not in data_split.header.tasks:
        raise StoreError(f"{data_split.folder}: no task {name!r} for the checkpoint's joint head")
    return data_split.header.tasks[name]


def write_predictions(
    path: Path, data_split: FeatureSplit, task: Task, pred: dict[str, Any], joint: Task | None
) -> None:
    """One row per clip: truth, prediction and class probabilities of the task; with a joint head, the
    same for its task in `joint_true`, `joint_pred`, `joint_p_<class>` columns."""
    joint_probs = pred.get("joint_probs") if joint is not None else None
    header = ["clip_id", "true", "pred", *[f"p_{c}" for c in task.classes]]
    if joint_probs is not None:
        header += ["joint_true", "joint_pred", *[f"joint_p_{c}" for c in joint.classes]]
    with atomic_open(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i, (r, p) in enumerate(zip(pred["rows"], pred["probs"], strict=True)):
            row = data_split.index[r]
            line = [
                row.get("clip_id"),
                task.target(row[task.column]),
                task.classes[int(p.argmax())],
                *[f"{v:.6f}" for v in p],
            ]
            if joint_probs is not None:
                q = joint_probs[i]
                line += [
                    joint.target(row[joint.column]),
                    joint.classes[int(q.argmax())],
                    *[f"{v:.6f}" for v in q],
                ]
            w.writerow(line)
