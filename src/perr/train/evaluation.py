"""Evaluation of a model on store data: class probabilities per clip, the task's metrics (and every
coarser task derivable from it), the loss. `perr train`, `perr evaluate` and `perr benchmark` use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from perr.labels import Task
from perr.metrics import classification_metrics
from perr.store import FeatureSplit
from perr.train.batches import Batches, text_source


@torch.no_grad()
def predict_batches(
    model: torch.nn.Module,
    data: Batches,
    device: torch.device,
    batch_size: int = 64,
    bf16: bool = False,
    keep_attention: bool = False,
) -> dict[str, np.ndarray]:
    """Class probabilities (and optionally per-step attention, and the joint head's probabilities as
    `joint_probs`, argmax `joint_pred`, when the model has one) for every row of `data`, in row order."""
    model.eval()
    probs, rows, attn, joint = [], [], [], []
    for chunk, x, mask, _ in data.iterate(batch_size, device):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x, mask)
        probs.append(torch.softmax(out.logits.float(), dim=-1).cpu().numpy())
        rows.append(chunk)
        if out.joint_logits is not None:
            joint.append(torch.softmax(out.joint_logits.float(), dim=-1).cpu().numpy())
        if keep_attention and out.attention is not None:
            attn.append(out.attention.float().cpu().numpy())
    order = np.argsort(np.concatenate(rows))
    result = {"rows": np.concatenate(rows)[order], "probs": np.concatenate(probs)[order]}
    if attn:
        result["attention"] = np.concatenate(attn)[order]
    if joint:
        result["joint_probs"] = np.concatenate(joint)[order]
        result["joint_pred"] = result["joint_probs"].argmax(-1)
    return result


def task_metrics(
    probs: np.ndarray, stored_labels: Sequence[str], task: Task, tasks: dict[str, Task]
) -> dict[str, Any]:
    """Metrics of `task`, plus every coarser task derivable from it (5-class run → 3-class figures too)."""
    y_pred = probs.argmax(-1)
    y_true = np.asarray(task.encode(stored_labels))
    out = {task.name: classification_metrics(y_true, y_pred, task.classes)}
    for other in tasks.values():
        if other.name == task.name or other.column != task.column or other.mapping is None:
            continue
        if not all(c in other.mapping for c in task.classes):
            continue
        coarse_pred = np.asarray([other.classes.index(other.mapping[task.classes[i]]) for i in y_pred])
        out[other.name] = classification_metrics(
            np.asarray(other.encode(stored_labels)), coarse_pred, other.classes
        )
        out[other.name]["derived_from"] = task.name
    return out


def evaluate_split(
    model: torch.nn.Module,
    split: FeatureSplit,
    modalities: list[str],
    task: Task,
    device: torch.device,
    rows: np.ndarray | None = None,
    bf16: bool = False,
    joint_task: Task | None = None,
) -> tuple[dict[str, Any], float, dict[str, np.ndarray]]:
    """(metrics per task, mean loss, the predictions) on a split or a subset of its rows. A model trained
    with a joint task (`joint_task`) also gets its head's metrics, under `joint-<task>`."""
    targets = split.targets(task.name)
    rows = np.arange(len(split)) if rows is None else rows
    data = Batches(split, modalities, targets, rows, text=text_source(model))
    pred = predict_batches(model, data, device, bf16=bf16)
    stored = [split.index[r][task.column] for r in pred["rows"]]
    y = torch.from_numpy(targets[pred["rows"]])
    loss = float(torch.nn.functional.nll_loss(torch.log(torch.from_numpy(pred["probs"]).clamp_min(1e-12)), y))
    metrics = task_metrics(pred["probs"], stored, task, split.header.tasks)
    if joint_task is not None and "joint_pred" in pred:
        truth = split.targets(joint_task.name)[pred["rows"]]
        metrics[f"joint-{joint_task.name}"] = classification_metrics(
            truth, pred["joint_pred"], joint_task.classes
        )
    return metrics, loss, pred
