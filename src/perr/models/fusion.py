"""The nine Table-3 models: one two-stage fusion network parametrised by its stage 1.

    stage 1 = "lstm"   h̃ = LSTM(Σ_m f^m)                                   g^m = [h̃, f^m]
              "plain"  Z̃_t = Attn([f_t^1 … f_t^M])                         g^m = Z̃^m
              "smta"   h̃ = LSTM(Σ_m f^m) (eq. 1), Z̃_t = Attn([f_t^1 … f_t^M, h̃_t])  g^m = [h̃, Z̃^m]
    stage 2 = one LSTM per modality over g^m (eq. 2); ŷ = FC(Σ_m h_T^m) (eq. 3), ŷ^m = FC_m(h_T^m) (eq. 4)

Why it is fast: eq. 1's LSTM input Σ_m f_t^m does not depend on the attention output, so stage 1 is one
fused `nn.LSTM` call over the whole sequence, and the attention then runs once over all B·T steps; the M
stage-2 LSTMs are M fused `nn.LSTM` kernels (see recurrent.py for why not one grouped recurrence). tests/reference_smta.py holds the literal
step-by-step eq. 1 and the tests prove both agree (outputs and gradients).

Masks: f_t^m = 0 where modality m is missing at step t (the projection's bias does not leak); a missing
token is not an attention key (h̃ always is; an all-missing step of a plain model attends uniformly to its
zero tokens). The stage-2 LSTMs read every step and the heads use h_T, the state after the last step T
(sequences are fixed-length with zeros where missing, as in the paper), not the last valid step. A
modality missing for the whole clip is left out of Σ_m h_T^m and its auxiliary loss term is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perr.models.args import ModelArgs, ModelOutput
from perr.models.attention import ATTENTION, guard_keys
from perr.models.recurrent import ModalityLSTMs
from perr.models.text_encoder import TextFinetuneModel
from perr.registry import Registry

STAGE1 = ("lstm", "plain", "smta")


class FusionModel(nn.Module):
    """Two-stage PERR model (paper §4). `stage1` in STAGE1; `attention` a key of ATTENTION (not for lstm)."""

    def __init__(self, args: ModelArgs, stage1: str, attention: str | None) -> None:
        super().__init__()
        if stage1 not in STAGE1:
            raise ValueError(f"stage1 {stage1!r}; choose one of {STAGE1}")
        if (attention is None) != (stage1 == "lstm"):
            raise ValueError(f"stage1 {stage1!r} with attention {attention!r}: only 'lstm' has no attention")
        self.args = args
        self.stage1 = stage1
        self.modalities = list(args.input_dims)
        d, m = args.d_model, len(self.modalities)
        self.proj = nn.ModuleDict({name: nn.Linear(dim, d) for name, dim in args.input_dims.items()})
        self.drop = nn.Dropout(args.dropout)
        self.lstm1 = nn.LSTM(d, d, batch_first=True) if stage1 != "plain" else None
        self.attn = (
            ATTENTION.get(attention)(d, heads=args.heads, ff_dim=args.ff_dim, dropout=args.dropout)
            if attention
            else None
        )
        g_dim = d if stage1 == "plain" else 2 * d
        self.lstm2 = ModalityLSTMs(m, g_dim, args.stage2_hidden)
        self.head = nn.Linear(args.stage2_hidden, args.n_classes)
        self.aux_head_weight = nn.Parameter(torch.empty(m, args.n_classes, args.stage2_hidden))
        self.aux_head_bias = nn.Parameter(torch.empty(m, args.n_classes))
        bound = 1.0 / args.stage2_hidden**0.5  # nn.Linear-like init per modality head
        nn.init.uniform_(self.aux_head_weight, -bound, bound)
        nn.init.uniform_(self.aux_head_bias, -bound, bound)
        self.joint_head = nn.Linear(args.stage2_hidden, args.joint_classes) if args.joint_classes else None

    # -- inputs ---------------------------------------------------------------------------------
    def stack_mask(self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None) -> Tensor:
        """Masks as one bool tensor [B, T, M] in modality order (None = everything present)."""
        first = x[self.modalities[0]]
        b, t = first.shape[:2]
        if mask is None:
            return torch.ones(b, t, len(self.modalities), dtype=torch.bool, device=first.device)
        missing = [k for k in self.modalities if k not in mask]
        if missing:
            raise ValueError(f"mask lacks modality(ies) {missing}; expected {self.modalities}")
        out = []
        for k in self.modalities:
            mk = mask[k]
            if tuple(mk.shape) != (b, t):
                raise ValueError(f"mask[{k!r}] has shape {tuple(mk.shape)}, expected {(b, t)}")
            out.append(mk.bool() if mk.dtype != torch.bool else mk)
        return torch.stack(out, dim=-1)

    def project(self, x: Mapping[str, Tensor], present: Tensor) -> Tensor:
        """f_t^m = W_m x_t^m + b_m where present, else 0: [B, T, M, d]."""
        b, t = x[self.modalities[0]].shape[:2]
        fs = []
        for k in self.modalities:
            xk = x[k]
            want = (b, t, self.args.input_dims[k])
            if tuple(xk.shape) != want:
                raise ValueError(f"input[{k!r}] has shape {tuple(xk.shape)}, expected {want}")
            fs.append(self.proj[k](xk))
        f = torch.stack(fs, dim=2) * present.unsqueeze(-1).to(fs[0].dtype)
        return self.drop(f)

    # -- the two stages ---------------------------------------------------------------------------
    def fuse(self, f: Tensor, present: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """Stage 1 over all steps at once: g^m [B, T, g_dim] for each m, and A [B, T, K, K] (None for lstm)."""
        b, t, m, d = f.shape
        if self.stage1 == "lstm":
            h, _ = self.lstm1(f.sum(dim=2))
            return [torch.cat([h, fm], dim=-1) for fm in f.unbind(2)], None
        if self.stage1 == "plain":
            z, valid = f.reshape(b * t, m, d), guard_keys(present.reshape(b * t, m))
            zt, attn = self.attn(z, valid, m)
            return list(zt.view(b, t, m, d).unbind(2)), attn.view(b, t, m, m)
        h, _ = self.lstm1(f.sum(dim=2))  # eq. 1 for every t in one fused call
        z = torch.cat([f, h.unsqueeze(2)], dim=2).reshape(b * t, m + 1, d)
        valid = torch.cat([present, present.new_ones(b, t, 1)], dim=2).reshape(b * t, m + 1)
        zt, attn = self.attn(z, valid, m)  # only Z̃^1..Z̃^M are needed
        g = [torch.cat([h, zm], dim=-1) for zm in zt.view(b, t, m, d).unbind(2)]
        return g, attn.view(b, t, m + 1, m + 1)

    def heads(self, h_last: Tensor, clip_present: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Fused head over the modalities present in the clip, the M auxiliary heads, and the joint
        task's head on the same fused state (None without a joint task)."""
        fused = (h_last * clip_present.unsqueeze(-1).to(h_last.dtype)).sum(dim=1)
        aux = torch.einsum("bmh,mch->bmc", h_last, self.aux_head_weight) + self.aux_head_bias
        joint = self.joint_head(fused) if self.joint_head is not None else None
        return self.head(fused), aux, joint

    def forward(self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        """x: modality -> [B, T, d_m]; mask: modality -> [B, T] (bool or 0/1, 1 = present). Extra keys
        in x/mask (e.g. a dropped modality) are ignored."""
        missing = [k for k in self.modalities if k not in x]
        if missing:
            raise ValueError(f"input lacks modality(ies) {missing}; expected {self.modalities}")
        present = self.stack_mask(x, mask)
        f = self.project(x, present)
        g, attn = self.fuse(f, present)
        h_last = self.lstm2(g)
        logits, aux, joint = self.heads(h_last, present.any(dim=1))
        return ModelOutput(
            _widen(logits),
            _widen(aux),
            None if attn is None else _widen(attn),
            None if joint is None else _widen(joint),
        )

    def loss(self, out: ModelOutput, y: Tensor, mask: Mapping[str, Tensor] | Tensor | None = None) -> Tensor:
        """Eq. 5 per clip, averaged over the batch: CE(ŷ) + aux_weight · Σ_m CE(ŷ^m), where the sum
        skips modalities that are missing for the whole clip. `mask` is the forward's mask dict, or an
        already-stacked [B, T, M] / [B, M] bool tensor; None means every modality is present. With
        args.label_smoothing ε, every CE is against (1 − ε)·one-hot + ε/C.

        y [B] holds the task's classes; y [B, 2] (training with a joint task) adds the joint task's in
        column 1, and the loss adds joint_weight · CE(ŷ', y'). Evaluation passes y [B]: the task's loss."""
        joint_y = None
        if y.dim() == 2:
            if out.joint_logits is None:
                raise ValueError(
                    "targets for a joint task, but the model has no joint head (joint_classes = 0)"
                )
            y, joint_y = y[:, 0], y[:, 1]
        b, m, c = out.aux_logits.shape
        smooth = self.args.label_smoothing
        main = F.cross_entropy(out.logits, y, reduction="none", label_smoothing=smooth)
        aux = F.cross_entropy(
            out.aux_logits.reshape(b * m, c), y.repeat_interleave(m), reduction="none", label_smoothing=smooth
        )
        aux = aux.view(b, m)
        if mask is not None:
            if isinstance(mask, Tensor):
                clip_present = mask.bool() if mask.dim() == 2 else mask.bool().any(dim=1)
            else:
                clip_present = torch.stack([mask[k].bool().any(dim=1) for k in self.modalities], dim=1)
            aux = aux * clip_present.to(aux.dtype)
        total = main + self.args.aux_weight * aux.sum(dim=1)
        if joint_y is not None:
            joint = F.cross_entropy(out.joint_logits, joint_y, reduction="none", label_smoothing=smooth)
            total = total + self.args.joint_weight * joint
        return total.mean()


def _widen(t: Tensor) -> Tensor:
    """bf16/fp16 outputs (under the caller's autocast, TrainConfig.bf16) back to float32 (the loss and metrics run in float32); float64 stays."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


MODELS: Registry = Registry("model")
# Table-3 order; one entry per row, all built by FusionModel.
MODELS.register("lstm")(lambda args: FusionModel(args, "lstm", None))
for _kind in ("plain", "smta"):
    for _att in ATTENTION.names():
        _key = _att if _kind == "plain" else f"smta-{_att}"
        MODELS.register(_key)(lambda args, _k=_kind, _a=_att: FusionModel(args, _k, _a))


def build_model(args: ModelArgs) -> nn.Module:
    """Build the registered model `args.name` (fresh weights); pair-cross registers itself from pair.py.
    With `args.text_modalities` (text_encoder=finetune) it is wrapped in a TextFinetuneModel."""
    if args.text_modalities:
        return TextFinetuneModel(args, lambda inner: MODELS.get(inner.name)(inner))
    return MODELS.get(args.name)(args)
