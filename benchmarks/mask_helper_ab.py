"""Dropout masks drawn ahead at idle priority vs in the step, at the paper's d 256 on every core, A/B in one
process on a store made by `perr data synth --like-extractors` (SYNTHETIC):

    python benchmarks/mask_helper_ab.py --store /tmp/erato/data/synthetic-erato --out FILE.json

Blocks of `--steps` real training steps (perr.train.loop.train_epoch: the loader, the epoch's shuffle)
alternate between `MaskPlan(background=True)` (what `perr train` does when torch's threads fill every
core) and masks drawn in place, the order swapped every round, with the kernel floor of a fixed batch
(train_speed.kernel_profile) after each round, so machine drift hits both sides alike. Results are
identical either way (tests/test_train.py); only time differs.
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
from perr.machine import cpu_info, package_versions, physical_cores
from perr.models import build_model
from perr.models.dropout import MaskPlan
from perr.store import FeatureStore
from perr.train import make_optimizer
from perr.train.batches import Batches, epoch_order
from perr.train.loop import EpochProfile, model_args_for, train_epoch


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", type=Path, required=True, help="a --like-extractors synthetic store")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=40, help="training steps per block")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--d", type=int, default=256)
    args = p.parse_args(argv)
    threads = physical_cores()
    torch.set_num_threads(threads)
    sp = FeatureStore(args.store)["train"]
    d = args.d
    cfg = TrainConfig(model="smta-transformer", d_model=d, stage2_hidden=d, ff_dim=2 * d, epochs=1)
    margs = model_args_for(cfg, sp.header, sp.task("5"))
    torch.manual_seed(0)
    model = build_model(margs)
    opt = make_optimizer(model, cfg.lr)
    order, targets, cpu = epoch_order(len(sp), 0, 0), sp.targets("5"), torch.device("cpu")
    plan = MaskPlan(background=True)

    def block(k: int, masks: MaskPlan | None) -> float:
        rows = order[k * args.steps * 16 : (k + 1) * args.steps * 16]
        prof = EpochProfile()
        train_epoch(model, opt, Batches(sp, margs.modalities, targets, rows), cfg, cpu, 0, prof, masks)
        return prof.wall_s * 1e3 / prof.steps

    fixed = Batches(sp, margs.modalities, targets, np.arange(16), prefetch=0)
    _, x, mask, y = next(iter(fixed.iterate(16, cpu)))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(model(x, mask), y, mask).backward()
        opt.step()

    block(0, plan)  # warm-up; learns the tape
    rows = []
    for r in range(args.rounds):
        first, second = (plan, None) if r % 2 == 0 else (None, plan)
        a, b = block(1 + 2 * r, first), block(2 + 2 * r, second)
        bg, inline = (a, b) if r % 2 == 0 else (b, a)
        floor = kernel_profile(step, 10)["kernel_floor_ms"]
        row = {
            "round": r,
            "background_ms": round(bg, 1),
            "inline_ms": round(inline, 1),
            "floor_ms": floor,
            "background_over_floor": round(bg / floor, 3),
            "inline_over_floor": round(inline / floor, 3),
        }
        print(row, flush=True)
        rows.append(row)
    result = {
        "benchmark": "mask_helper_ab",
        "data": "SYNTHETIC",
        "setup": {"d": d, "threads": threads, "steps_per_block": args.steps, "batch": 16, "T": sp.header.T},
        "rows": rows,
        "background_ms_mean": round(float(np.mean([r["background_ms"] for r in rows])), 1),
        "inline_ms_mean": round(float(np.mean([r["inline_ms"] for r in rows])), 1),
        "starved": plan.starved,
        "retired": plan.retired,
        "cpu": cpu_info(),
        "versions": package_versions(("numpy", "torch")),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
