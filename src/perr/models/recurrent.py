"""Stage 2 (eq. 2): M independent LSTMs, one per modality, run together.

The M LSTMs share nothing but their shape, so their weights are stacked `[M, 4H, I]` and the input
projection of every step of every modality is one batched matmul; the recurrence is one `baddbmm` per
step for all M at once (instead of M separate `nn.LSTM` calls). Gate order and parameter meaning follow
`nn.LSTM` (i, f, g, o; two biases), so `weights_of(m)` loads straight into an `nn.LSTM` (used by the tests).
Only h_T is returned: eq. 3/4 read the last hidden state alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GroupedLSTM(nn.Module):
    def __init__(self, groups: int, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.groups, self.input_size, self.hidden_size = groups, input_size, hidden_size
        g4 = 4 * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(groups, g4, input_size))
        self.weight_hh = nn.Parameter(torch.empty(groups, g4, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(groups, g4))
        self.bias_hh = nn.Parameter(torch.empty(groups, g4))
        bound = 1.0 / math.sqrt(hidden_size)  # nn.LSTM's init
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, T, M, I] -> h_T: [B, M, H] (zero initial state)."""
        b, t, m, i = x.shape
        hs = self.hidden_size
        # [M, B*T, I] @ [M, I, 4H] + (b_ih + b_hh) -> [M, B, T, 4H]
        xm = x.permute(2, 0, 1, 3).reshape(m, b * t, i)
        bias = (self.bias_ih + self.bias_hh).unsqueeze(1)
        gx = torch.baddbmm(bias, xm, self.weight_ih.transpose(1, 2)).view(m, b, t, 4 * hs)
        w_hh = self.weight_hh.transpose(1, 2)  # [M, H, 4H]
        h = x.new_zeros(m, b, hs)
        c = x.new_zeros(m, b, hs)
        for step in range(t):
            gates = torch.baddbmm(gx[:, :, step], h, w_hh)
            ifo = torch.sigmoid(gates)
            g = torch.tanh(gates[..., 2 * hs : 3 * hs])
            c = ifo[..., hs : 2 * hs] * c + ifo[..., :hs] * g
            h = ifo[..., 3 * hs :] * torch.tanh(c)
        return h.transpose(0, 1)

    def weights_of(self, group: int) -> dict[str, Tensor]:
        """Group `group`'s weights as an `nn.LSTM` (one layer) state dict."""
        return {
            "weight_ih_l0": self.weight_ih[group],
            "weight_hh_l0": self.weight_hh[group],
            "bias_ih_l0": self.bias_ih[group],
            "bias_hh_l0": self.bias_hh[group],
        }
