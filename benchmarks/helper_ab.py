"""One helper thread of the training loop on vs off, A/B in one process on a store made by
`perr data synth --like-extractors` (SYNTHETIC):

    python benchmarks/helper_ab.py --helper masks --d 256 --store /tmp/erato/data/synthetic-erato --out F.json
    python benchmarks/helper_ab.py --helper branches --d 64 --store /tmp/erato/data/synthetic-erato --out F.json

`--helper masks`: dropout masks drawn ahead at idle priority (`MaskPlan(background=True)`, what `perr train`
does when torch's threads fill every core: the paper's d 256) vs drawn in the step.
`--helper branches`: the stage-2 LSTMs on two threads (perr.models.branches.BranchPool, what `perr train`
does when a core is spare: d 64 on one torch thread, beside the loader and the masks' helper) vs one.

Threads are what `perr train` picks (perr.train.threads). Blocks of `--steps` real training steps
(perr.train.loop.train_epoch: the loader, the epoch's shuffle) alternate between the two, the order
swapped every round, with the kernel floor of a fixed batch (train_speed.kernel_profile) after each round,
so machine drift hits both sides alike. Results are identical either way (tests); only time differs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from train_speed import kernel_profile

from perr.config import TrainConfig
from perr.io import write_json
from perr.machine import cpu_info, package_versions
from perr.models import build_model
from perr.models.branches import BranchPool
from perr.models.dropout import MaskPlan
from perr.store import FeatureStore
from perr.train import make_optimizer
from perr.train.batches import Batches, epoch_order
from perr.train.loop import EpochProfile, model_args_for, train_epoch
from perr.train.threads import mask_helper, resolve_threads


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", type=Path, required=True, help="a --like-extractors synthetic store")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=40, help="training steps per block")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--helper", choices=("masks", "branches"), default="masks", help="the helper compared")
    args = p.parse_args(argv)
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
    else:
        helper = mask_helper(cpu)
        plan = MaskPlan(background=helper == "background") if helper is not None else None
        on, off = {"masks": plan, "branches": pool}, {"masks": plan}

    def block(k: int, helpers: dict) -> float:
        rows = order[k * args.steps * 16 : (k + 1) * args.steps * 16]
        prof = EpochProfile()
        data = Batches(sp, margs.modalities, targets, rows)
        train_epoch(model, opt, data, cfg, cpu, 0, prof, **helpers)
        return prof.wall_s * 1e3 / prof.steps

    fixed = Batches(sp, margs.modalities, targets, np.arange(16), prefetch=0)
    _, x, mask, y = next(iter(fixed.iterate(16, cpu)))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(model(x, mask), y, mask).backward()
        opt.step()

    block(0, on)  # warm-up; learns the masks' tape
    rows = []
    for r in range(args.rounds):
        first, second = (on, off) if r % 2 == 0 else (off, on)
        a, b = block(1 + 2 * r, first), block(2 + 2 * r, second)
        with_helper, without = (a, b) if r % 2 == 0 else (b, a)
        floor = kernel_profile(step, 10)["kernel_floor_ms"]
        row = {
            "round": r,
            "with_helper_ms": round(with_helper, 1),
            "without_ms": round(without, 1),
            "floor_ms": floor,
            "with_helper_over_floor": round(with_helper / floor, 3),
            "without_over_floor": round(without / floor, 3),
        }
        print(row, flush=True)
        rows.append(row)
    pool.close()
    result = {
        "benchmark": "helper_ab",
        "helper": args.helper,
        "data": "SYNTHETIC",
        "setup": {"d": d, "threads": threads, "steps_per_block": args.steps, "batch": 16, "T": sp.header.T},
        "rows": rows,
        "with_helper_ms_mean": round(float(np.mean([r["with_helper_ms"] for r in rows])), 1),
        "without_ms_mean": round(float(np.mean([r["without_ms"] for r in rows])), 1),
        "masks_starved": plan.starved if plan is not None else None,
        "masks_retired": plan.retired if plan is not None else None,
        "cpu": cpu_info(),
        "versions": package_versions(("numpy", "torch")),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
