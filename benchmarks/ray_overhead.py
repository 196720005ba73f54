"""What does Ray cost on one machine? The same work through `--backend local` (worker processes) and
`--backend ray` (a local Ray instance with the same number of CPUs), each a fresh child process as a user
runs it, alternated (local, ray, local, ray, …) so that drifting machine load hits both alike.

    python benchmarks/ray_overhead.py --out benchmarks/results/ray_overhead.json [--work features|build]
        [--episode-minutes 10] [--repeat 2] [--cpus 2]

Work: `features` extracts every proposal of the generated episode (benchmarks/episode.py; the build is
cached under runs/episodes/, pairs = top-2 candidates, all five modalities); `build` builds the episode.
Keys: ``local`` / ``ray`` (every run: wall, CPU, peak memory of the process tree), ``overhead`` (best
Ray wall over best local wall, minus 1; target ≤ 0.10 on 2 cores), and ``projection``: hours for ERATO's
31,182 clips on N nodes from the measured seconds per clip, assuming Ray's per-node cost stays what it
is here (tasks are independent: no cross-node traffic beyond the small results).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ERATO_CLIPS = 31_182


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--work", choices=("features", "build"), default="features")
    ap.add_argument("--episode-minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="runs per backend (best is compared)")
    ap.add_argument("--cpus", type=int, default=2, help="local worker processes = Ray CPUs")
    args = ap.parse_args(argv)

    from childrun import run_measured
    from episode import episode_path
    from extract_speed import episode_pairs

    from perr.io import write_json
    from perr.machine import cpu_info, package_versions
    from perr.manifest import load_manifest

    if args.work == "features":
        source = episode_pairs(args.episode_minutes)
        clips = len(load_manifest(source))
        base = [sys.executable, "-m", "perr", "features", "extract", str(source)]
    else:
        source = episode_path(args.episode_minutes)
        clips = 0
        base = [sys.executable, "-m", "perr", "build", "run", str(source), "--no-progress"]
    backends = {
        "local": ["--backend", "local", "--jobs", str(args.cpus)],
        "ray": ["--backend", "ray", "--num-cpus", str(args.cpus)],
    }
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="perr-rayoh-", dir="/tmp") as tmp:
        for rep in range(args.repeat):
            for name, flags in backends.items():
                out = Path(tmp) / f"{name}-{rep}"
                log = Path(tmp) / f"{name}-{rep}.log"
                r = run_measured([*base, "--out", str(out), *flags], log=log)
                if r["returncode"] != 0:
                    raise SystemExit(f"{name} run failed:\n{log.read_text()[-3000:]}")
                runs[name].append(r)
                print(f"{name:5s} run {rep}: {r['wall_seconds']:.1f} s wall, {r['cpu_seconds']:.1f} CPU-s, "
                      f"peak {r['peak_rss_mb']:.0f} MB (load {r['loadavg_before'][0]:.1f})")  # fmt: skip
    best = {k: min(r["wall_seconds"] for r in v) for k, v in runs.items()}
    overhead = best["ray"] / best["local"] - 1.0
    per_clip = best["ray"] / clips if clips else None
    result = {
        "work": args.work,
        "episode_minutes": args.episode_minutes,
        "clips": clips,
        "cpus": args.cpus,
        "local": runs["local"],
        "ray": runs["ray"],
        "best_wall_seconds": best,
        "overhead": overhead,
        "target_overhead": 0.10,
        "projection": None
        if per_clip is None
        else {
            "seconds_per_clip_on_this_machine": per_clip,
            "note": f"hours for ERATO's {ERATO_CLIPS} clips on N nodes like this one ({args.cpus} CPUs each)",
            "hours_by_nodes": {n: ERATO_CLIPS * per_clip / n / 3600 for n in (1, 4, 8, 16, 32)},
        },
        "setup": {
            **cpu_info(),
            "platform": platform.platform(),
            "versions": package_versions(("ray", "torch", "onnxruntime", "mediapipe")),
            "note": "shared machine: compare within one file",
        },
    }
    write_json(args.out, result)
    print(f"best local {best['local']:.1f} s, best ray {best['ray']:.1f} s → overhead {overhead:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
