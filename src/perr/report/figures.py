"""Figures with matplotlib (Agg): per-class F1 of two models (paper Fig. 6) and the attention-weight
timeline of one clip (paper Fig. 7)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from perr.io import atomic_path
from perr.report.paper import DISPLAY


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def per_class_f1_figure(
    per_class: Mapping[str, Mapping[str, Mapping[str, float]]],
    models: Sequence[str],
    path: str | os.PathLike,
    title_suffix: str = "",
) -> Path:
    """Fig. 6: grouped bars of per-class F1, one panel per task. per_class[task][model][class] = F1."""
    tasks = list(per_class)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        classes = list(next(iter(per_class[task].values())))
        width = 0.8 / max(len(models), 1)
        x = np.arange(len(classes))
        for i, model in enumerate(models):
            f1 = [per_class[task].get(model, {}).get(c, np.nan) for c in classes]
            bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, f1, width, label=DISPLAY.get(model, model))
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, classes)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("F1")
        ax.set_title(f"{task} categories{title_suffix}")
        ax.legend(fontsize=8)
    fig.suptitle("Per-class F1 (paper Fig. 6 layout)")
    return _save(fig, path)


def attention_timeline_figure(
    weights: np.ndarray,
    modalities: Sequence[str],
    path: str | os.PathLike,
    masks: np.ndarray | None = None,
    times: Sequence[float] | None = None,
    title: str = "",
) -> Path:
    """Fig. 7: per-modality attention weight over time for one clip. weights [T, M]; masks [T, M] shade
    the steps where a modality had no evidence."""
    T, M = weights.shape
    t = np.asarray(times) if times is not None else np.arange(T)
    fig, (ax_line, ax_heat) = plt.subplots(
        2, 1, figsize=(9, 5), sharex=False, gridspec_kw={"height_ratios": [2, 1]}
    )
    for m in range(M):
        ax_line.plot(t, weights[:, m], marker="o", ms=3, label=modalities[m])
    ax_line.set_ylabel("attention weight")
    ax_line.set_xlabel("time (s)" if times is not None else "timestep")
    ax_line.legend(ncol=min(M, 5), fontsize=8, loc="upper right")
    ax_line.set_title(title or "Attention weight per modality over time (paper Fig. 7 layout)")
    shown = weights.T.copy()
    if masks is not None:
        shown = np.where(masks.T.astype(bool), shown, np.nan)
    im = ax_heat.imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    ax_heat.set_yticks(range(M), modalities)
    ax_heat.set_xlabel("timestep (blank = modality missing)")
    fig.colorbar(im, ax=ax_heat, fraction=0.025)
    fig.tight_layout()
    return _save(fig, path)
