"""How many torch intra-op threads a run uses: `threads` in TrainConfig, where 0 (the default) is auto.

Auto looks at the model's work per step (≈ parameters × batch × T multiply-adds, `step_work`) and the
machine's physical cores, never at the load, so the same config on the same machine always picks the
same count: float results depend on it, and a resumed run must end with exactly the metrics of an
uninterrupted one. The rule, for a CPU run:

- below `SMALL_WORK` (the demo's d 64): one thread. Such kernels finish in tens of microseconds, a
  second thread costs a wake-up and a barrier for each, and the other core is left to the helpers
  (batch loader, dropout masks drawn ahead, a model's second branch thread: perr.train.cpu);
- up to `SPLIT_WORK`, for a model with independent branches (the stage-2 LSTMs): half the cores, the
  branches running on two threads beside them;
- above: every physical core (the paper's d 256); branches then split the cores only while they run.

On a GPU the host threads only feed it, and torch's default stays. On a machine shared with other jobs
`--set threads=1` is the safe choice at any size. The two thresholds were measured on 2 cores
(`benchmarks/erato_scale.py --stages sweep` re-measures the crossover; figures in docs/performance.md).
"""

from __future__ import annotations

import functools

import torch

from perr.machine import physical_cores

#: multiply-adds of one forward step (≈ parameters × batch × T) below which one thread is faster
SMALL_WORK = 0.5e9
#: above this a model with branches takes every core and splits them only while the branches run;
#: below it (down to SMALL_WORK) half the cores per branch thread (module doc: measured at 0.8 G and 2.9 G)
SPLIT_WORK = 1.5e9


def splits_into_branches(model: torch.nn.Module) -> bool:
    """Whether `model` holds a module with two or more independent branches (a `branch_count`, e.g.
    perr.models.recurrent.ModalityLSTMs), which the CPU helpers run on two threads."""
    return any(getattr(m, "branch_count", 0) >= 2 for m in model.modules())


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
    fills every core they cost more than they save: their work preempts a pool thread, and the pool
    waits for it at each barrier."""
    return device.type != "cpu" or torch.get_num_threads() < _cores()
