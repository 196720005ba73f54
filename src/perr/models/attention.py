"""The four attention blocks of Table 3, shared by the plain and the SMTA models.

Every block maps a set of K tokens per item, `z: [N, K, d]`, to fused tokens and the attention matrix:

    block(z, key_valid, n_out) -> (z_tilde [N, n_out, d], attn [N, K, K])

`key_valid [N, K]` (bool) marks tokens that may be attended to (a masked modality at step t is not a key).
Callers guarantee at least one valid key per row (see `guard_keys`). Only the first `n_out` query rows of
the output are computed: SMTA discards the h̃ row of Z̃_t, so it is never built (the attention matrix still
has all K rows). N is B·T: the blocks run once over every step of every clip.

Parameter names of `multihead` and `transformer` match `nn.MultiheadAttention` and
`nn.TransformerEncoderLayer`, so their weights load into the torch modules (the tests use that).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perr.registry import Registry

ATTENTION: Registry[type[nn.Module]] = Registry("attention block")


def guard_keys(key_valid: Tensor) -> Tensor:
    """Rows with no valid key (every token masked) attend to all tokens, which are then all zeros:
    the output stays finite and independent of the masked values instead of NaN."""
    return key_valid | ~key_valid.any(dim=-1, keepdim=True)


def masked_softmax(scores: Tensor, key_valid: Tensor) -> Tensor:
    """Softmax over the last axis with invalid keys at -inf. `key_valid` broadcasts to scores' shape.

    On CPU the key axis is moved to the front first: torch's CPU softmax walks a short last axis row by
    row (K ≤ 6 keys here), but vectorises across the other elements when the axis leads. For the d-64
    step's [512, 4, 6, 6] scores, forward and backward take 1.1 ms on one thread against 2.8 ms; the
    values agree to float rounding (≤ 1e-7). The result is made contiguous again (0.1 ms of the 1.1),
    so what follows, dropout masks included, sees the layout it always did."""
    masked = scores.masked_fill(~key_valid, float("-inf"))
    if masked.device.type != "cpu":
        return masked.softmax(dim=-1)
    return masked.movedim(-1, 0).softmax(dim=0).movedim(0, -1).contiguous()


@ATTENTION.register("dot")
class DotProductAttention(nn.Module):
    """Embedded dot product as in actor-relation graphs (Wu et al. 2019):
    A_ij = softmax_j(θ(z_i)·φ(z_j) / √d), Z̃ = A·Z (the paper's Z̃_t = A_t Z_t, no value projection)."""

    def __init__(self, d_model: int, heads: int = 4, ff_dim: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.theta = nn.Linear(d_model, d_model)
        self.phi = nn.Linear(d_model, d_model)
        self.scale = 1.0 / math.sqrt(d_model)

    def forward(self, z: Tensor, key_valid: Tensor, n_out: int | None = None) -> tuple[Tensor, Tensor]:
        n_out = z.shape[1] if n_out is None else n_out
        scores = torch.bmm(self.theta(z), self.phi(z).transpose(1, 2)) * self.scale
        attn = masked_softmax(scores, key_valid[:, None, :])
        return torch.bmm(attn[:, :n_out], z), attn


@ATTENTION.register("nonlocal")
class NonLocalAttention(nn.Module):
    """Non-local block, embedded-Gaussian form (Wang et al. 2018) with its residual:
    y_i = Σ_j softmax_j(θ(z_i)·φ(z_j)) g(z_j),  z̃_i = W_z y_i + z_i; inner width d/2 as in the paper.
    (The original's BatchNorm on W_z is dropped: tokens of different modalities are not a batch.)"""

    def __init__(self, d_model: int, heads: int = 4, ff_dim: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        inner = max(1, d_model // 2)
        self.theta = nn.Linear(d_model, inner)
        self.phi = nn.Linear(d_model, inner)
        self.g = nn.Linear(d_model, inner)
        self.w_z = nn.Linear(inner, d_model)

    def forward(self, z: Tensor, key_valid: Tensor, n_out: int | None = None) -> tuple[Tensor, Tensor]:
        n_out = z.shape[1] if n_out is None else n_out
        scores = torch.bmm(self.theta(z), self.phi(z).transpose(1, 2))
        attn = masked_softmax(scores, key_valid[:, None, :])
        y = torch.bmm(attn[:, :n_out], self.g(z))
        return self.w_z(y) + z[:, :n_out], attn


class _MultiheadCore(nn.Module):
    """Multi-head attention with `nn.MultiheadAttention`'s parameter layout, returning head-averaged
    weights. Written out (not `nn.MultiheadAttention`) to compute only the needed query rows' outputs.
    The explicit softmax gives A_t for free; with K ≤ 6 tokens it costs ~20 ms fwd+bwd per paper-sized
    step (1 CPU thread) against ~14 ms for `F.scaled_dot_product_attention`, which returns no weights —
    about 1% of a training step, so the fused kernel is not worth a second pass for A_t."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attn_dropout = nn.Dropout(dropout)  # on the attention weights, as nn.MultiheadAttention
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, z: Tensor, key_valid: Tensor, n_out: int) -> tuple[Tensor, Tensor]:
        n, k, d = z.shape
        h, dh = self.heads, d // self.heads
        qkv = F.linear(z, self.in_proj_weight, self.in_proj_bias).view(n, k, 3, h, dh)
        q, kk, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, H, K, dh]
        scores = torch.matmul(q, kk.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
        attn = masked_softmax(scores, key_valid[:, None, None, :])  # [N, H, K, K]
        probs = self.attn_dropout(attn[:, :, :n_out])
        out = torch.matmul(probs, v).transpose(1, 2).reshape(n, n_out, d)
        return self.out_proj(out), attn.mean(dim=1)


@ATTENTION.register("multihead")
class MultiheadAttention(_MultiheadCore):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), `nn.MultiheadAttention` semantics."""

    def __init__(self, d_model: int, heads: int = 4, ff_dim: int = 512, dropout: float = 0.1) -> None:
        super().__init__(d_model, heads, dropout)

    def forward(self, z: Tensor, key_valid: Tensor, n_out: int | None = None) -> tuple[Tensor, Tensor]:
        return super().forward(z, key_valid, z.shape[1] if n_out is None else n_out)


@ATTENTION.register("transformer")
class TransformerEncoderBlock(nn.Module):
    """One post-norm transformer encoder layer, same maths and parameter names as
    `nn.TransformerEncoderLayer(d, heads, ff_dim, dropout, batch_first=True)` (ReLU)."""

    def __init__(self, d_model: int, heads: int = 4, ff_dim: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = _MultiheadCore(d_model, heads, dropout)
        self.linear1 = nn.Linear(d_model, ff_dim)
        self.linear2 = nn.Linear(ff_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, z: Tensor, key_valid: Tensor, n_out: int | None = None) -> tuple[Tensor, Tensor]:
        n_out = z.shape[1] if n_out is None else n_out
        sa, attn = self.self_attn(z, key_valid, n_out)
        x = self.norm1(z[:, :n_out] + self.dropout1(sa))
        x = self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))
        return x, attn
