"""The whole data path at ERATO's size, as a new user runs it, on SYNTHETIC data:

    python -m benchmarks.erato_scale --n 25000 --out benchmarks/results/erato_scale.SYNTHETIC.json
    python -m benchmarks.erato_scale --work /tmp/erato --stages profile,sweep --out FILE   # reuse a store

Stages (`--stages`, all by default): generate (`perr data synth --like-extractors`, progress bar forced on
and its updates counted) → validate (`perr data validate`, cold, then again with its record) → train (one
epoch of `perr train`: smta-transformer, d 64, stage-2 hidden 64, FF 128, batch 16, threads auto; the run
also scores the test split) → evaluate (`perr evaluate`) → train_d256 (the same epoch at the paper's d 256,
train_speed.py's model). Each is a child process: its wall time and its own peak RSS (`os.wait4`:
ru_maxrss of that child alone), CPU user/sys time and the load average before and after are recorded.
Then, in this process: profile — the step at d 64 and d 256 on the store (data gather, host-to-device
copy, forward, backward, optimizer, waits on the loader; set up by perr.train.Trainer as `perr train` does; torch.profiler's kernel floor via
`train_speed.kernel_profile`, at the loop's thread count and at every core: the lower is the floor) — and sweep — ms per step for several d with 1 thread + helper threads,
all cores + helper threads, and all cores inline, each in a fresh process — where `threads=0` (auto)
should switch.

`--page-cache cold|warm` evicts the store's pages from this machine's page cache before each training
stage, or reads them in first. (In a VM the host may still cache them: "cold" here is not a cold disk.)

Targets (issue #16, 2 cores, 25,000 clips): epoch at d 64 ≤ 60 s; epoch at d 256 ≤ 1.25 × steps × the
kernel floor. The JSON records both checks, `perr.machine.cpu_info()`, versions and torch's settings.
`--device cuda` runs the same stages and profiles on a GPU. Data are synthetic; figures are speeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as perr itself sets it, before torch loads

REPO = Path(__file__).resolve().parents[1]

# Only light modules here: the stages are child processes whose peak RSS comes from os.wait4, and Linux
# carries the parent's RSS at fork into a child's ru_maxrss (the high-water mark survives exec). So this
# process stays small until the stages are done; torch and the training code load afterwards (_heavy).
from benchmarks.harness import header, write_result  # noqa: E402
from perr.machine import physical_cores  # noqa: E402


def _load_heavy() -> None:
    """Bind torch and the training code as module globals, after the child stages ran (see above)."""
    global np, torch, kernel_profile, TrainConfig, FeatureStore, Trainer
    global Batches, epoch_order, EpochProfile, step_work
    import numpy as np
    import torch

    from benchmarks.train_speed import kernel_profile
    from perr.config import TrainConfig
    from perr.store import FeatureStore
    from perr.train import Trainer
    from perr.train.batches import Batches, epoch_order
    from perr.train.loop import EpochProfile
    from perr.train.threads import step_work


SMALL = {"d_model": 64, "stage2_hidden": 64, "ff_dim": 128}  # the issue's d-64 run (and `perr demo`'s size)
PAPER = {"d_model": 256, "stage2_hidden": 256, "ff_dim": 512}  # train_speed.py's model, the paper's d


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def run_stage(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one stage as a child process: wall time, its own peak RSS and CPU time (os.wait4), exit code."""
    err = log_dir / f"{name}.stderr"
    load = os.getloadavg()
    t0 = time.perf_counter()
    with open(err, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=fh, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    out = {
        "command": " ".join(argv[2:] if argv[1] == "-m" else argv),
        "wall_s": round(wall, 2),
        "peak_rss_mb": _mb(usage.ru_maxrss),
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        "cpu_util": round((usage.ru_utime + usage.ru_stime) / wall, 2) if wall else None,
        "returncode": proc.returncode,
        "loadavg_before": [round(v, 2) for v in load],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(f"  {name}: {out['wall_s']} s, peak RSS {out['peak_rss_mb']} MB, rc {proc.returncode}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed (rc {proc.returncode}); see {err}:\n{err.read_text()[-3000:]}")
    return out


def set_page_cache(store: Path, mode: str) -> None:
    """Put the store's files in the page cache ("warm": read them once) or out of it ("cold":
    posix_fadvise DONTNEED, which drops a file's clean cached pages without privileges); "as-is" leaves
    them. A machine that reclaims cold pages (or a store written long ago) trains from a cold store."""
    if mode == "as-is":
        return
    for f in sorted(store.rglob("*.npy")):
        fd = os.open(f, os.O_RDONLY)
        try:
            if mode == "cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                while os.read(fd, 1 << 24):
                    pass
        finally:
            os.close(fd)


def progress_updates(stderr: Path, total: int) -> int:
    """Distinct `done/total` counts the progress bar drew (PERR_PROGRESS=1 forces it off a terminal)."""
    text = stderr.read_text(errors="replace")
    return len(set(re.findall(rf"(\d+)/{total}\b", text)))


def _history(run: Path) -> dict[str, Any]:
    lines = (run / "seed-0" / "history.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def _real_batch(store: FeatureStore, modalities: list[str], batch: int, device: torch.device):
    sp = store["train"]
    data = Batches(sp, modalities, sp.targets("5"), np.arange(len(sp)), prefetch=0)
    _, x, mask, y = next(iter(data.iterate(batch, device, epoch_order(len(sp), 0, 0))))
    return x, mask, y


#: steps profiled for the kernel floor: the floor moved by up to 21 % between runs of 5 on a shared machine
KERNEL_STEPS = 20


def _kernel_floor(
    fs: FeatureStore,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    modalities: list[str],
    batch: int,
    threads: int,
    device: torch.device,
) -> tuple[dict[str, Any], dict[int, float]]:
    """train_speed's kernel profile of a step on a real batch, at the loop's thread count and at every
    core: the lower floor's profile, and the floor (ms) by thread count."""
    x, mask, y = _real_batch(fs, modalities, batch, device)

    def one_step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(model(x, mask), y, mask).backward()
        opt.step()

    kernels = kernel_profile(one_step, KERNEL_STEPS, device)
    floors = {threads: kernels["kernel_floor_ms"]}
    cores = physical_cores()
    if device.type == "cpu" and threads != cores:
        # the floor is the kernels at their fastest on this machine, as train_speed's top-level figure
        # (every core): a loop that spends its second core on branches is held to the same floor
        torch.set_num_threads(cores)
        every_core = kernel_profile(one_step, KERNEL_STEPS, device)
        torch.set_num_threads(threads)
        floors[cores] = every_core["kernel_floor_ms"]
        if every_core["kernel_floor_ms"] < kernels["kernel_floor_ms"]:
            kernels = every_core
    return kernels, floors


def _paper_run(store_root: Path, size: dict[str, int], device: torch.device) -> Trainer:
    """smta-transformer at `size` (seed 0) as `perr train` sets it up: a Trainer."""
    cfg = TrainConfig(model="smta-transformer", device=str(device), **size)
    return Trainer.from_config(cfg, FeatureStore(store_root))


def floor_one(store_root: Path, size: dict[str, int], device: torch.device) -> dict[str, Any]:
    """The kernel floor alone (as step_profile reads it), in a fresh process: read before an epoch, so
    the epoch is compared with the floors on both sides of it (the host's speed drifts by 15 % an hour)."""
    with _paper_run(store_root, size, device) as trainer:
        model, opt, cfg = trainer.model, trainer.optimizer, trainer.cfg
        for _ in range(2):  # warm-up: oneDNN's primitives and the optimizer's state
            opt.zero_grad(set_to_none=True)
            x, mask, y = _real_batch(trainer.fs, trainer.args.modalities, cfg.batch_size, device)
            model.loss(model(x, mask), y, mask).backward()
            opt.step()
        kernels, floors = _kernel_floor(
            trainer.fs, model, opt, trainer.args.modalities, cfg.batch_size, trainer.threads, device
        )
    return {"kernel_floor_ms": kernels["kernel_floor_ms"], "kernel_floor_ms_by_threads": floors}


def step_profile(store_root: Path, size: dict[str, int], steps: int, device: torch.device) -> dict[str, Any]:
    """At one model size: `steps` training steps of the real loop on the store (EpochProfile: gather,
    h2d, wait, forward, backward, optimizer) and the kernel floor of a step on a real batch."""
    with _paper_run(store_root, size, device) as trainer:
        cfg, sp, model = trainer.cfg, trainer.data.train.split, trainer.model
        rows = epoch_order(len(sp), 0, 0)[: steps * cfg.batch_size]
        trainer.steps(trainer.batches(np.sort(rows[: 2 * cfg.batch_size])))  # warm-up
        prof = EpochProfile()
        load = os.getloadavg()
        trainer.steps(trainer.batches(np.sort(rows)), hook=prof)
        masks, helpers = trainer.helpers.masks, trainer.helpers.describe()
        kernels, floors = _kernel_floor(
            trainer.fs,
            model,
            trainer.optimizer,
            trainer.args.modalities,
            cfg.batch_size,
            trainer.threads,
            device,
        )
        return {
            "model": "smta-transformer",
            **size,
            "batch": cfg.batch_size,
            "input_dims": sp.header.dims,
            "threads": trainer.threads,
            "step_work_gmac": round(step_work(model, cfg.batch_size, sp.header.T) / 1e9, 3),
            "loop": prof.to_json(),
            "dropout_masks_drawn_ahead_steps": masks.steps_ahead if masks is not None else None,
            "dropout_mask_helper": helpers["dropout_masks"],  # "core", "background" (idle priority) or None
            "dropout_masks_starved_steps": masks.starved if masks is not None else None,
            "stage2_lstms_on_two_threads": helpers["branches_on_two_threads"],
            "kernel": kernels,  # the lower of the floors below
            "kernel_floor_ms_by_threads": floors,
            "loadavg_before": [round(v, 2) for v in load],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        }


#: the loop's set-ups the sweep compares: (label, torch threads ("1" or "cores"), helper threads on)
SWEEP_SETUPS = (
    ("1 thread + helpers", "1", True),
    ("all cores + helpers", "cores", True),
    ("all cores, inline", "cores", False),
)


def sweep_one(store_root: Path, d: int, threads: int, helpers: bool, steps: int) -> dict[str, Any]:
    """ms per step of the real loop at width d with a fixed thread count, with or without the helper
    threads (batch loader, and the CPU helpers: `cpu_helpers` on or off), in a fresh process."""
    size = {"d_model": d, "stage2_hidden": d, "ff_dim": 2 * d, "heads": 4 if d % 4 == 0 else 1}
    cfg = TrainConfig(
        model="smta-transformer", threads=threads, cpu_helpers="on" if helpers else "off", **size
    )
    with Trainer.from_config(cfg, FeatureStore(store_root)) as trainer:
        sp = trainer.data.train.split
        rows = np.sort(epoch_order(len(sp), 0, 0)[: (steps + 3) * cfg.batch_size])
        ahead = 3 if helpers else 0
        trainer.steps(trainer.batches(rows[: 3 * 16], prefetch=ahead))  # warm-up
        prof = EpochProfile()
        trainer.steps(trainer.batches(rows[3 * 16 :], prefetch=ahead), hook=prof)
        return {
            "d": d,
            "threads": threads,
            "helpers": helpers,
            "stage2_lstms_on_two_threads": trainer.helpers.branches is not None,
            "ms_per_step": round(prof.wall_s * 1e3 / max(prof.steps, 1), 1),
            "step_work_gmac": round(step_work(trainer.model, cfg.batch_size, sp.header.T) / 1e9, 3),
        }


def thread_sweep(store_root: Path, ds: list[int], steps: int, repeats: int) -> dict[str, Any]:
    """For each d: ms/step of SWEEP_SETUPS, each run in its own fresh process (switching thread counts
    inside one process disturbs oneDNN), set-ups alternating, median of `repeats`."""
    cores = physical_cores()
    rows = []
    for d in ds:
        times: dict[str, list[float]] = {label: [] for label, *_ in SWEEP_SETUPS}
        load = os.getloadavg()
        work = None
        for _ in range(repeats):
            for label, th, helpers in SWEEP_SETUPS:
                n = 1 if th == "1" else cores
                argv = [
                    sys.executable,
                    "-m",
                    __spec__.name,
                    "--sweep-one",
                    str(store_root),
                    str(d),
                    str(n),
                    str(int(helpers)),
                    str(steps),
                ]
                out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                times[label].append(res["ms_per_step"])
                work = res["step_work_gmac"]
        med = {label: round(statistics.median(v), 1) for label, v in times.items()}
        rows.append(
            {
                "d": d,
                "step_work_gmac": work,
                "ms_per_step": med,
                "fastest": min(med, key=med.get),
                "raw": times,
                "loadavg_before": [round(v, 2) for v in load],
                "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            }
        )
        print(f"  sweep d={d}: {med}", flush=True)
    return {"cores": cores, "steps": steps, "repeats": repeats, "rows": rows}


STAGES = ("generate", "validate", "train", "evaluate", "train_d256", "profile", "sweep")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    p.add_argument("--n", type=int, default=25000, help="synthetic clips (ERATO: ~25,000; paper §3)")
    p.add_argument(
        "--work", type=Path, default=None, help="folder for the data and runs (default: a temp dir)"
    )
    p.add_argument("--keep", action="store_true", help="keep the generated store and runs")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N]")
    p.add_argument(
        "--stages",
        default=",".join(STAGES),
        help=f"comma list of {', '.join(STAGES)}; without generate, --work must hold a store made earlier",
    )
    p.add_argument(
        "--page-cache",
        choices=("as-is", "cold", "warm"),
        default="as-is",
        help="the store's pages before each training stage: as left by earlier work, evicted (a store not "
        "read since the machine started), or read in full first",
    )
    p.add_argument(
        "--train-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key for both training stages, e.g. preload=off (repeatable)",
    )
    p.add_argument("--profile-steps", type=int, default=60, help="loop steps profiled per model size")
    p.add_argument("--sweep-d", default="16,32,64,128,256", help="widths of the thread sweep")
    p.add_argument("--sweep-steps", type=int, default=30)
    p.add_argument("--sweep-repeats", type=int, default=2)
    p.add_argument("--sweep-one", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--floor-one", nargs=2, help=argparse.SUPPRESS)  # STORE DEVICE
    args = p.parse_args(argv)
    if args.floor_one:
        _load_heavy()
        res = floor_one(Path(args.floor_one[0]), PAPER, torch.device(args.floor_one[1]))
        print(json.dumps(res))
        return res
    if args.sweep_one:
        _load_heavy()
        store, d, th, helpers, steps = args.sweep_one
        res = sweep_one(Path(store), int(d), int(th), helpers == "1", int(steps))
        print(json.dumps(res))
        return res
    if args.out is None:
        p.error("--out is required")
    todo = {s.strip() for s in args.stages.split(",") if s.strip()}
    if todo - set(STAGES):
        p.error(f"--stages: unknown {sorted(todo - set(STAGES))}; choose from {', '.join(STAGES)}")
    if "generate" not in todo and args.work is None:
        p.error("--work is required when --stages leaves out generate (the store is reused from there)")

    work = args.work or Path(tempfile.mkdtemp(prefix="perr-erato-scale-"))
    logs = work / "logs"
    if "generate" in todo and (work / "data").exists():
        shutil.rmtree(work / "data")
    for run, stage in (("run-d64", "train"), ("run-d256", "train_d256"), ("eval", "evaluate")):
        if stage in todo:
            shutil.rmtree(work / run, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    perr = [sys.executable, "-m", "perr"]
    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    store = work / "data" / "synthetic-erato"
    head = header("erato_scale", packages=("pyarrow", "pydantic"))
    print(f"erato_scale: n={args.n}, device {args.device}, work {work}, stages {sorted(todo)}", flush=True)

    stages: dict[str, Any] = {}
    if "generate" in todo:
        stages["generate"] = run_stage(
            "generate",
            [*perr, "data", "synth", "--out", str(work / "data"), "--n", str(args.n), "--like-extractors"],
            logs,
            {**env, "PERR_PROGRESS": "1"},
        )
        stages["generate"]["progress_bar_updates"] = progress_updates(logs / "generate.stderr", args.n)
        stages["generate"]["store_gb"] = round(sum(f.stat().st_size for f in store.rglob("*.npy")) / 1e9, 2)
    n = sum(int(json.loads((store / s / "header.json").read_text())["n"]) for s in ("train", "test"))
    if "validate" in todo:
        stages["validate"] = run_stage("validate", [*perr, "data", "validate", str(store)], logs, env)
        stages["validate_again"] = run_stage(
            "validate_again", [*perr, "data", "validate", str(store)], logs, env
        )
    train_n = int(json.loads((store / "train" / "header.json").read_text())["n"])
    steps = math.ceil(train_n / 16)
    common = ["--model", "smta-transformer", "--task", "5", "--seeds", "0", "--device", args.device]
    extra = [f"--set={kv}" for kv in args.train_set]

    def epoch(name: str, run: str, size: dict[str, int]) -> dict[str, Any]:
        sets = [f"--set={k}={v}" for k, v in size.items()]
        set_page_cache(store, args.page_cache)
        out = run_stage(
            name,
            [*perr, "train", str(store), "--out", str(work / run), *common, "--set=epochs=1", *sets, *extra],
            logs,
            env,
        )
        h = _history(work / run)
        out.update(
            epoch_s=round(h["seconds"], 2),
            steps=steps,
            steps_per_s=round(steps / h["seconds"], 3),
            threads=h.get("threads"),
            preload=h.get("preload"),  # the store read into memory before the epoch (perr.train.preload)
            train_clips=train_n,
            page_cache=args.page_cache,
            note="wall_s also holds start-up, the (recorded) validation, the test split's scoring and saving",
        )
        return out

    if "train" in todo:
        stages["train"] = epoch("train", "run-d64", SMALL)
    if "evaluate" in todo:
        ckpt = work / "run-d64" / "seed-0" / "best.pt"
        stages["evaluate"] = run_stage(
            "evaluate", [*perr, "evaluate", str(ckpt), str(store), "--out", str(work / "eval")], logs, env
        )
    floor_before = None
    if "train_d256" in todo and "profile" in todo:
        argv_floor = [sys.executable, "-m", __spec__.name, "--floor-one", str(store), args.device]
        out = subprocess.run(argv_floor, capture_output=True, text=True, check=True, cwd=REPO)
        floor_before = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  kernel floor before the d-256 epoch: {floor_before['kernel_floor_ms']} ms", flush=True)
    paper = epoch("train_d256", "run-d256", PAPER) if "train_d256" in todo else None

    _load_heavy()  # the child stages are done: torch may load here now
    device = torch.device(args.device)
    profiles = None
    if "profile" in todo:
        print("profiles", flush=True)
        profiles = {
            f"d{s['d_model']}": step_profile(store, s, args.profile_steps, device) for s in (SMALL, PAPER)
        }
        if paper is not None:
            after = profiles["d256"]["kernel"]["kernel_floor_ms"]
            before = floor_before["kernel_floor_ms"] if floor_before is not None else after
            # the lower of the floors read on either side of the epoch: the stricter ratio
            floor_s = steps * min(before, after) / 1e3
            paper.update(
                kernel_floor_ms_before=before,
                kernel_floor_ms_after=after,
                kernel_floor_epoch_s=round(floor_s, 1),
                epoch_over_floor=round(paper["epoch_s"] / floor_s, 3),
                epoch_over_floor_before_after=[
                    round(paper["epoch_s"] * 1e3 / (steps * f), 3) for f in (before, after)
                ],
            )
    sweep = None
    ds = [int(v) for v in args.sweep_d.split(",") if v]
    if "sweep" in todo and ds and device.type == "cpu":
        print("thread sweep", flush=True)
        sweep = thread_sweep(store, ds, args.sweep_steps, args.sweep_repeats)

    d64 = stages.get("train", {}).get("epoch_s")
    ratio = paper.get("epoch_over_floor") if paper else None
    result: dict[str, Any] = {
        "benchmark": "erato_scale",
        "data": "SYNTHETIC (perr data synth --like-extractors): figures are speeds and memory, not accuracy",
        "n": n,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "stages": stages,
        "train_d256": paper,
        "profile": profiles,
        "thread_sweep": sweep,
        "targets": {
            "epoch_d64_s": d64,
            "epoch_d64_target_s": 60,
            "epoch_d64_ok": d64 <= 60 if d64 is not None else None,
            "epoch_d256_over_floor": ratio,
            "epoch_d256_target": 1.25,
            "epoch_d256_ok": ratio <= 1.25 if ratio is not None else None,
            "generate_peak_rss_mb": stages.get("generate", {}).get("peak_rss_mb"),
            "generate_peak_rss_target_mb": 1536,
        },
        "physical_cores": physical_cores(),
        "torch": {
            "version": torch.__version__,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "default_threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
        },
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }
    result = write_result(args.out, result, head)
    print(json.dumps(result["targets"]), f"→ {args.out}", flush=True)
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
