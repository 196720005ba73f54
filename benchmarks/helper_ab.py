"""One CPU helper of the training loop on vs off, A/B in one process on a store made by
`perr data synth --like-extractors` (SYNTHETIC):

    python -m benchmarks.helper_ab --helper masks --d 256 --store /tmp/erato/data/synthetic-erato --out F.json
    python -m benchmarks.helper_ab --helper branches --d 64 --store /tmp/erato/data/synthetic-erato --out F.json

`--helper masks`: dropout masks drawn ahead at idle priority (what `perr train` does when torch's threads
fill every core: the paper's d 256) vs drawn in the step.
`--helper branches`: the stage-2 LSTMs on two threads (what `perr train` does when a core is spare: d 64
on one torch thread, beside the loader and the masks' helper) vs one.
`--helper threads`: what auto picks for smta-transformer above SMALL_WORK on 2 cores — one intra-op thread
with the stage-2 LSTMs on two threads (perr.train.threads) — vs every core on intra-op threads, the
masks' helper at idle priority and no branches.
`--helper split`: what auto picks for smta-transformer above SPLIT_WORK — every core on intra-op threads,
split between the two branch threads while the stage-2 LSTMs run, the masks' helper at idle priority —
vs one intra-op thread with the branches beside it on the spare core (`threads`' "with").

The run is set up by perr.train.Trainer as `perr train` sets it up; each side is a
perr.train.cpu.CpuHelpers (and a thread count). Blocks of `--steps` real training steps
(Trainer.steps: the loader, the epoch's shuffle) alternate between the two, the order swapped every
round, with the kernel floor of a fixed batch (train_speed.kernel_profile) after each round, so machine
drift hits both sides alike. Results are identical either way (tests); only time differs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from benchmarks.harness import alternate, header, write_result
from benchmarks.train_speed import kernel_profile
from perr.config import TrainConfig
from perr.machine import physical_cores
from perr.store import FeatureStore
from perr.train import Trainer
from perr.train.batches import Batches, epoch_order
from perr.train.cpu import CpuHelpers
from perr.train.cpu.branches import BranchPool
from perr.train.cpu.masks import MaskPlan
from perr.train.loop import EpochProfile


def _steal_s() -> float:
    """Host-wide steal time so far, in seconds (/proc/stat's 8th cpu field; 0 where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", type=Path, required=True, help="a --like-extractors synthetic store")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=40, help="training steps per block")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--d", type=int, default=256)
    p.add_argument(
        "--helper",
        choices=("masks", "branches", "threads", "split"),
        default="masks",
        help="the helper compared",
    )
    args = p.parse_args(argv)
    head = header("helper_ab")
    d = args.d
    size = {"d_model": d, "stage2_hidden": d, "ff_dim": 2 * d}
    cfg = TrainConfig(model="smta-transformer", epochs=1, cpu_helpers="on", **size)
    trainer = Trainer.from_config(cfg, FeatureStore(args.store))
    sp, model, opt, threads = trainer.data.train.split, trainer.model, trainer.optimizer, trainer.threads
    order, targets, cpu = epoch_order(len(sp), 0, 0), sp.targets("5"), torch.device("cpu")
    chosen = trainer.helpers  # what perr train runs here
    pool = BranchPool()
    cores = physical_cores()
    # each side: (CPU helpers, torch threads)
    if args.helper == "masks":
        plan = MaskPlan(background=True)
        on, off = (CpuHelpers(plan), threads), (CpuHelpers(), threads)
    elif args.helper == "threads":
        plan = MaskPlan(background=False)
        on, off = (CpuHelpers(plan, pool), 1), (CpuHelpers(MaskPlan(background=True)), cores)
    elif args.helper == "split":
        plan = MaskPlan(background=True)
        on, off = (CpuHelpers(plan, pool), cores), (CpuHelpers(MaskPlan(background=False), pool), 1)
    else:  # branches
        plan = chosen.masks
        on, off = (CpuHelpers(plan, pool), threads), (CpuHelpers(plan), threads)

    def block(k: int, side: tuple[CpuHelpers, int]) -> tuple[float, float, float]:
        """ms a step: wall, this process's CPU (all threads), and the host's steal (CPU the hypervisor
        gave to other guests while the block ran; it inflates wall time but not CPU time)."""
        helpers, n_threads = side
        rows = np.take(order, np.arange(k * args.steps * 16, (k + 1) * args.steps * 16), mode="wrap")
        prof = EpochProfile()
        torch.set_num_threads(n_threads)
        trainer.use_helpers(helpers)
        cpu0, steal0 = time.process_time(), _steal_s()
        trainer.steps(trainer.batches(rows), hook=prof)
        per = 1e3 / prof.steps
        return prof.wall_s * per, (time.process_time() - cpu0) * per, (_steal_s() - steal0) * per

    fixed = Batches(sp, trainer.args.modalities, targets, np.arange(16), prefetch=0)
    _, x, mask, y = next(iter(fixed.iterate(16, cpu)))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(model(x, mask), y, mask).backward()
        opt.step()

    block(0, on)  # warm-up; learns the masks' tape
    if args.helper in ("threads", "split"):
        block(0, off)  # the other set-up's mask plan learns its tape too
    rows = []
    k = itertools.count(1)
    floors: list[float] = []

    def read_floor(_: int) -> None:
        torch.set_num_threads(
            cores if args.helper in ("threads", "split") else threads
        )  # the floor: every core
        floors.append(kernel_profile(step, 10)["kernel_floor_ms"])

    times = alternate(
        {"with": lambda: block(next(k), on), "without": lambda: block(next(k), off)},
        args.rounds,
        after_round=read_floor,
    ).values
    for r, floor in enumerate(floors):
        (with_helper, with_cpu, with_steal) = times["with"][r]
        (without, without_cpu, without_steal) = times["without"][r]
        row = {
            "round": r,
            "with_helper_ms": round(with_helper, 1),
            "without_ms": round(without, 1),
            "floor_ms": floor,
            "with_helper_cpu_ms": round(with_cpu, 1),
            "without_cpu_ms": round(without_cpu, 1),
            "with_helper_steal_ms": round(with_steal, 1),
            "without_steal_ms": round(without_steal, 1),
            "with_helper_over_floor": round(with_helper / floor, 3),
            "without_over_floor": round(without / floor, 3),
        }
        print(row, flush=True)
        rows.append(row)
    trainer.close()
    chosen.close()
    pool.close()
    result = {
        "helper": args.helper,
        "data": "SYNTHETIC",
        "setup": {
            "d": d,
            "threads": {
                "threads": "1 with branches / every core",
                "split": "every core, split between the branches / 1 with branches",
            }.get(args.helper, threads),
            "steps_per_block": args.steps,
            "batch": 16,
            "T": sp.header.T,
        },
        "rows": rows,
        "with_helper_ms_mean": round(float(np.mean([r["with_helper_ms"] for r in rows])), 1),
        "without_ms_mean": round(float(np.mean([r["without_ms"] for r in rows])), 1),
        "with_helper_cpu_ms_mean": round(float(np.mean([r["with_helper_cpu_ms"] for r in rows])), 1),
        "without_cpu_ms_mean": round(float(np.mean([r["without_cpu_ms"] for r in rows])), 1),
        "note": "ms a step; cpu_ms is this process's CPU time (every thread), steal_ms the host's steal time",
        "masks_starved": plan.starved if plan is not None else None,
        "masks_retired": plan.retired if plan is not None else None,
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }
    result = write_result(args.out, result, head)
    return result


if __name__ == "__main__":
    main()
