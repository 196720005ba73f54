"""How many torch intra-op threads a run uses: `threads` in TrainConfig, where 0 (the default) is auto.

Auto looks at the model's work per step and the machine's physical cores, never at the load, so the same
config on the same machine always picks the same count (float results depend on it, and a resumed run
must end with exactly the metrics of an uninterrupted one). A small model's kernels finish in tens of
microseconds, and handing each one to a second thread costs a wake-up and a barrier, while one thread
leaves the other core to the helpers (batch loader, dropout masks drawn ahead); a large model (the
paper's d 256) gains from every physical core.

Measured on the 2-core AMD EPYC (smta-transformer, batch 16, T 32, the extractors' dims): idle, d 256 runs
258 ms a step on 2 threads and 402 ms on 1 (`benchmarks/results/train_speed.idle.json`), and d 64 about
69 vs 79 ms on a fixed batch before the helpers took the gather and the dropout masks off the step; with
other jobs on the cores (load 3–4) one thread won at every width (`erato_scale.SYNTHETIC.load4.json`).
`SMALL_WORK` therefore puts d 64 (0.24 G multiply-adds a step) on one thread and d 128 (0.8 G) and up
on every core; `benchmarks/erato_scale.py --stages sweep` re-measures the crossover. On a machine shared
with other jobs, `--set threads=1` is the safe choice at any size.

A model whose stage 2 splits into independent branches (the M LSTMs of eq. 2; perr.models.branches)
runs them on two threads. Up to `SPLIT_WORK` it gets half the cores per branch thread (on 2 cores: one
intra-op thread, with the branches on the second core), since a second intra-op thread buys less than
the branches do: on the 2-core AMD EPYC Zen 4 (2026-12-03; blocks of 30–40 real training steps alternated
in one process, the order swapped each round) d 128 ran 121 ms a step against 254 ms on two intra-op
threads (4 rounds), and d 256 290 against 325 ms (6 rounds). Above `SPLIT_WORK` the rest of the step
(attention, linears, optimizer) is big enough to want every core, so the model gets every core and the
caller hands each branch thread half of them only while the branches run (BranchPool.map): d 256 ran
297.5 against 308.5 and 300.9 against 302.7 ms a step (`helper_ab.py --helper split`, 5 and 8 rounds,
9 of 13 faster; an earlier throwaway A/B 272 against 299 ms, 5 of 5), a small but steady gain, while at
d 128 it lost (124 against 116 ms, 4 rounds), so `SPLIT_WORK` lies between the two. Models without branches keep every core above
SMALL_WORK. Measured only on 2 cores; more cores are untested.
"""

from __future__ import annotations

import functools

import torch

from perr.machine import idle_priority_supported, physical_cores
from perr.models.branches import splits_into_branches

#: multiply-adds of one forward step (≈ parameters × batch × T) below which one thread is faster
SMALL_WORK = 0.5e9
#: above this a model with branches takes every core and splits them only while the branches run;
#: below it (down to SMALL_WORK) half the cores per branch thread (module doc: measured at 0.8 G and 2.9 G)
SPLIT_WORK = 1.5e9


def step_work(model: torch.nn.Module, batch_size: int, T: int) -> float:
    """≈ multiply-adds of one forward step: every weight is used once per clip and time step."""
    return float(sum(p.numel() for p in model.parameters())) * batch_size * T


def auto_threads(model: torch.nn.Module, batch_size: int, T: int, cores: int | None = None) -> int:
    """1 for a small model; else every physical core the process may use, or half of them when a
    mid-sized model splits into branches that run on two threads (the module doc)."""
    cores = physical_cores() if cores is None else cores
    work = step_work(model, batch_size, T)
    if work < SMALL_WORK:
        return 1
    return max(1, cores // 2) if work < SPLIT_WORK and splits_into_branches(model) else max(1, cores)


def resolve_threads(
    requested: int, model: torch.nn.Module, batch_size: int, T: int, device: torch.device
) -> int:
    """The intra-op thread count to use: `requested` when > 0; auto on CPU; torch's default elsewhere
    (on a GPU the host threads only feed it)."""
    if requested > 0:
        return requested
    if device.type != "cpu":
        return torch.get_num_threads()
    return auto_threads(model, batch_size, T)


@functools.cache
def _cores() -> int:
    return physical_cores()


def spare_core(device: torch.device) -> bool:
    """Whether helper threads (batch loader, dropout masks drawn ahead) have a core of their own: always
    beside a GPU; on CPU only when torch's threads leave a physical core free. Beside a thread pool that
    fills every core they cost more than they save (their work preempts a pool thread, and the pool
    waits for it at each barrier: d 256 on 2 threads ran 645 ms a step with them, 515 ms without)."""
    return device.type != "cpu" or torch.get_num_threads() < _cores()


def runs_branches_in_parallel(device: torch.device) -> bool:
    """Whether a model's branches run on a BranchPool's two threads: on CPU, when a core is spare for the
    second thread or when torch's threads can be split between the two (perr.models.branches)."""
    return device.type == "cpu" and (spare_core(device) or torch.get_num_threads() >= 2)


def mask_helper(device: torch.device) -> str | None:
    """How dropout masks are drawn ahead on `device` (perr.models.dropout.MaskPlan): "core" when a core
    is spare for the helper; "background" when torch's threads fill every core but the OS can run the
    helper at idle priority (it then fills the pool's idle moments: a paper-sized step on 2 cores ran
    421 ms on average against 484 ms drawing in place, 4 alternated runs of 60 steps each); None
    otherwise (on a GPU the masks are drawn there, and cheaply)."""
    if device.type != "cpu":
        return None
    if spare_core(device):
        return "core"
    return "background" if idle_priority_supported() else None
