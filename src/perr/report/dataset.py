"""Dataset statistics as files: ``stats.json`` and the figures of paper §3.3 (Fig. 2 and Fig. 3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perr.io import write_json
from perr.manifest import Clip, load_manifest
from perr.stats import IOM_MODES, clipped_spans, compute_stats, pair_of, pair_timing


def _plot_hist(ax: Any, h: dict[str, list[float]], title: str, xlabel: str) -> None:
    e = np.asarray(h["edges"])
    ax.bar(e[:-1], h["counts"], width=np.diff(e), align="edge", edgecolor="black", color="#4C72B0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")


def save_figures(stats: dict[str, Any], clips: list[Clip], out: Path, title: str = "") -> list[Path]:
    """Fig. 2 (four histograms) and Fig. 3 (IoM modes with one example timeline per mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    _plot_hist(axes[0, 0], stats["duration"]["hist"], "(a) clip duration", "seconds")
    _plot_hist(axes[0, 1], stats["shots_per_clip"]["hist"], "(b) shots per clip", "shots")
    _plot_hist(
        axes[1, 0],
        stats["appearance_ratio"]["hist"],
        "(c) appearance ratio of the pair",
        "min/max seconds on screen",
    )
    _plot_hist(
        axes[1, 1], stats["subtitle_ratio"]["hist"], "(d) subtitle ratio", "subtitle seconds / clip length"
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    p = out / "fig2_statistics.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    # Fig. 3: share of each mode, and an example clip's two timelines per mode.
    examples: dict[str, Clip] = {}
    for c in clips:
        t = pair_timing(c)
        if t is not None and t.mode is not None and t.mode not in examples:
            examples[t.mode] = c
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), gridspec_kw={"width_ratios": [1.2, 1, 1, 1]})
    ratios = stats["interaction_mode"]["ratios"]
    axes[0].bar(
        range(3), [100 * (ratios[m] or 0) for m in IOM_MODES], color=["#C44E52", "#8172B2", "#55A868"]
    )
    axes[0].set_xticks(range(3), IOM_MODES)
    axes[0].set_ylabel("% of clips")
    axes[0].set_title("interaction mode")
    for ax, (i, mode) in zip(axes[1:], enumerate(IOM_MODES), strict=True):
        ax.set_title(f"({'abc'[i]}) {mode}, {100 * (ratios[mode] or 0):.1f}%")
        c = examples.get(mode)
        ax.set_yticks([0, 1], ["A", "B"])
        ax.set_ylim(-0.6, 1.6)
        if c is None:
            ax.text(0.5, 0.5, "no example", ha="center", va="center", transform=ax.transAxes)
            continue
        pair = pair_of(c)
        assert pair is not None
        for row, (cid, color) in enumerate(zip(pair, ("red", "blue"), strict=True)):
            for s, e in clipped_spans(c.character(cid).spans, c.start, c.end):
                ax.plot([s, e], [row, row], color=color, lw=6, solid_capstyle="butt")
        ax.set_xlim(c.start, c.end if c.end is not None else None)
        ax.set_xlabel(f"seconds ({c.clip_id})")
    fig.tight_layout()
    p = out / "fig3_interaction_modes.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def dataset_stats(manifest: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """`perr build stats` / `perr stats`: read a manifest, write stats.json and the figures under out."""
    clips = load_manifest(manifest)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = compute_stats(clips)
    stats["manifest"] = str(manifest)
    figs = save_figures(stats, clips, out, title=Path(manifest).name)
    stats["figures"] = [p.name for p in figs]
    write_json(out / "stats.json", stats)
    return stats
