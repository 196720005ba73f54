"""Training seconds per epoch of several models on one store, one run at a time (the README's s/epoch column).

    python -m benchmarks.epoch_seconds --store runs/meld/store-T8 --models pair-cross,smta-transformer,lstm \
        --set task=7 --set d_model=64 ... --epochs 3 --out benchmarks/results/epoch_seconds.meld.json

Each model trains `--epochs` epochs with the same settings (`--set`, `--pair-set` for pair-cross only) and
`threads` torch threads, one model after the other so no run shares the cores with another; the models
are then run again in reverse order (`--rounds 2`), so a drift of the machine's load hits them alike.
Reported per model: every epoch's training seconds (history.jsonl: the training pass only, not the dev
scoring), their median without each round's first epoch (warm-up), and the parameter count. The JSON holds
the CPU flags, versions and the load average before and after. Figures on a shared host are noisy: compare
models within one file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from benchmarks.harness import header, write_result
from perr.checkpoint import Checkpoint
from perr.config import TrainConfig, apply_overrides
from perr.store import FeatureStore
from perr.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--models", default="pair-cross,smta-transformer,lstm")
    ap.add_argument("--set", action="append", default=[], help="key=value for every run")
    ap.add_argument("--pair-set", action="append", default=[], help="key=value for pair-cross only")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="passes over the models, alternating order")
    ap.add_argument("--out", required=True, help="JSON file")
    args = ap.parse_args()

    fixed = dict(kv.split("=", 1) for kv in args.set)
    pair_fixed = dict(kv.split("=", 1) for kv in args.pair_set)
    models = args.models.split(",")
    store = FeatureStore(args.store).header
    head = header("epoch_seconds")
    setup: dict[str, object] = {}
    seconds: dict[str, list[float]] = {m: [] for m in models}
    steady: dict[str, list[float]] = {m: [] for m in models}
    params: dict[str, int] = {}
    configs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="perr-epoch-seconds-") as tmp:
        for k in range(args.rounds):
            for model in models if k % 2 == 0 else models[::-1]:
                cfg = TrainConfig(model=model)
                apply_overrides(
                    cfg,
                    {
                        **fixed,
                        **(pair_fixed if model == "pair-cross" else {}),
                        "epochs": str(args.epochs),
                        "patience": "0",
                    },
                )
                run = Path(tmp) / f"{model}-{k}"
                train(args.store, cfg, run)
                hist = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
                seconds[model] += [round(h["seconds"], 2) for h in hist]
                steady[model] += [h["seconds"] for h in hist[1:]]
                ckpt = Checkpoint.load(run / "best.pt")
                params[model] = sum(int(v.numel()) for v in ckpt.model_state.values())
                configs[model] = cfg.to_dict()
                print(f"{model} round {k}: {[round(h['seconds'], 1) for h in hist]} s", flush=True)
    setup["loadavg_end"] = os.getloadavg()
    result = {
        "store": args.store,
        "dataset": store.dataset,
        "synthetic": store.synthetic,
        "epochs_per_round": args.epochs,
        "rounds": args.rounds,
        "setup": setup,
        "models": {
            m: {
                "params": params[m],
                "seconds_per_epoch_median": round(statistics.median(steady[m]), 2),
                "seconds_all": seconds[m],
                "config": configs[m],
            }
            for m in models
        },
    }
    write_result(args.out, result, head)
    for m, r in result["models"].items():
        print(f"{m}: {r['seconds_per_epoch_median']} s an epoch (median), {r['params']} parameters")


if __name__ == "__main__":
    main()
