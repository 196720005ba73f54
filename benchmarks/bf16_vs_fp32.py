"""F1 of bf16 autocast against float32 training on the embedded SYNTHETIC default, over several seeds.

    python -m benchmarks.bf16_vs_fp32 --seeds 0,1,2,3,4 --out benchmarks/results/bf16_vs_fp32.SYNTHETIC.json

Issue 3 lets the fast path use bf16 autocast when Micro- and Macro-F1 on the embedded default stay within
0.5 points of float32. One seed cannot tell: two float32 runs of one seed on two CPUs already differ by
more. So both precisions train the same seeds (`perr benchmark`, the demo's settings, one thread each,
the two runs side by side) and the JSON keeps each seed's figures, the means, and the paired differences
with their standard error, the yardstick for the 0.5 points. `--reuse` trains nothing and reads finished
runs: `--work` may then be given several times (say seeds 0-9 in one folder, 10-19 in another) and their
seeds are pooled.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import header, seed_runs, write_result
from perr.config import changed_keys, demo_config

#: `perr demo`'s configuration (perr.config.demo_config) as --set items
DEMO_SETTINGS = tuple(changed_keys(demo_config()))


def run_benchmark(store: Path, seeds: str, bf16: bool, out: Path, model: str) -> subprocess.Popen:
    sets = [a for s in (*DEMO_SETTINGS, f"bf16={str(bf16).lower()}") for a in ("--set", s)]
    cmd = [sys.executable, "-m", "perr", "benchmark", "--dataset", str(store), "--models", model]
    cmd += ["--tasks", "5,3", "--seeds", seeds, *sets, "--out", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def per_seed(folder: Path, model: str) -> dict[str, dict[str, list[float]]]:
    """{task: {metric: [value per seed, in seed order]}} from each run's metrics.json."""
    found: dict[str, dict[str, list[float]]] = {}
    for task in ("5", "3"):
        runs = [r / "metrics.json" for r in seed_runs(folder, model, task) if (r / "metrics.json").exists()]
        if not runs:
            raise SystemExit(f"no runs of {model}, task {task} under {folder}")
        scores = [json.loads(p.read_text())["test"][task] for p in runs]
        found[task] = {m: [round(100 * s[m], 2) for s in scores] for m in ("micro_f1", "macro_f1")}
    return found


def pooled(parts: list[dict[str, dict[str, list[float]]]]) -> dict[str, dict[str, list[float]]]:
    """The per-seed lists of several folders, one after the other (folders hold disjoint seeds)."""
    return {t: {m: [v for part in parts for v in part[t][m]] for m in parts[0][t]} for t in parts[0]}


def compare(fp32: dict, bf16: dict) -> dict[str, dict[str, dict[str, float | bool]]]:
    out: dict[str, dict[str, dict[str, float | bool]]] = {}
    for task in fp32:
        out[task] = {}
        for m in fp32[task]:
            a, b = fp32[task][m], bf16[task][m]
            diff = [y - x for x, y in zip(a, b, strict=True)]
            se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            mean = statistics.mean(diff)
            out[task][m] = {
                "float32_mean": round(statistics.mean(a), 2),
                "float32_std": round(statistics.stdev(a), 2) if len(a) > 1 else 0.0,
                "bf16_mean": round(statistics.mean(b), 2),
                "bf16_std": round(statistics.stdev(b), 2) if len(b) > 1 else 0.0,
                "paired_difference_mean": round(mean, 2),
                "paired_difference_se": round(se, 2),
                "within_0.5_points": abs(mean) <= 0.5,
            }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=Path("runs/demo/data/synthetic-erato"))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--model", default="smta-transformer")
    ap.add_argument(
        "--work", type=Path, action="append", help="the two runs' folders (default runs/bf16_vs_fp32)"
    )
    ap.add_argument(
        "--reuse", action="store_true", help="read finished runs under each --work, train nothing"
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    head = header("bf16_vs_fp32")
    works = args.work or [Path("runs/bf16_vs_fp32")]
    if not args.reuse:
        if len(works) != 1:
            raise SystemExit("one --work folder when training (several only with --reuse)")
        if not args.store.is_dir():
            raise SystemExit(
                f"no store at {args.store}: `make demo` or `perr data synth --like-extractors` makes it"
            )
        folders = {p: works[0] / f"bf16-{p}" for p in ("false", "true")}
        procs = [
            run_benchmark(args.store, args.seeds, p == "true", f, args.model) for p, f in folders.items()
        ]
        if any(p.wait() != 0 for p in procs):
            raise SystemExit("a perr benchmark run failed")
    fp32 = pooled([per_seed(w / "bf16-false", args.model) for w in works])
    bf16 = pooled([per_seed(w / "bf16-true", args.model) for w in works])
    result = {
        "what": "bf16 autocast vs float32 training, F1 on the embedded default (SYNTHETIC data)",
        "setup": {
            "model": args.model,
            "store": str(args.store),
            "settings": list(DEMO_SETTINGS),
            "seeds": "pooled from " + ", ".join(map(str, works)) if args.reuse else args.seeds,
            "runs": "perr benchmark --tasks 5,3, one per precision, side by side",
        },
        "per_seed_percent": {"float32": fp32, "bf16": bf16},
        "comparison_points": compare(fp32, bf16),
    }
    write_result(args.out, result, head)
    print(json.dumps(result["comparison_points"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
