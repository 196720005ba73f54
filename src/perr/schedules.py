"""Learning-rate schedules: one registry that feeds the `lr_schedule` config key.

    step     the paper's protocol (§5.1): the rate × lr_gamma every lr_step epochs, stepped once an epoch.
    linear   the usual schedule for fine-tuning a transformer (BERT, RoBERTa, EmoBERTa): a linear warm-up
             over the first `warmup` share of all optimiser steps, then a linear decay to 0 at the last one.
    cosine   the same warm-up, then a half-cosine decay to 0.

The warm-up schedules step once a batch, so their shape does not depend on how many epochs the data
makes. Every parameter group (the fusion model at `lr`, a fine-tuned text encoder at `text_lr`) is scaled
by the same factor. A run that stops early keeps whatever rate it had reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from perr.registry import Registry


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule needs to know about the run."""

    epochs: int
    steps_per_epoch: int  # optimiser steps (batches) in one epoch
    lr_step: int  # step: epochs between two decays
    lr_gamma: float  # step: the factor at each decay
    warmup: float  # warm-up schedules: share of all steps spent warming up, in [0, 1)

    @property
    def total_steps(self) -> int:
        return max(1, self.epochs * self.steps_per_epoch)


class Schedule:
    """A torch LR scheduler and when it steps (after each batch, or after each epoch)."""

    def __init__(self, scheduler: torch.optim.lr_scheduler.LRScheduler, per_batch: bool) -> None:
        self.scheduler = scheduler
        self.per_batch = per_batch

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if not self.per_batch:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


SCHEDULES: Registry[Callable[[torch.optim.Optimizer, ScheduleSpec], Schedule]] = Registry("lr_schedule")


@SCHEDULES.register("step")
def _step(optimizer: torch.optim.Optimizer, spec: ScheduleSpec) -> Schedule:
    return Schedule(
        torch.optim.lr_scheduler.StepLR(optimizer, step_size=spec.lr_step, gamma=spec.lr_gamma),
        per_batch=False,
    )


def warmup_factor(step: int, spec: ScheduleSpec, decay: str) -> float:
    """The rate's factor after `step` optimiser steps: warm-up from 1/w to 1, then `decay` to 0 at the end.

    Step 0 already trains at 1/w of the rate (not 0, which would waste the first batch)."""
    total = spec.total_steps
    warm = round(spec.warmup * total)
    if step < warm:
        return (step + 1) / warm
    left = max(1, total - warm)
    done = min(1.0, (step - warm) / left)
    return 1.0 - done if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))


def _warmup_then(decay: str) -> Callable[[torch.optim.Optimizer, ScheduleSpec], Schedule]:
    def build(optimizer: torch.optim.Optimizer, spec: ScheduleSpec) -> Schedule:
        def factor(step: int) -> float:  # a plain function: LambdaLR leaves it out of state_dict,
            return warmup_factor(step, spec, decay)  # so checkpoints load with weights_only=True

        return Schedule(torch.optim.lr_scheduler.LambdaLR(optimizer, factor), per_batch=True)

    return build


SCHEDULES.register("linear")(_warmup_then("linear"))
SCHEDULES.register("cosine")(_warmup_then("cosine"))


def build_schedule(name: str, optimizer: torch.optim.Optimizer, spec: ScheduleSpec) -> Schedule:
    """The registered schedule `name` over `optimizer`; an unknown name lists the choices."""
    if not 0 <= spec.warmup < 1:
        raise ValueError(f"warmup: {spec.warmup} not in [0, 1)")
    return SCHEDULES.get(name)(optimizer, spec)
