"""Hyperparameter grid for MELD, scored on the official dev split only (MELD dev = our `val`).

Each grid point trains one model with the perr trainer (`perr.train.train`); the trainer keeps the
epoch with the best dev score, so the epoch count is chosen on dev too. Test figures are never read
here. Writes one JSON with every point's best dev weighted/macro/micro-F1, its epoch, seconds, and the
setup (cores, load, versions), so the choice of the benchmark's settings is reproducible.

    python -m benchmarks.meld_dev_grid --store runs/meld/store-T8 --out runs/meld/grid.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks.harness import grid, header, write_result
from perr.config import TrainConfig, apply_overrides
from perr.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="MELD store root (perr data dialogue-store meld ...)")
    ap.add_argument("--out", required=True, help="JSON to write (run folders go beside it, in <out stem>/)")
    ap.add_argument("--models", default="lstm,smta-transformer")
    ap.add_argument("--tasks", default="7,3")
    ap.add_argument("--lr", default="1e-3,5e-3")
    ap.add_argument("--d-model", default="64")
    ap.add_argument("--set", action="append", default=[], help="fixed key=value for every point")
    ap.add_argument(
        "--grid", action="append", default=[], help="one more axis: key=v1,v2 (any TrainConfig key)"
    )
    args = ap.parse_args()

    fixed = dict(kv.split("=", 1) for kv in args.set)
    out = Path(args.out)
    runs = out.with_suffix("")
    head = header("meld_dev_grid", packages=("sentence-transformers", "transformers"))
    points = []
    axes = dict(kv.split("=", 1) for kv in args.grid)
    points_todo = grid(
        {
            "model": args.models.split(","),
            "task": args.tasks.split(","),
            "lr": args.lr.split(","),
            "d": args.d_model.split(","),
            **{k: v.split(",") for k, v in axes.items()},
        }
    )
    for point in points_todo:
        model, task, lr, d = (point.pop(k) for k in ("model", "task", "lr", "d"))
        cfg = TrainConfig(model=model, task=task, early_stop_metric="weighted_f1")
        more = point
        apply_overrides(
            cfg, {**fixed, "lr": lr, "d_model": d, "stage2_hidden": d, "ff_dim": 2 * int(d), **more}
        )
        tag = "".join(f"-{k}{v}" for k, v in more.items())
        run = runs / f"{model}-task{task}-lr{lr}-d{d}{tag}"
        t0 = time.perf_counter()
        train(args.store, cfg, run)
        seconds = time.perf_counter() - t0
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        best = max(history, key=lambda h: h["val_weighted_f1"])
        points.append(
            {
                "model": model,
                "task": task,
                "lr": float(lr),
                "d_model": int(d),
                **more,
                "config": cfg.to_dict(),
                "best_epoch": best["epoch"],
                "dev_weighted_f1": best["val_weighted_f1"],
                "dev_macro_f1": best["val_macro_f1"],
                "dev_micro_f1": best["val_micro_f1"],
                "epoch_seconds": [round(h["seconds"], 2) for h in history],
                "run_seconds": round(seconds, 1),
            }
        )
        print(json.dumps(points[-1] | {"config": None}), flush=True)
        write_result(
            out,
            {
                "loadavg_end": [round(v, 2) for v in os.getloadavg()],
                "selection": "best dev weighted-F1",
                "points": points,
            },
            head,
        )


if __name__ == "__main__":
    main()
