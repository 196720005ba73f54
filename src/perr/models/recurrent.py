"""Stage 2 (eq. 2): M independent LSTMs, one per modality.

Each modality runs its own `nn.LSTM` over all T steps, which on CPU is one fused oneDNN (mkldnn) RNN
kernel for forward and one for backward, and cuDNN on GPU. Measured alternative (during development,
2026-11): stacking the M weight sets and running one grouped recurrence
(`baddbmm` per step for all M) is *slower* on CPU (≈600 ms vs ≈390 ms fwd+bwd at B=16, T=32, I=512,
H=256, 1 thread), because autograd then differentiates T small per-step matmuls instead of the
kernel's batched weight gradients. Only h_T is returned: eq. 3/4 read the last hidden state alone.

The M LSTMs are independent branches. The module says so in two plain ways that any model can copy:
`branch_count` (how many), and a `map_branches` argument of `forward` (how to run them: one after
another by default). perr's CPU helpers (perr.train.cpu) pass one that runs them on two threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

#: map_branches(fn, modules, inputs) -> [fn(modules[i], inputs[i]) for every i]
BranchMap = Callable[
    [Callable[[nn.Module, Tensor], Tensor], Sequence[nn.Module], Sequence[Tensor]], list[Tensor]
]


def one_after_another(
    fn: Callable[[nn.Module, Tensor], Tensor], modules: Sequence[nn.Module], inputs: Sequence[Tensor]
) -> list[Tensor]:
    """The plain way to run independent branches: in order, on the calling thread."""
    return [fn(m, x) for m, x in zip(modules, inputs, strict=True)]


def _last_hidden(lstm: nn.Module, x: Tensor) -> Tensor:
    return lstm(x)[1][0][0]


class ModalityLSTMs(nn.Module):
    def __init__(self, groups: int, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.lstms = nn.ModuleList(nn.LSTM(input_size, hidden_size, batch_first=True) for _ in range(groups))

    @property
    def branch_count(self) -> int:
        """Independent branches (they draw no random numbers), which `map_branches` may run in parallel."""
        return len(self.lstms)

    def forward(self, gs: list[Tensor], map_branches: BranchMap = one_after_another) -> Tensor:
        """gs: M tensors [B, T, I], one per modality -> h_T: [B, M, H] (zero initial state)."""
        if len(gs) != len(self.lstms):
            raise ValueError(f"{len(gs)} inputs for {len(self.lstms)} LSTMs")
        return torch.stack(map_branches(_last_hidden, list(self.lstms), gs), dim=1)
