"""Time `perr data synth` (the embedded SYNTHETIC default): generation in memory and writing the store.

    python benchmarks/synth_speed.py --out runs/synth_speed.json [--n 2000] [--repeat 3]

Writes `generate_s` (stories + projections, in memory), `write_s` (generate + store + manifest on disk)
and `clips_per_s`, best of `--repeat` passes, with cores, CPU flags, versions and the machine load
(other processes share the CPU: compare figures taken at a similar load).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from importlib import metadata
from pathlib import Path

from perr.data.synth import GENERATOR_VERSION, SynthConfig, generate, write_synthetic
from perr.io import write_json


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "synth_generator": GENERATOR_VERSION}
    for pkg in ("numpy", "pyarrow", "pydantic"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _cpu() -> dict[str, object]:
    flags: list[str] = []
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in have]
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cores": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "model": model, "flags": flags}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="JSON file to write")
    ap.add_argument("--n", type=int, default=2000, help="clips (demo default 2000)")
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes (best is reported)")
    args = ap.parse_args(argv)

    cfg = SynthConfig(n=args.n, T=args.T)
    load_before = os.getloadavg()
    gen, write = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        generate(cfg)
        gen.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write_synthetic(tmp, cfg)
            write.append(time.perf_counter() - t)
    result = {
        "n": args.n, "T": args.T, "dims": cfg.dims,
        "generate_s": min(gen), "write_s": min(write), "clips_per_s": args.n / min(write),
        "all_generate_s": gen, "all_write_s": write,
        "cpu": _cpu(), "versions": _versions(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }
    write_json(args.out, result)
    print(f"synthetic n={args.n}: generate {min(gen):.2f} s, write {min(write):.2f} s "
          f"(load {load_before[0]:.1f}) → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
