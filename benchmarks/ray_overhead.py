"""What does Ray cost on one machine? The same work through `--backend local` (worker processes) and
`--backend ray`, each a fresh child process as a user runs it, alternated (local, ray, ray-cluster, then the reverse, …)
so that drifting machine load hits all alike. Ray runs two ways:

- ``ray``: a local Ray instance that the command starts and stops itself (its start-up, ~7 s here, is
  in the wall time);
- ``ray-cluster``: the driver joins a running one-node cluster (``ray start --head`` with the same CPUs,
  token auth on, started once before the runs and not timed), as on a real cluster, which outlives jobs.

    python -m benchmarks.ray_overhead --out benchmarks/results/ray_overhead.json [--work features|build]
        [--episode-minutes 10] [--repeat 2] [--cpus 2]

Work: `features` extracts every proposal of the generated episode (benchmarks/episode.py; the build is
cached under runs/episodes/, pairs = top-2 candidates, all five modalities); `build` builds the episode.
Keys: ``local`` / ``ray`` / ``ray-cluster`` (every run: wall, CPU, peak memory of the process tree),
``overhead`` (best in-process-Ray wall over best local wall, minus 1), ``overhead_cluster`` (the same for the
running cluster; target ≤ 0.10 on 2 cores), and ``projection``: hours for ERATO's
31,182 clips on N nodes from the measured seconds per clip, assuming Ray's per-node cost stays what it
is here (tasks are independent: no cross-node traffic beyond the small results).
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ERATO_CLIPS = 31_182


@contextmanager
def ray_head(root: Path, cpus: int) -> Iterator[tuple[str, dict[str, str], int]]:
    """A one-node Ray cluster (`ray start --head --block`, token auth, temp files under `root`): its
    address, the environment a driver needs to join it, and the pid of the node's process tree. Stopped (its process group) on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root.mkdir(parents=True, exist_ok=True)
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_TMPDIR": str(root / "t"),
    }
    log = root / "head.log"
    ray = str(Path(sys.executable).with_name("ray"))
    cmd = [ray, "start", "--head", "--port", str(port), "--num-cpus", str(cpus), "--temp-dir", str(root / "t"),
           "--include-dashboard=false", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while "block forever" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray start --head did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env, proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--work", choices=("features", "build"), default="features")
    ap.add_argument("--episode-minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="runs per backend (best is compared)")
    ap.add_argument("--cpus", type=int, default=2, help="local worker processes = Ray CPUs")
    args = ap.parse_args(argv)

    from benchmarks.childrun import run_measured
    from benchmarks.episode import episode_path
    from benchmarks.extract_speed import episode_pairs
    from benchmarks.harness import alternate, header, write_result
    from perr.manifest import load_manifest

    head = header("ray_overhead", packages=("ray", "onnxruntime", "mediapipe"))

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
        "ray-cluster": ["--backend", "ray"],  # + --address of the running head
    }
    runs: dict[str, list[dict]] = {name: [] for name in backends}
    with (
        tempfile.TemporaryDirectory(prefix="perr-rayoh-", dir="/tmp") as tmp,
        ray_head(Path(tmp) / "c", args.cpus) as (address, cluster_env, head_pid),
    ):

        def run(name: str) -> dict:
            rep = len(runs[name])
            out = Path(tmp) / f"{name}-{rep}"
            log = Path(tmp) / f"{name}-{rep}.log"
            cluster = name == "ray-cluster"
            extra, env = (["--address", address], cluster_env) if cluster else ([], None)
            also = (head_pid,) if cluster else ()  # the node's raylet and workers do this run's work
            r = run_measured([*base, "--out", str(out), *backends[name], *extra], log=log, env=env, also=also)
            if r["returncode"] != 0:
                raise SystemExit(f"{name} run failed:\n{log.read_text()[-3000:]}")
            runs[name].append(r)
            print(f"{name:11s} run {rep}: {r['wall_seconds']:.1f} s wall, {r['cpu_seconds']:.1f} CPU-s, "
                  f"peak {r['peak_rss_mb']:.0f} MB (load {r['loadavg_before'][0]:.1f})")  # fmt: skip
            return r

        # each backend once a round, the order reversed every other round (harness.alternate)
        alternate({name: functools.partial(run, name) for name in backends}, args.repeat)
    best = {k: min(r["wall_seconds"] for r in v) for k, v in runs.items()}
    overhead = best["ray"] / best["local"] - 1.0
    overhead_cluster = best["ray-cluster"] / best["local"] - 1.0
    per_clip = best["ray-cluster"] / clips if clips else None
    result = {
        "work": args.work,
        "episode_minutes": args.episode_minutes,
        "clips": clips,
        "cpus": args.cpus,
        "local": runs["local"],
        "ray": runs["ray"],
        "ray-cluster": runs["ray-cluster"],
        "best_wall_seconds": best,
        "overhead": overhead,
        "overhead_cluster": overhead_cluster,
        "target_overhead": 0.10,
        "note_cluster": "ray-cluster: CPU and memory count the driver and the running node's whole process "
        "tree (its idle GCS, raylet and agents included); the node's CPU comes from /proc, before and after",
        "projection": None
        if per_clip is None
        else {
            "seconds_per_clip_on_this_machine": per_clip,
            "note": f"hours for ERATO's {ERATO_CLIPS} clips on N nodes like this one ({args.cpus} CPUs each)",
            "hours_by_nodes": {n: ERATO_CLIPS * per_clip / n / 3600 for n in (1, 4, 8, 16, 32)},
        },
        "setup": {
            "note": "shared machine: compare within one file",
        },
    }
    write_result(args.out, result, head)
    print(f"best local {best['local']:.1f} s, ray (own instance) {best['ray']:.1f} s → {overhead:+.1%}, "
          f"ray (running cluster) {best['ray-cluster']:.1f} s → {overhead_cluster:+.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
