"""Issue #15: pair-cross against smta-transformer and lstm with one budget, settings chosen on dev only.

    python -m benchmarks.beyond_smta --store STORE --out benchmarks/results/X.json --runs runs/X \
        --models pair-cross,smta-transformer,lstm --tasks 7,3 --seeds 0,1,2 --set lr=1e-3 ... \
        [--select modality_dropout=0,0.2] [--drop speaker --drop others]

1. Selection (optional, dev only): pair-cross with seed 0 for each value of `--select`, on every task; the
   value with the best mean dev score (`early_stop_metric` of the best epoch, from history.jsonl) is kept.
   The store's `val` split (or `--set holdout_fraction=…`, a share of train) is the dev split; the test
   metrics that `perr train` writes for these runs are not read here. The chosen value's runs are the
   comparison's seed-0 runs (linked, not trained again): the same config, so the same run.
2. Comparison: `perr benchmark` (perr.benchmark.run_benchmark) for every model, tasks × seeds, with the
   same settings (pair-cross also gets the selected value); each test split is scored once per run, with
   the weights of the best dev epoch.
3. Ablation (optional, `--drop`): pair-cross with each modality group left out (Table 4 shape).

The JSON holds the machine (cores, CPU flags, versions, load before/after), the settings, the selection,
each row (mean ± std over seeds), the parameters of each model and its training seconds per epoch (mean
over the epochs run, from history.jsonl; torch threads as set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness import grid, run_dir, write_result
from perr.benchmark import run_benchmark
from perr.checkpoint import Checkpoint
from perr.config import TrainConfig, apply_overrides
from perr.execution import ExecutionConfig
from perr.store import FeatureStore
from perr.train import train


def wait_for_lock(message: str = "") -> None:
    """On a shared machine: while /work/BENCH_LOCK (or $PERR_BENCH_LOCK) exists, wait before the next run."""
    if message:
        print(message, flush=True)
    lock = Path(os.environ.get("PERR_BENCH_LOCK", "/work/BENCH_LOCK"))
    while lock.exists():
        time.sleep(30)


def history(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]


def run_facts(run: Path) -> dict[str, Any]:
    """Parameters (of the saved weights), seconds per epoch and the epochs run of one run folder."""
    ckpt = Checkpoint.load(run / "best.pt", torch.device("cpu"))
    hist = history(run)
    return {
        "params": sum(int(v.numel()) for v in ckpt.model_state.values()),
        "seconds_per_epoch": statistics.fmean(h["seconds"] for h in hist),
        "epochs_run": len(hist),
        "best_epoch": ckpt.epoch,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True, help="JSON file")
    ap.add_argument("--runs", required=True, help="folder for the run folders (not committed)")
    ap.add_argument("--models", default="pair-cross,smta-transformer,lstm")
    ap.add_argument("--tasks", default="5,3")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", action="append", default=[], help="key=value for every run")
    ap.add_argument("--pair-set", action="append", default=[], help="key=value for pair-cross only")
    ap.add_argument("--select", default="", help="key=v1,v2: pair-cross setting chosen on dev (seed 0)")
    ap.add_argument("--drop", action="append", default=[], help="ablation of pair-cross: group left out")
    ap.add_argument("--ablation-tasks", default="", help="tasks of the ablation (default: --tasks)")
    ap.add_argument("--ablation-seeds", default="", help="seeds of the ablation (default: --seeds)")
    ap.add_argument("--jobs", type=int, default=1, help="local worker processes for the runs (1: this one)")
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    fixed = dict(kv.split("=", 1) for kv in args.set)
    pair_fixed = dict(kv.split("=", 1) for kv in args.pair_set)
    models, tasks = args.models.split(","), args.tasks.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = Path(args.runs)
    execution = ExecutionConfig(backend="local", jobs=args.jobs) if args.jobs > 1 else None
    threads = int(fixed.get("threads", 1))
    header = FeatureStore(args.store).header
    head = header("beyond_smta", packages=("sentence-transformers", "transformers"))
    info: dict[str, Any] = {"torch_threads_set": None}
    result: dict[str, Any] = {
        "setup": info,
        "store": args.store,
        "dataset": header.dataset,
        "synthetic": header.synthetic,
        "T": header.T,
        "settings": fixed,
        "pair_cross_settings": pair_fixed,
        "note": args.note,
    }

    def config(model: str, task: str, extra: dict[str, str] | None = None) -> TrainConfig:
        cfg = TrainConfig(model=model, task=task)
        apply_overrides(cfg, {**fixed, **(pair_fixed if model == "pair-cross" else {}), **(extra or {})})
        return cfg

    if args.select:
        key, values = args.select.split("=", 1)
        points = []
        for point in grid({"value": values.split(","), "task": tasks}):
            value, task = point["value"], point["task"]
            wait_for_lock()
            cfg = config("pair-cross", task, {key: value, "seed": "0"})
            run = runs / "select" / f"pair-cross-task{task}-{key}{value}"
            t0 = time.perf_counter()
            train(args.store, cfg, run)
            best = max(history(run), key=lambda h: h[f"val_{cfg.early_stop_metric}"])
            dev = best[f"val_{cfg.early_stop_metric}"]
            points.append(
                {
                    "task": task,
                    key: value,
                    "dev": dev,
                    "best_epoch": best["epoch"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(f"select {key}={value} task {task}: dev {dev:.4f}", flush=True)
        by_value: dict[str, list[float]] = {}
        for p in points:
            by_value.setdefault(p[key], []).append(p["dev"])
        chosen = max(by_value, key=lambda v: statistics.fmean(by_value[v]))
        pair_fixed[key] = chosen
        if 0 in seeds and "pair-cross" in models:  # the chosen value's seed-0 runs are the comparison's
            for task in tasks:
                seed0 = run_dir(runs / "compare" / "pair-cross", "pair-cross", task, None, 0)
                if not seed0.exists():
                    seed0.parent.mkdir(parents=True, exist_ok=True)
                    seed0.symlink_to((runs / "select" / f"pair-cross-task{task}-{key}{chosen}").resolve())
        result["selection"] = {
            "key": key,
            "metric": f"dev {config('pair-cross', tasks[0]).early_stop_metric}, seed 0, mean over tasks",
            "points": points,
            "chosen": chosen,
        }
        write_result(args.out, result, head)

    parallel: dict[str, Any] = {"execution": execution, "cpus_per_run": threads}
    rows: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}
    t_all = time.perf_counter()
    for model in models:
        base = config(model, tasks[0])
        out = runs / "compare" / model
        # inline: one seed more at a time (finished runs are reused), so the lock is checked between runs,
        # not only between models; with --jobs the workers take the runs together
        for k in range(1, len(seeds) if execution is None else 1):
            wait_for_lock()
            run_benchmark(args.store, out, [model], tasks, seeds[:k], base=base, **parallel)
        wait_for_lock()
        rows += run_benchmark(
            args.store, out, [model], tasks, seeds, base=base, progress=wait_for_lock, **parallel
        )
        for task in tasks:
            per_seed = [run_facts(run_dir(out, model, task, None, s)) for s in seeds]
            facts[f"{model}/task{task}"] = {
                "params": per_seed[0]["params"],
                "seconds_per_epoch_mean": statistics.fmean(f["seconds_per_epoch"] for f in per_seed),
                "epochs_run": [f["epochs_run"] for f in per_seed],
                "best_epoch": [f["best_epoch"] for f in per_seed],
                "config": config(model, task).to_dict(),
            }
        result.update(rows=rows, facts=facts, compare_seconds=round(time.perf_counter() - t_all, 1))
        write_result(args.out, result, head)
    if args.drop:
        ab_tasks = args.ablation_tasks.split(",") if args.ablation_tasks else tasks
        base = config("pair-cross", ab_tasks[0])
        ab = run_benchmark(
            args.store,
            runs / "compare" / "pair-cross",
            ["pair-cross"],
            ab_tasks,
            [int(x) for x in args.ablation_seeds.split(",")] if args.ablation_seeds else seeds,
            drops=[None, *args.drop],
            base=base,
            progress=wait_for_lock,
            **parallel,
        )
        result["ablation"] = ab
    info["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    info["torch_threads_set"] = fixed.get("threads")
    write_result(args.out, result, head)


if __name__ == "__main__":
    main()
