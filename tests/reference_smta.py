"""A literal, step-by-step reference of the paper's models (§4), for tests and benchmarks/train_speed.py.

Written to be obviously the paper, not fast: an `nn.LSTMCell` loop over t for eq. 1, the attention block
applied per step (`nn.MultiheadAttention` / `nn.TransformerEncoderLayer` for the torch kinds, the dot-product
and non-local formulas written out), and one `nn.LSTM` per modality for eq. 2. `ReferenceModel.from_fast`
copies the weights of a `perr.models.FusionModel`, so outputs and gradients can be compared one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perr.models import FusionModel, ModelOutput


class _DotStep(nn.Module):
    """A_t = softmax(θ(Z_t) φ(Z_t)ᵀ / √d) over valid keys; Z̃_t = A_t Z_t."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.theta, self.phi = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, z: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.theta(z) @ self.phi(z).transpose(1, 2) / math.sqrt(z.shape[-1])
        a = torch.softmax(scores.masked_fill(~key_valid[:, None, :], float("-inf")), dim=-1)
        return a @ z, a


class _NonLocalStep(nn.Module):
    """Non-local block, embedded Gaussian: Z̃ = W_z(softmax(θ φᵀ) g(Z)) + Z."""

    def __init__(self, d: int) -> None:
        super().__init__()
        inner = max(1, d // 2)
        self.theta, self.phi, self.g = nn.Linear(d, inner), nn.Linear(d, inner), nn.Linear(d, inner)
        self.w_z = nn.Linear(inner, d)

    def forward(self, z: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.theta(z) @ self.phi(z).transpose(1, 2)
        a = torch.softmax(scores.masked_fill(~key_valid[:, None, :], float("-inf")), dim=-1)
        return self.w_z(a @ self.g(z)) + z, a


class _MultiheadStep(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)

    def forward(self, z: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor]:
        out, a = self.mha(z, z, z, key_padding_mask=~key_valid, need_weights=True, average_attn_weights=True)
        return out, a


class _TransformerStep(nn.Module):
    def __init__(self, d: int, heads: int, ff_dim: int, dropout: float, need_attention: bool) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d, heads, ff_dim, dropout, batch_first=True)
        self.need_attention = need_attention

    def forward(self, z: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor | None]:
        out = self.layer(z, src_key_padding_mask=~key_valid)
        a = None
        if self.need_attention:  # the layer does not return A_t; ask its attention for it (extra work)
            sa = self.layer.self_attn
            _, a = sa(z, z, z, key_padding_mask=~key_valid, need_weights=True, average_attn_weights=True)
        return out, a


class ReferenceModel(nn.Module):
    """Step-by-step twin of `FusionModel(args, stage1, attention)`."""

    def __init__(self, fast: FusionModel, need_attention: bool = True) -> None:
        super().__init__()
        args = fast.args
        d, h, c = args.d_model, args.stage2_hidden, args.n_classes
        self.args, self.stage1, self.modalities = args, fast.stage1, list(args.input_dims)
        self.proj = nn.ModuleDict({k: nn.Linear(v, d) for k, v in args.input_dims.items()})
        self.drop = nn.Dropout(args.dropout)
        self.cell = nn.LSTMCell(d, d) if fast.stage1 != "plain" else None
        kind = None if fast.attn is None else type(fast.attn).__name__
        self.attn = {
            None: lambda: None,
            "DotProductAttention": lambda: _DotStep(d),
            "NonLocalAttention": lambda: _NonLocalStep(d),
            "MultiheadAttention": lambda: _MultiheadStep(d, args.heads, args.dropout),
            "TransformerEncoderBlock": lambda: _TransformerStep(
                d, args.heads, args.ff_dim, args.dropout, need_attention
            ),
        }[kind]()
        g_dim = d if fast.stage1 == "plain" else 2 * d
        self.lstm2 = nn.ModuleList(nn.LSTM(g_dim, h, batch_first=True) for _ in self.modalities)  # eq. 2
        self.head = nn.Linear(h, c)
        self.aux = nn.ModuleList(nn.Linear(h, c) for _ in self.modalities)
        like = next(fast.parameters())
        self.to(device=like.device, dtype=like.dtype)  # before loading, so float64 weights stay float64
        self.load_state_dict(to_reference_names(fast, dict(fast.state_dict())))

    def forward(self, x: dict[str, Tensor], mask: dict[str, Tensor]) -> ModelOutput:
        names, m = self.modalities, len(self.modalities)
        b, t_len = x[names[0]].shape[:2]
        valid = torch.stack([mask[k].bool() for k in names], dim=-1)  # [B, T, M]
        d = self.args.d_model
        h = x[names[0]].new_zeros(b, d)
        c = x[names[0]].new_zeros(b, d)
        g_seq: list[list[Tensor]] = [[] for _ in names]
        attn_seq = []
        for t in range(t_len):
            f_t = [self.drop(self.proj[k](x[k][:, t]) * valid[:, t, i, None]) for i, k in enumerate(names)]
            if self.cell is not None:
                h, c = self.cell(sum(f_t), (h, c))  # eq. 1
            if self.attn is None:  # lstm baseline: g^m = [h̃, f^m]
                g_t = [torch.cat([h, f], dim=-1) for f in f_t]
            else:
                tokens = list(f_t)
                keys = valid[:, t]
                if self.stage1 == "smta":
                    tokens.append(h)  # Z_t = [f^1 … f^M, h̃_t]
                    keys = torch.cat([keys, keys.new_ones(b, 1)], dim=1)
                else:  # a step with every modality missing attends to all (zero) tokens
                    keys = keys | ~keys.any(dim=1, keepdim=True)
                zt, a = self.attn(torch.stack(tokens, dim=1), keys)
                attn_seq.append(a)
                g_t = [
                    torch.cat([h, zt[:, i]], dim=-1) if self.stage1 == "smta" else zt[:, i] for i in range(m)
                ]
            for i in range(m):
                g_seq[i].append(g_t[i])
        h_last = []
        for i in range(m):  # eq. 2, one LSTM per modality
            _, (h_n, _) = self.lstm2[i](torch.stack(g_seq[i], dim=1))
            h_last.append(h_n[0])
        clip_present = valid.any(dim=1)
        fused = sum(h_last[i] * clip_present[:, i, None] for i in range(m))
        aux = torch.stack([self.aux[i](h_last[i]) for i in range(m)], dim=1)
        attn = None
        if attn_seq and attn_seq[0] is not None:
            attn = torch.stack(attn_seq, dim=1)
        return ModelOutput(self.head(fused), aux, attn)

    def loss(self, out: ModelOutput, y: Tensor, mask: dict[str, Tensor]) -> Tensor:
        """Eq. 5 written per term: CE(ŷ) + Σ_m CE(ŷ^m), skipping modalities absent from the clip."""
        total = F.cross_entropy(out.logits, y, reduction="none")
        for i, k in enumerate(self.modalities):
            term = F.cross_entropy(out.aux_logits[:, i], y, reduction="none")
            total = total + self.args.aux_weight * term * mask[k].bool().any(dim=1)
        return total.mean()


def to_reference_names(fast: FusionModel, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename (and split) a FusionModel state dict — or a dict of its gradients — to ReferenceModel's names."""
    out: dict[str, Tensor] = {}
    m = len(fast.modalities)
    torch_attn = {"MultiheadAttention": "attn.mha.", "TransformerEncoderBlock": "attn.layer."}
    attn_prefix = "attn." if fast.attn is None else torch_attn.get(type(fast.attn).__name__, "attn.")
    for name, v in tensors.items():
        if name.startswith("lstm1."):
            out["cell." + name.removeprefix("lstm1.").removesuffix("_l0")] = v
        elif name.startswith("attn."):
            out[attn_prefix + name.removeprefix("attn.")] = v
        elif name.startswith("lstm2.lstms."):
            out["lstm2." + name.removeprefix("lstm2.lstms.")] = v
        elif name == "aux_head_weight":
            for i in range(m):
                out[f"aux.{i}.weight"] = v[i]
        elif name == "aux_head_bias":
            for i in range(m):
                out[f"aux.{i}.bias"] = v[i]
        else:
            out[name] = v
    return out
