"""Time `perr data synth` (the embedded SYNTHETIC default): generation in memory and writing the store.

    python -m benchmarks.synth_speed --out runs/synth_speed.json [--n 2000] [--repeat 3] [--like-extractors]

Writes `generate_s` (stories + projections, in memory), `write_s` (generate + store + manifest on disk,
streamed `--chunk` clips at a time) and `clips_per_s`, best of `--repeat` passes, with cores, CPU flags,
versions and the machine load (other processes share the CPU: compare figures taken at a similar load).
`benchmarks/erato_scale.py` times the same generator at ERATO's size, with its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.harness import header, write_result
from perr.data.synth import DEFAULT_CHUNK, GENERATOR_VERSION, SynthConfig, generate, write_synthetic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="JSON file to write")
    ap.add_argument("--n", type=int, default=2000, help="clips (demo default 2000)")
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes (best is reported)")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="clips generated and written at a time")
    ap.add_argument(
        "--like-extractors", action="store_true", help="the extractors' dims (249/249/1280/131/512)"
    )
    args = ap.parse_args(argv)
    head = header("synth_speed", packages=("pyarrow", "pydantic"))

    cfg = SynthConfig(n=args.n, T=args.T, like_extractors=args.like_extractors)
    load_before = os.getloadavg()
    gen, write = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        generate(cfg, chunk=args.chunk)
        gen.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write_synthetic(tmp, cfg, chunk=args.chunk)
            write.append(time.perf_counter() - t)
    result = {
        "n": args.n,
        "T": args.T,
        "dims": cfg.dims,
        "chunk": args.chunk,
        "generate_s": min(gen),
        "write_s": min(write),
        "clips_per_s": args.n / min(write),
        "all_generate_s": gen,
        "all_write_s": write,
        "synth_generator": GENERATOR_VERSION,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    write_result(args.out, result, head)
    print(
        f"synthetic n={args.n}: generate {min(gen):.2f} s, write {min(write):.2f} s "
        f"(load {load_before[0]:.1f}) → {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
