"""`perr benchmark`: models × tasks × seeds (× dropped modalities) on one dataset, written as
results.csv / results.json / table.md (Table 3 and Table 4 shaped) plus Fig. 6 and Fig. 7 style PNGs.

Every (model, task, drop, seed) run has its own folder under `runs/`; a finished run (metrics.json
present) is reused, so an interrupted benchmark resumes where it stopped (and a run interrupted
mid-training resumes from its last epoch checkpoint). Runs are units of work on an executor
(:mod:`perr.execution`): one after another in this process (the default), in local worker processes, or
as Ray tasks that each declare the CPUs (its torch threads) and GPUs it needs, so a cluster places
training runs on GPU nodes. Worker processes train with `cpus_per_run` torch threads: the same results
wherever a run lands.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perr.checkpoint import Checkpoint
from perr.config import TrainConfig
from perr.data.dialogue import ensure_store
from perr.data.synth import ensure_synthetic
from perr.execution import ExecutionConfig, Runner, make_executor
from perr.io import read_json, write_json
from perr.labels import perr_tasks
from perr.models import attention_timeline
from perr.report import figures, tables
from perr.store import FeatureSplit, FeatureStore, StoreError
from perr.train import summarise_runs, train
from perr.train.batches import Batches, text_source

DATASETS = ("synthetic", "meld")


def resolve_dataset(dataset: str, cache: Path, **options: Any) -> Path:
    """A store root for `dataset`: 'synthetic' (generated), 'meld' (built from ../shared), a dialogue CSV,
    or the path of an existing feature store."""
    if dataset == "synthetic":
        return ensure_synthetic(cache / "synthetic", **options)
    if dataset == "meld" or dataset.endswith(".csv"):
        return ensure_store(dataset, cache / "dialogue", **options)
    path = Path(dataset)
    if not path.exists():
        raise StoreError(
            f"--dataset {dataset!r}: not a known dataset ({', '.join(DATASETS)}) and no such path"
        )
    return path


def run_dir(out: Path, model: str, task: str, drop: str | None, seed: int | str) -> Path:
    """The folder of one run of `perr benchmark --out OUT`: the one place this layout is written (the
    benchmark scripts read runs through it; seed "*" gives a glob pattern)."""
    return out / "runs" / model / f"task-{task}" / (f"drop-{drop}" if drop else "all") / f"seed-{seed}"


def _dir_args(key: tuple[str | None, str, str, int]) -> tuple[str, str, str | None, int]:
    drop, task, model, seed = key
    return model, task, drop, seed


def per_run_config(base: TrainConfig, backend: str, cpus: int) -> TrainConfig:
    """What each run of a grid trains with. On worker processes: `cpus` torch threads wherever it lands
    (the same results on any node), and `preload=auto` becomes off, since runs side by side would each
    read their own copy of the store into memory, all deciding from the same free memory at once
    (perr.train.preload); `preload=on` still forces it. Inline runs go one at a time and keep `base`."""
    if backend == "inline":
        return base
    preload = "off" if base.preload == "auto" else base.preload
    return dataclasses.replace(base, threads=cpus, preload=preload)


def _run_units(
    fs: FeatureStore,
    out: Path,
    todo: list[tuple[str | None, str, str, int]],
    base: TrainConfig,
    execution: ExecutionConfig,
    cpus: int,
    gpus: float | None,
) -> Any:
    """Run the unfinished runs on the executor; yield each run's key as it finishes (raise on a failure)."""
    if not todo:
        return
    executor = make_executor(execution, out)
    try:
        base = per_run_config(base, executor.backend, cpus)
        if gpus is None:
            gpus = 1.0 if executor.backend == "ray" and executor.resources().get("GPU", 0) > 0 else 0.0
        runner = Runner(executor, shared_fs=execution.shared_fs)
        for key in todo:
            drop, task, model, seed = key
            cfg = dataclasses.replace(
                base, model=model, task=task, seed=int(seed), drop=[drop] if drop else []
            )
            run = run_dir(out, *_dir_args(key)).resolve()  # absolute: Ray workers have another cwd
            runner.submit(
                key,
                train_run,
                str(fs.root.resolve()),
                cfg.to_dict(),
                run=str(run),
                num_cpus=cpus,
                num_gpus=gpus,
                output="run",
            )
        for key, _, error in runner.completed():
            if error is not None:
                raise RuntimeError(
                    f"benchmark run {run_dir(out, *_dir_args(key))} failed: {error}"
                ) from error
            yield key
    finally:
        executor.close()


def train_run(store: str, cfg: dict[str, Any], run: str) -> dict[str, Any]:
    """One benchmark run (a unit of work): train and test into `run`; its test metrics."""
    return train(store, TrainConfig.from_dict(cfg), run).metrics


def run_benchmark(
    store: str | os.PathLike,
    out: str | os.PathLike,
    models: Sequence[str],
    tasks: Sequence[str] = ("5", "3"),
    seeds: Sequence[int] = (0, 1, 2),
    drops: Sequence[str | None] = (None,),
    base: TrainConfig | None = None,
    figure_models: tuple[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    note: str = "",
    execution: ExecutionConfig | None = None,
    cpus_per_run: int = 1,
    gpus_per_run: float | None = None,
) -> list[dict[str, Any]]:
    """Train and test every combination; return the aggregated result rows (also written to `out`).

    `execution` (default: this process) says where runs go; in worker processes and Ray tasks a run uses
    `cpus_per_run` torch threads, and `gpus_per_run` GPUs (None: one where the Ray cluster has GPUs)."""
    base = base or TrainConfig()
    execution = execution or ExecutionConfig(backend="inline")
    fs = FeatureStore(store)
    header = fs.header
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        (drop, task, model, seed) for drop in drops for task in tasks for model in models for seed in seeds
    ]
    todo = [key for key in plan if not (run_dir(out, *_dir_args(key)) / "metrics.json").exists()]
    for n, key in enumerate(_run_units(fs, out, todo, base, execution, cpus_per_run, gpus_per_run), 1):
        if progress is not None:
            drop, task, model, seed = key
            done = len(plan) - len(todo) + n
            progress(f"[{done}/{len(plan)}] {model} task {task}{' drop ' + drop if drop else ''} seed {seed}")
    rows: list[dict[str, Any]] = []
    per_class: dict[str, dict[str, dict[str, float]]] = {}
    for drop in drops:
        for task in tasks:
            for model in models:
                metrics = [
                    read_json(run_dir(out, model, task, drop, seed) / "metrics.json")["test"]
                    for seed in seeds
                ]
                summary = summarise_runs(metrics)[task]
                rows.append(
                    {
                        "dataset": header.dataset
                        + (" (synthetic)" if header.synthetic and "synthetic" not in header.dataset else ""),
                        "model": model,
                        "task": task,
                        "drop": drop or "",
                        "seeds": len(seeds),
                        **{
                            k: v
                            for k, v in summary.items()
                            if not k.endswith("_values") and k != "per_class_f1_mean"
                        },
                    }
                )
                if drop is None:
                    per_class.setdefault(task, {})[model] = summary["per_class_f1_mean"]
    tables.write_results_csv(out / "results.csv", rows)
    write_json(
        out / "results.json",
        {
            "dataset": header.dataset,
            "synthetic": header.synthetic,
            "tasks": list(tasks),
            "seeds": list(seeds),
            "config": base.to_dict(),
            "note": note,
            "rows": rows,
        },
    )
    main_rows = [r for r in rows if not r["drop"]]
    perr_like = {k: t.classes for k, t in header.tasks.items()} == {
        k: t.classes for k, t in perr_tasks().items()
    }
    md = (
        tables.table3_markdown(main_rows, header.dataset, header.synthetic, note=note, paper=perr_like)
        if main_rows
        else ""
    )
    drop_rows = [r for r in rows if r["drop"]]
    if drop_rows:
        md += "\n" + tables.table4_markdown(drop_rows + main_rows, header.dataset, header.synthetic)
    if header.dataset == "meld":
        md += "\n" + tables.meld_markdown(main_rows)
    tables.write_text(out / "table.md", md)
    if per_class:
        pair = figure_models or _default_pair(models)
        if pair and all(all(m in per_class[t] for m in pair) for t in per_class):
            suffix = " (synthetic data)" if header.synthetic else ""
            figures.per_class_f1_figure(per_class, pair, out / "fig6_per_class_f1.png", title_suffix=suffix)
        attn_model = next((m for m in reversed(models) if m != "lstm"), None)
        if attn_model is not None and "test" in fs:
            run = run_dir(out, attn_model, tasks[0], None, seeds[0])
            attention_figure(run / "best.pt", fs, out / "fig7_attention.png", clip=richest_clip(fs["test"]))
    return rows


def _default_pair(models: Sequence[str]) -> tuple[str, str] | None:
    if "lstm" in models and "smta-transformer" in models:
        return ("lstm", "smta-transformer")
    return (models[0], models[-1]) if len(models) >= 2 else None


def richest_clip(split: FeatureSplit) -> int:
    """The clip with the most (modality, step) evidence: the most informative Fig. 7 timeline."""
    present = sum(np.asarray(split.mask(m), dtype=np.int64).sum(axis=1) for m in split.modalities)
    return int(np.argmax(present))


def attention_figure(
    checkpoint: Path, fs: FeatureStore, path: Path, clip: int = 0, split: str = "test"
) -> Path | None:
    """Plot the attention timeline of one clip of `split` with the model of `checkpoint` (Fig. 7)."""
    ckpt = Checkpoint.load(checkpoint)
    model = ckpt.build_model()
    data_split = fs[split]
    modalities = ckpt.modalities
    rows = np.array([clip])
    data = Batches(
        data_split, modalities, np.zeros(len(data_split), dtype=np.int64), rows, text=text_source(model)
    )
    x, mask = data.tensors(rows, torch.device("cpu"))  # raw step texts too for a fine-tuned text encoder
    with torch.no_grad():
        output = model(x, mask)
    if output.attention is None:
        return None
    weights = attention_timeline(output, modalities)[0].numpy()
    masks = np.stack([mask[m][0].numpy() for m in modalities], axis=-1)
    clip_id = data_split.index[clip].get("clip_id", clip)
    synthetic = " — SYNTHETIC clip" if fs.header.synthetic else ""
    title = f"{ckpt.model_name}: attention per modality, clip {clip_id}{synthetic}"
    return figures.attention_timeline_figure(weights, modalities, path, masks=masks, title=title)
