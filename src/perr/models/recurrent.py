"""Stage 2 (eq. 2): M independent LSTMs, one per modality.

Each modality runs its own `nn.LSTM` over all T steps, which on CPU is one fused oneDNN (mkldnn) RNN
kernel for forward and one for backward, and cuDNN on GPU. Measured alternative (during development,
2026-11): stacking the M weight sets and running one grouped recurrence
(`baddbmm` per step for all M) is *slower* on CPU (≈600 ms vs ≈390 ms fwd+bwd at B=16, T=32, I=512,
H=256, 1 thread), because autograd then differentiates T small per-step matmuls instead of the
kernel's batched weight gradients. Only h_T is returned: eq. 3/4 read the last hidden state alone.
Where a core is spare (perr.models.branches), the M kernels run on two threads, forward and backward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from perr.models.branches import installed_pool, run_branches


def _last_hidden(lstm: nn.Module, x: Tensor) -> Tensor:
    return lstm(x)[1][0][0]


class ModalityLSTMs(nn.Module):
    def __init__(self, groups: int, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.lstms = nn.ModuleList(nn.LSTM(input_size, hidden_size, batch_first=True) for _ in range(groups))

    @property
    def branch_count(self) -> int:
        """Independent branches a BranchPool can split across two threads (perr.models.branches)."""
        return len(self.lstms)

    def forward(self, gs: list[Tensor]) -> Tensor:
        """gs: M tensors [B, T, I], one per modality -> h_T: [B, M, H] (zero initial state)."""
        if len(gs) != len(self.lstms):
            raise ValueError(f"{len(gs)} inputs for {len(self.lstms)} LSTMs")
        pool = installed_pool(gs[0])
        if pool is None:
            return torch.stack([_last_hidden(lstm, x) for lstm, x in zip(self.lstms, gs, strict=True)], dim=1)
        return torch.stack(run_branches(pool, list(self.lstms), _last_hidden, gs), dim=1)
