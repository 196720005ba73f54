"""Training-step time of a fusion model with a fine-tuned text encoder (`text_encoder=finetune`), on the
real batches of one or more dialogue stores, in float32 and under bfloat16 autocast.

    python -m benchmarks.text_finetune_speed --store runs/meld/store-T8-target \
        --store runs/meld/store-T8-target-ctx3 --out benchmarks/results/text_finetune_speed.json

One step = the batch's tokenization + forward + loss + backward + Adam step, exactly as `perr train` runs
it (perr.train.trainer: the config's model, `text_finetune`, `text_lr`, batch size, `text_max_tokens`), on
the same batches of the train split (the first `--batches` of seed 0's epoch-0 shuffle) for every
variant. Variants (store × precision) are interleaved batch by batch — A, B, C, A, B, C, ... — so load
from other jobs hits them alike; medians and means are reported, with the tokens per batch and the
/proc/stat steal and iowait over the whole run. bfloat16 is timed only where the CPU has native bf16
(avx512_bf16 / amx_bf16) or on CUDA. `epoch_s` projects a whole epoch: train clips / batch × mean step.

`--variant NAME:key=v;key=v` (repeatable) adds config variants, crossed with stores and precisions, e.g.
`--variant "all:text_finetune=[]" --variant "all-by-dialogue:text_finetune=[];batch_by=dialogue_id"`: every
text modality fine-tuned, in random batches or in batches of whole dialogues (TrainConfig.batch_by). Each
variant times its own epoch-0 batches; `texts_per_batch_mean` is the distinct texts it encodes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from benchmarks.harness import header, write_result
from perr.config import TrainConfig, load_config
from perr.models import TOKEN_MASK, build_model
from perr.store import FeatureStore
from perr.train import make_optimizer, model_args_for
from perr.train.batches import Batches, epoch_order, row_groups, text_source


def proc_stat() -> dict[str, float]:
    """CPU seconds since boot by kind (first line of /proc/stat), or {} where it does not exist."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    return {n: int(v) / tick for n, v in zip(names, fields, strict=False)}


class Variant:
    """One store × precision: its model, optimizer and batches, built once."""

    def __init__(self, store: str, cfg: TrainConfig, bf16: bool, n_batches: int, label: str = "") -> None:
        fs = FeatureStore(store)
        header = fs.header
        task = header.tasks[cfg.task]
        torch.manual_seed(cfg.seed)
        self.model = build_model(model_args_for(cfg, header, task))
        self.model.train()
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay, cfg.text_lr)
        split = fs["train"]
        self.data = Batches(
            split,
            list(self.model.modalities),
            split.targets(task.name),
            np.arange(len(split)),
            prefetch=0,
            text=text_source(self.model),
        )
        groups = row_groups(split, self.data.rows, cfg.batch_by) if cfg.batch_by else None
        order = epoch_order(len(self.data), cfg.seed, 0, groups)
        self.chunks = [
            np.sort(order[i : i + cfg.batch_size])
            for i in range(0, n_batches * cfg.batch_size, cfg.batch_size)
        ]
        self.epoch_steps = -(-len(split) // cfg.batch_size)
        self.bf16 = bf16
        self.name = f"{Path(store).name}{'/' + label if label else ''}/{'bf16' if bf16 else 'fp32'}"
        self.config = cfg.to_dict()
        self.times: list[float] = []
        self.tokens: list[int] = []
        self.texts: list[int] = []

    def step(self, k: int) -> None:
        t0 = time.perf_counter()
        _, x, mask, y = self.data.unpack(self.data.gather(self.chunks[k]), torch.device("cpu"))
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(x, mask)
            loss = self.model.loss(out, y, mask)
        loss.float().backward()
        self.optimizer.step()
        self.times.append(time.perf_counter() - t0)
        self.tokens.append(int(x[TOKEN_MASK].sum()))
        self.texts.append(int(x[TOKEN_MASK].shape[0]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", action="append", required=True, help="dialogue store root (repeatable)")
    p.add_argument("--config", default=None, help="YAML config (perr train --config); default below")
    p.add_argument("--set", action="append", default=[], help="config key=value (repeatable)")
    p.add_argument("--batches", type=int, default=12, help="timed batches per variant")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--precision", default="fp32,bf16", help="fp32, bf16 or both")
    p.add_argument(
        "--variant", action="append", default=[], help="NAME:key=v;key=v config variant (repeatable)"
    )
    p.add_argument("--out", required=True)
    a = p.parse_args()
    head = header("text_finetune_speed", packages=("transformers",))

    overrides = [
        "model=pair-cross",
        "text_encoder=finetune",
        "text_finetune=target",
        "text_lr=5e-5",
        "batch_size=64",
        "modality_dropout=0.2",
        "task=7",
        "text_max_tokens=128",
        *a.set,
    ]
    cfg = load_config(a.config, overrides)
    threads = a.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    info = head["cpu"]
    native_bf16 = "avx512_bf16" in info.get("flags", []) or "amx_bf16" in info.get("flags", [])
    precisions = [q for q in a.precision.split(",") if q == "fp32" or (q == "bf16" and native_bf16)]
    configs = {"": cfg}
    for spec in a.variant:
        label, _, keys = spec.partition(":")
        configs[label] = load_config(a.config, [*overrides, *keys.split(";")])
    variants = [
        Variant(s, c, q == "bf16", a.warmup + a.batches, label)
        for s in a.store
        for label, c in configs.items()
        for q in precisions
    ]
    for k in range(a.warmup):
        for v in variants:
            v.step(k)
    for v in variants:
        v.times.clear()
        v.tokens.clear()
    stat0, t0 = proc_stat(), time.perf_counter()
    for k in range(a.warmup, a.warmup + a.batches):
        for v in variants:
            v.step(k)
        print(
            f"batch {k}: " + ", ".join(f"{v.name} {1000 * v.times[-1]:.0f} ms" for v in variants), flush=True
        )
    wall, stat1 = time.perf_counter() - t0, proc_stat()
    results = {
        v.name: {
            "step_ms_median": round(1000 * statistics.median(v.times), 1),
            "step_ms_mean": round(1000 * statistics.fmean(v.times), 1),
            "step_ms_all": [round(1000 * t, 1) for t in v.times],
            "tokens_per_batch_mean": round(statistics.fmean(v.tokens), 1),
            "texts_per_batch_mean": round(statistics.fmean(v.texts), 1),
            "config": v.config,
            "epoch_s": round(v.epoch_steps * statistics.fmean(v.times), 1),
        }
        for v in variants
    }
    first = results[variants[0].name]["step_ms_mean"]
    for r in results.values():
        r["vs_first"] = round(r["step_ms_mean"] / first, 3)
    write_result(
        a.out,
        {
            "config": {k: v for k, v in vars(cfg).items() if not k.startswith("_")},
            "stores": a.store,
            "threads": threads,
            "batches": a.batches,
            "results": results,
            "wall_s": round(wall, 1),
            "proc_stat_delta_s": {k: round(stat1[k] - stat0[k], 1) for k in stat1} if stat0 else {},
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        },
        head,
    )
    for name, r in results.items():
        print(
            f"{name}: {r['step_ms_mean']} ms a step ({r['vs_first']}×), {r['texts_per_batch_mean']} texts, "
            f"{r['tokens_per_batch_mean']} tokens, epoch ≈ {r['epoch_s']} s"
        )


if __name__ == "__main__":
    main()
