"""One helper thread of the training loop on vs off, A/B in one process on a store made by
`perr data synth --like-extractors` (SYNTHETIC):

    python -m benchmarks.helper_ab --helper masks --d 256 --store /tmp/erato/data/synthetic-erato --out F.json
    python -m benchmarks.helper_ab --helper branches --d 64 --store /tmp/erato/data/synthetic-erato --out F.json

`--helper masks`: dropout masks drawn ahead at idle priority (`MaskPlan(background=True)`, what `perr train`
does when torch's threads fill every core: the paper's d 256) vs drawn in the step.
`--helper branches`: the stage-2 LSTMs on two threads (perr.models.branches.BranchPool, what `perr train`
does when a core is spare: d 64 on one torch thread, beside the loader and the masks' helper) vs one.
`--helper threads`: what auto picks for smta-transformer above SMALL_WORK on 2 cores — one intra-op thread
with the stage-2 LSTMs on two threads (perr.train.threads) — vs every core on intra-op threads, the
masks' helper at idle priority and no branches (the rule before 2026-12-03).
`--helper split`: what auto picks for smta-transformer above SPLIT_WORK — every core on intra-op threads,
split between the two branch threads while the stage-2 LSTMs run (BranchPool.map), the masks' helper at
idle priority — vs one intra-op thread with the branches beside it on the spare core (`threads`' "with").
`--helper softmax`: not a thread but the same A/B: the attention's masked softmax over a leading key axis
(perr.models.attention.masked_softmax on CPU) vs torch's row-by-row softmax over the last axis; both with
the helpers `perr train` uses.

Threads are what `perr train` picks (perr.train.threads). Blocks of `--steps` real training steps
(perr.train.loop.train_epoch: the loader, the epoch's shuffle) alternate between the two, the order
swapped every round, with the kernel floor of a fixed batch (train_speed.kernel_profile) after each round,
so machine drift hits both sides alike. Results are identical either way (tests); only time differs.
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
from perr.models import attention, build_model
from perr.models.attention import masked_softmax
from perr.models.branches import BranchPool
from perr.models.dropout import MaskPlan
from perr.store import FeatureStore
from perr.train import make_optimizer
from perr.train.batches import Batches, epoch_order
from perr.train.loop import EpochProfile, model_args_for, train_epoch
from perr.train.threads import mask_helper, resolve_threads, runs_branches_in_parallel


def _steal_s() -> float:
    """Host-wide steal time so far, in seconds (/proc/stat's 8th cpu field; 0 where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _rowwise_softmax(scores: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
    """masked_softmax before the leading-axis layout: torch's softmax over the short last axis."""
    return scores.masked_fill(~key_valid, float("-inf")).softmax(dim=-1)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", type=Path, required=True, help="a --like-extractors synthetic store")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=40, help="training steps per block")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--d", type=int, default=256)
    p.add_argument(
        "--helper",
        choices=("masks", "branches", "softmax", "threads", "split"),
        default="masks",
        help="the helper compared",
    )
    args = p.parse_args(argv)
    head = header("helper_ab")
    sp = FeatureStore(args.store)["train"]
    d = args.d
    cfg = TrainConfig(model="smta-transformer", d_model=d, stage2_hidden=d, ff_dim=2 * d, epochs=1)
    margs = model_args_for(cfg, sp.header, sp.task("5"))
    torch.manual_seed(0)
    model = build_model(margs)
    opt = make_optimizer(model, cfg.lr)
    order, targets, cpu = epoch_order(len(sp), 0, 0), sp.targets("5"), torch.device("cpu")
    threads = resolve_threads(0, model, cfg.batch_size, sp.header.T, cpu)
    torch.set_num_threads(threads)
    pool = BranchPool()
    if args.helper == "masks":
        plan = MaskPlan(background=True)
        on, off = {"masks": plan}, {}
    elif args.helper == "threads":
        plan = MaskPlan(background=False)
        on = {"masks": plan, "branches": pool, "threads": 1}
        off = {"masks": MaskPlan(background=True), "threads": physical_cores()}
    elif args.helper == "split":
        plan = MaskPlan(background=True)
        on = {"masks": plan, "branches": pool, "threads": physical_cores()}
        off = {"masks": MaskPlan(background=False), "branches": pool, "threads": 1}
    else:
        helper = mask_helper(cpu)
        plan = MaskPlan(background=helper == "background") if helper is not None else None
        pool_if_spare = pool if runs_branches_in_parallel(cpu) else None  # as perr train
        on = {"masks": plan, "branches": pool if args.helper == "branches" else pool_if_spare}
        off = {"masks": plan} if args.helper == "branches" else dict(on, softmax=_rowwise_softmax)

    def block(k: int, helpers: dict) -> tuple[float, float, float]:
        """ms a step: wall, this process's CPU (all threads), and the host's steal (CPU the hypervisor
        gave to other guests while the block ran; it inflates wall time but not CPU time)."""
        rows = np.take(order, np.arange(k * args.steps * 16, (k + 1) * args.steps * 16), mode="wrap")
        prof = EpochProfile()
        data = Batches(sp, margs.modalities, targets, rows)
        kwargs = {key: v for key, v in helpers.items() if key not in ("softmax", "threads")}
        torch.set_num_threads(helpers.get("threads", threads))
        attention.masked_softmax = helpers.get("softmax", masked_softmax)
        cpu0, steal0 = time.process_time(), _steal_s()
        try:
            train_epoch(model, opt, data, cfg, cpu, 0, prof, **kwargs)
        finally:
            attention.masked_softmax = masked_softmax
        per = 1e3 / prof.steps
        return prof.wall_s * per, (time.process_time() - cpu0) * per, (_steal_s() - steal0) * per

    fixed = Batches(sp, margs.modalities, targets, np.arange(16), prefetch=0)
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
            physical_cores() if args.helper in ("threads", "split") else threads
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
