"""Result tables: results.csv / results.json rows and a Markdown table shaped like the paper's Table 3/4."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perr.io import atomic_open
from perr.report.paper import DISPLAY, MELD_PUBLISHED, TABLE3, TABLE4

RESULT_COLUMNS = (
    "dataset",
    "model",
    "task",
    "drop",
    "seeds",
    "micro_f1_mean",
    "micro_f1_std",
    "macro_f1_mean",
    "macro_f1_std",
    "weighted_f1_mean",
    "weighted_f1_std",
)


def write_results_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
    """One row per (dataset, model, task[, drop]); F1 figures as raw floats in [0, 1]."""
    with atomic_open(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in RESULT_COLUMNS})


def _by_model(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """model → task → result row, in the rows' order."""
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["model"], {})[str(r["task"])] = r
    return out


def _pct(mean: float, std: float | None) -> str:
    """A percent figure with its std over seeds; one seed has no std (the table states n)."""
    if std is None or std == "":
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def table3_markdown(
    rows: Sequence[Mapping[str, Any]], dataset: str, synthetic: bool, note: str = "", paper: bool = True
) -> str:
    """Table-3-shaped Markdown: ours (mean ± std over seeds), beside the paper's ERATO figures when the
    tasks are PERR's (`paper=False` for other corpora, whose tasks merely share a class count)."""
    tasks = sorted({r["task"] for r in rows}, key=lambda t: -int(t) if str(t).isdigit() else 0)
    label = f"{dataset} (SYNTHETIC data — not comparable to ERATO)" if synthetic else dataset
    head = ["Method"]
    for t in tasks:
        head += [f"{t}-cls Micro-F1 (ours)", f"{t}-cls Macro-F1 (ours)"]
        if paper:
            head.append(f"{t}-cls Micro/Macro (paper, ERATO)")
    lines = [f"### Table 3 shaped: {label}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, per_task in _by_model(rows).items():
        cells = [DISPLAY.get(model, model)]
        for t in tasks:
            r = per_task.get(str(t))
            published = TABLE3.get(model, {}).get(str(t))
            if r is None:
                cells += ["—", "—"]
            else:
                cells += [
                    _pct(r["micro_f1_mean"], r["micro_f1_std"]),
                    _pct(r["macro_f1_mean"], r["macro_f1_std"]),
                ]
            if paper:
                cells.append(f"{published[0]:.2f} / {published[1]:.2f}" if published else "—")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({int(r["seeds"]) for r in rows}) if rows else []
    spread = (
        "one run (n = 1, no std)"
        if seeds == [1]
        else f"mean ± std over n = {', '.join(map(str, seeds))} seeds"
    )
    lines += ["", f"Ours: {spread}, percent. {note}".rstrip()]
    return "\n".join(lines) + "\n"


def table4_markdown(rows: Sequence[Mapping[str, Any]], dataset: str, synthetic: bool) -> str:
    """Table-4-shaped modality ablation: one row per dropped group, ours beside the paper's."""
    label = f"{dataset} (SYNTHETIC data)" if synthetic else dataset
    tasks = sorted({str(r["task"]) for r in rows}, key=lambda t: -int(t) if t.isdigit() else 0)
    head = (
        ["Left out"] + [f"{t}-cls Micro / Macro (ours)" for t in tasks] + [f"{t}-cls (paper)" for t in tasks]
    )
    lines = [
        f"### Table 4 shaped (modality ablation): {label}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    by_drop: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        by_drop.setdefault(r.get("drop") or "none", {})[str(r["task"])] = r
    for drop, per_task in by_drop.items():
        cells = [drop]
        for t in tasks:
            r = per_task.get(t)
            cells.append(f"{100 * r['micro_f1_mean']:.2f} / {100 * r['macro_f1_mean']:.2f}" if r else "—")
        for t in tasks:
            p = TABLE4.get(drop, {}).get(t)
            cells.append(f"{p[0]:.2f} / {p[1]:.2f}" if p else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def meld_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """MELD results beside published text-only weighted-F1 (which also read future utterances)."""
    tasks = sorted({str(r["task"]) for r in rows}, key=lambda t: -int(t))
    names = {"7": "emotion (7)", "3": "sentiment (3)"}
    head = ["Method"] + [f"{names.get(t, t)} W-F1 / Micro / Macro" for t in tasks]
    lines = [
        "### MELD test (real data; ours reads past and current utterances only)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for model, per_task in _by_model(rows).items():
        cells = [DISPLAY.get(model, model)]
        for t in tasks:
            r = per_task.get(t)
            cells.append(
                f"{_pct(r['weighted_f1_mean'], r['weighted_f1_std'])} / {100 * r['micro_f1_mean']:.2f} / {100 * r['macro_f1_mean']:.2f}"
                if r
                else "—"
            )
        lines.append("| " + " | ".join(cells) + " |")
    for name, figs in MELD_PUBLISHED.items():
        cells = [f"{name} (published; uses future context)"] + [
            f"{figs[t]:.2f} / — / —" if t in figs else "—" for t in tasks
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(Path(path)) as fh:
        fh.write(text)
