"""The CPU speed-ups of the training loop behind one object, chosen per device in one place.

A model stays plain PyTorch. :meth:`CpuHelpers.attach` routes two things of it through helper threads
while perr trains it, and :meth:`CpuHelpers.detach` puts them back:

- every `nn.Dropout` module (not in-place) draws its mask from a :class:`~perr.train.cpu.masks.MaskPlan`,
  drawn one step ahead by a helper thread (`masks`);
- every module whose `forward` takes a `map_branches` argument (independent branches, like the
  stage-2 LSTMs of perr.models.recurrent) gets a :class:`~perr.train.cpu.branches.BranchPool`'s, which
  runs half of the branches on a second thread (`branches`).

Results are bit-identical with the helpers on or off (tests/test_train.py); only the time differs.
A model that calls `F.dropout` itself (or uses `nn.TransformerEncoderLayer`, which does) still trains:
its extra draws from the generator show, and the plan then turns itself off, so that model simply
draws its masks in the step. To get the speed-up, give each dropout its own `nn.Dropout` module; to run
independent sub-networks on two threads, give the module holding them a `branch_count` and a
`forward(..., map_branches=perr.models.recurrent.one_after_another)` that runs them through it.

Helper threads only pay where they find a core free. `--set cpu_helpers=auto` (the default) runs them
unless other processes already keep every core busy when training starts (load average ≥ physical
cores; measurements in docs/performance.md); `on` runs them anyway, `off` never. On a GPU they are
always off.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perr.machine import idle_priority_supported, physical_cores
from perr.train.cpu.branches import BranchPool
from perr.train.cpu.masks import MaskPlan
from perr.train.threads import spare_core


def mask_helper(device: torch.device) -> str | None:
    """How dropout masks are drawn ahead on `device`: "core" when a core is spare for the helper;
    "background" when torch's threads fill every core but the OS can run the helper at idle priority
    (it then fills the pool's idle moments); None otherwise (on a GPU the masks are drawn there, and
    cheaply)."""
    if device.type != "cpu":
        return None
    if spare_core(device):
        return "core"
    return "background" if idle_priority_supported() else None


def runs_branches_in_parallel(device: torch.device) -> bool:
    """Whether a model's branches run on a BranchPool's two threads: on CPU, when a core is spare for the
    second thread or when torch's threads can be split between the two."""
    return device.type == "cpu" and (spare_core(device) or torch.get_num_threads() >= 2)


def cores_busy() -> bool:
    """Whether other work already keeps every physical core busy (1-minute load average ≥ cores)."""
    return os.getloadavg()[0] >= physical_cores()


def _takes_branch_map(module: nn.Module) -> bool:
    try:
        return "map_branches" in inspect.signature(type(module).forward).parameters
    except (TypeError, ValueError):
        return False


class CpuHelpers:
    """The helper threads of one training run: dropout masks drawn ahead (`masks`) and independent
    branches on two threads (`branches`); either may be None. :meth:`choose` picks them for a device
    and the torch thread count already set; the training loop calls :meth:`epoch` and :meth:`step`."""

    def __init__(self, masks: MaskPlan | None = None, branches: BranchPool | None = None) -> None:
        self.masks = masks
        self.branches = branches
        self._attached: list[nn.Module] = []

    @classmethod
    def choose(cls, device: torch.device, mode: str = "on") -> CpuHelpers:
        """The helpers worth running on `device` at torch's current thread count: none off the CPU or for
        `mode` "off"; for "auto", none either while the machine is busy (`cores_busy`)."""
        if mode == "off" or (mode == "auto" and cores_busy()):
            return cls()
        helper = mask_helper(device)
        masks = MaskPlan(background=helper == "background") if helper is not None else None
        return cls(masks, BranchPool() if runs_branches_in_parallel(device) else None)

    def describe(self) -> dict[str, object]:
        """What runs, for records and benchmarks: the masks' helper ("core", "background" or None) and
        whether branches run on two threads."""
        masks = None if self.masks is None else ("background" if self.masks.background else "core")
        return {"dropout_masks": masks, "branches_on_two_threads": self.branches is not None}

    # -- the model ------------------------------------------------------------------------------
    def attach(self, model: nn.Module) -> CpuHelpers:
        """Route `model`'s `nn.Dropout` modules and branch modules through the helpers (its modules,
        parameters and state_dict stay as they are); returns the helpers."""
        for module in model.modules():
            if self.masks is not None and type(module) is nn.Dropout and not module.inplace:
                module.forward = functools.partial(_planned_dropout, self.masks, module)
                self._attached.append(module)
            elif self.branches is not None and _takes_branch_map(module):
                module.forward = functools.partial(
                    type(module).forward, module, map_branches=self.branches.map_branches
                )
                self._attached.append(module)
        return self

    def detach(self) -> None:
        """Undo :meth:`attach`: the modules run their own forward again."""
        for module in self._attached:
            del module.forward
        self._attached = []

    # -- the loop -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def epoch(self, batch_sizes: Sequence[int]) -> Iterator[None]:
        """Around one epoch whose steps have these batch sizes, in order."""
        with self.masks.epoch(batch_sizes) if self.masks is not None else contextlib.nullcontext():
            yield

    def step(self, batch_size: int) -> contextlib.AbstractContextManager:
        """Around one step's forward and backward."""
        return self.masks.step(batch_size) if self.masks is not None else contextlib.nullcontext()

    def close(self) -> None:
        """Detach from the model and stop the branch thread (if it started)."""
        self.detach()
        if self.branches is not None:
            self.branches.close()


def _planned_dropout(plan: MaskPlan, module: nn.Dropout, x: Tensor) -> Tensor:
    """`nn.Dropout.forward` with the mask taken from `plan` (the same mask F.dropout would draw)."""
    if not module.training:
        return F.dropout(x, module.p, False)
    return plan.dropout(x, module.p)
