"""PairCross (`pair-cross`): a pair-aware PERR model for the three open problems of the paper's §6.

SMTA fuses the two persons only implicitly (a sum into one LSTM, attention among modalities of one step),
never matches what is said with how the *other* person looks, and lets one modality dominate. PairCross
makes each of these explicit (equations in docs/models.md, numbered after the paper's eq. 1–5):

    (6)  f_t^m = μ_t^m δ^m (W_m x_t^m + b_m)        projection, mask μ, modality dropout δ (balance.py)
    (7)  ã_t = LN(a_t + X(a_t, {b_τ}))  b̃_t = LN(b_t + X(b_t, {a_τ}))       A→B and B→A over time
    (8)  c̃_t^m = LN(c_t^m + L(c_t^m, {a_τ} ∪ {b_τ}))                         words/sounds → faces of both
    (9)  Z̃_t = Attn([ã_t, b̃_t, c̃_t^1 …]),  u_t = mean over present m of Z̃_t^m   tokens of one step
    (10) h = TemporalBlock(u) over the steps where anything is present
    (11) z = [Σ_t α_t h_t, mean_t h_t, h_last]     α = masked softmax; h_last = last step with evidence
    (12) ŷ = FC(z),  ŷ^m = FC_m(mean_t f_t^m)      loss = eq. 5 with these heads

X and L are multi-head cross-attentions over time with a learned bias per relative offset τ - t
(PERR's cues come in neighbouring steps: a line, then the other person's reaction). X is shared by both
directions because the pair has no order. L's keys are both persons' steps, so its weights say whose
face the line at t is read against: the listener's. Every attention treats masked tokens as absent,
and steps with no evidence are never keys nor pooled, so a fully masked tail changes nothing.

Roles: person A/B are `person_a`/`person_b` (video) or `speaker`/`others` (dialogue); every other
modality is context (`background`, `audio`, `text`, `target`, ...). With a person dropped (Table 4)
the cross path (7) is skipped and the remaining person counts as context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from perr.models.args import ModelArgs, ModelOutput
from perr.models.attention import ATTENTION, guard_keys, masked_softmax
from perr.models.balance import modality_dropout
from perr.models.fusion import MODELS, FusionModel, _widen

#: (person A, person B) name pairs, tried in order.
PAIR_ROLES: tuple[tuple[str, str], ...] = (("person_a", "person_b"), ("speaker", "others"))


def pair_roles(modalities: list[str]) -> tuple[str, str] | None:
    """The (A, B) modality names of a pair present in `modalities`, or None."""
    for a, b in PAIR_ROLES:
        if a in modalities and b in modalities:
            return a, b
    return None


class TemporalAttention(nn.Module):
    """Multi-head attention over time with a learned per-head bias for each relative offset τ - t in
    [-max_offset, max_offset] (farther offsets share the end buckets). Keys/queries carry their step
    index, so one module serves self-attention over T steps and cross-attention over 2T person steps."""

    def __init__(self, d_model: int, heads: int, dropout: float, max_offset: int = 4) -> None:
        super().__init__()
        self.heads, self.max_offset = heads, max_offset
        self.attn_dropout = nn.Dropout(dropout)
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.rel_bias = nn.Parameter(torch.zeros(heads, 2 * max_offset + 1))

    def forward(
        self, q: Tensor, kv: Tensor, key_valid: Tensor, q_steps: Tensor, k_steps: Tensor
    ) -> tuple[Tensor, Tensor]:
        """q [N, Tq, d], kv [N, Tk, d], key_valid [N, Tk] bool (each row has a valid key: guard_keys),
        q_steps [Tq] / k_steps [Tk] step indices → (out [N, Tq, d], attention [N, Tq, Tk], heads averaged)."""
        n, tq, d = q.shape
        tk, h = kv.shape[1], self.heads
        dh = d // h
        qh = self.q(q).view(n, tq, h, dh).transpose(1, 2)
        k, v = self.kv(kv).view(n, tk, 2, h, dh).permute(2, 0, 3, 1, 4).unbind(0)
        offset = (k_steps[None, :] - q_steps[:, None]).clamp(-self.max_offset, self.max_offset)
        bias = self.rel_bias[:, offset + self.max_offset]  # [H, Tq, Tk]
        scores = torch.matmul(qh, k.transpose(-1, -2)) * (1.0 / math.sqrt(dh)) + bias
        attn = masked_softmax(scores, key_valid[:, None, None, :])
        out = torch.matmul(self.attn_dropout(attn), v)
        return self.out(out.transpose(1, 2).reshape(n, tq, d)), attn.mean(dim=1)


class TemporalBlock(nn.Module):
    """Post-norm transformer encoder layer over time (self-attention with relative bias, then FFN)."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn = TemporalAttention(d_model, heads, dropout)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model)
        )
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, u: Tensor, valid: Tensor, steps: Tensor) -> Tensor:
        x = self.norm1(u + self.drop(self.attn(u, u, guard_keys(valid), steps, steps)[0]))
        return self.norm2(x + self.drop(self.ff(x)))


class AttentivePool(nn.Module):
    """Eq. 11: attention pooling, mean and last-evidence state over the valid steps only."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, 1))

    def forward(self, h: Tensor, valid: Tensor) -> Tensor:
        """h [B, T, d], valid [B, T] bool → [B, 3d]. A clip with no valid step pools to zeros."""
        any_valid = valid.any(dim=1, keepdim=True)
        alpha = masked_softmax(self.score(h).squeeze(-1), guard_keys(valid)) * any_valid
        w = valid.to(h.dtype)
        mean = (h * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)
        t = h.shape[1]
        last_idx = (torch.arange(t, device=h.device) * valid).argmax(dim=1)  # last valid step (0 if none)
        last = h[torch.arange(h.shape[0], device=h.device), last_idx] * any_valid
        return torch.cat([(alpha.unsqueeze(-1) * h).sum(1), mean, last], dim=-1)


class PairCrossModel(nn.Module):
    """The pair-aware model of the module doc. Same input/output contract as FusionModel: x, mask dicts
    → ModelOutput(logits [B, C], aux_logits [B, M, C], attention [B, T, M, M] per step, eq. 9)."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.modalities = list(args.input_dims)
        d, m, c = args.d_model, len(self.modalities), args.n_classes
        self.roles = pair_roles(self.modalities)
        # token order of eq. 9: A, B first (when a pair exists), then the context modalities in input order
        persons = list(self.roles) if self.roles else []
        self.order = persons + [k for k in self.modalities if k not in persons]
        self.perm = [self.modalities.index(k) for k in self.order]
        self.inverse = [self.order.index(k) for k in self.modalities]
        self.proj = nn.ModuleDict({name: nn.Linear(dim, d) for name, dim in args.input_dims.items()})
        self.embed = nn.Parameter(torch.zeros(m, d))  # which modality a token is
        self.drop = nn.Dropout(args.dropout)
        self.cross = TemporalAttention(d, args.heads, args.dropout) if self.roles else None  # eq. 7
        self.listen = (
            TemporalAttention(d, args.heads, args.dropout) if self.roles and m > 2 else None
        )  # eq. 8
        self.norm_cross, self.norm_listen = nn.LayerNorm(d), nn.LayerNorm(d)
        self.step_attn = ATTENTION.get("transformer")(
            d, heads=args.heads, ff_dim=args.ff_dim, dropout=args.dropout
        )
        self.temporal = TemporalBlock(d, args.heads, args.ff_dim, args.dropout)  # eq. 10
        self.pool = AttentivePool(d)  # eq. 11
        self.head = nn.Linear(3 * d, c)  # eq. 12
        self.aux_head_weight = nn.Parameter(torch.empty(m, c, d))
        self.aux_head_bias = nn.Parameter(torch.empty(m, c))
        bound = 1.0 / d**0.5
        nn.init.uniform_(self.aux_head_weight, -bound, bound)
        nn.init.uniform_(self.aux_head_bias, -bound, bound)
        nn.init.normal_(self.embed, std=0.02)
        self.joint_head = nn.Linear(3 * d, args.joint_classes) if args.joint_classes else None

    stack_mask = FusionModel.stack_mask  # the same mask contract and messages as the Table-3 models
    project = FusionModel.project

    def tokens(
        self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 6-8: the step tokens [B, T, M, d] in role order (A, B, context...), their presence
        [B, T, M] (after modality dropout in training), and the unimodal aux logits [B, M, C]."""
        missing = [k for k in self.modalities if k not in x]
        if missing:
            raise ValueError(f"input lacks modality(ies) {missing}; expected {self.modalities}")
        present = self.stack_mask(x, mask)
        if self.training and self.args.modality_dropout > 0:
            present = modality_dropout(present, self.args.modality_dropout)
        f = self.project(x, present)  # eq. 6: [B, T, M, d], zeros where absent
        aux = self._aux(f, present)
        tok = (f + self.embed) * present.unsqueeze(-1).to(f.dtype)
        tok, pres = tok[:, :, self.perm], present[:, :, self.perm]
        if self.cross is not None:
            tok = self._pair(tok, pres, torch.arange(tok.shape[1], device=tok.device))
        return tok, pres, aux

    def forward(self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        tok, pres, aux = self.tokens(x, mask)
        b, t, m, d = tok.shape
        zt, attn = self.step_attn(tok.reshape(b * t, m, d), guard_keys(pres.reshape(b * t, m)), m)  # eq. 9
        w = pres.to(zt.dtype)
        u = (zt.view(b, t, m, d) * w.unsqueeze(-1)).sum(2) / w.sum(2, keepdim=True).clamp_min(1.0)
        valid = pres.any(dim=2)
        u = u * valid.unsqueeze(-1).to(u.dtype)
        h = self.temporal(u, valid, torch.arange(t, device=u.device))  # eq. 10
        z = self.drop(self.pool(h, valid))  # eq. 11
        logits = self.head(z)  # eq. 12
        joint = self.joint_head(z) if self.joint_head is not None else None
        attn = attn.view(b, t, m, m)[:, :, self.inverse][:, :, :, self.inverse]  # back to input order
        return ModelOutput(
            _widen(logits), _widen(aux), _widen(attn), None if joint is None else _widen(joint)
        )

    def _pair(self, tok: Tensor, pres: Tensor, steps: Tensor) -> Tensor:
        """Eq. 7 (A↔B over time, one shared attention) and eq. 8 (context tokens read against both persons)."""
        b, t, m, d = tok.shape
        a, bb = tok[:, :, 0], tok[:, :, 1]
        pa, pb = pres[:, :, 0], pres[:, :, 1]
        q = torch.cat([a, bb], dim=0)  # both directions in one call: A reads B, B reads A
        kv = torch.cat([bb, a], dim=0)
        kv_valid = guard_keys(torch.cat([pb, pa], dim=0))
        crossed, _ = self.cross(q, kv, kv_valid, steps, steps)
        persons = self.norm_cross(q + self.drop(crossed)).view(2, b, t, d)
        persons = persons * torch.stack([pa, pb]).unsqueeze(-1).to(tok.dtype)
        out = [persons[0], persons[1]]
        if self.listen is not None and m > 2:
            ctx = tok[:, :, 2:]  # [B, T, k, d]
            k = m - 2
            q = ctx.permute(0, 2, 1, 3).reshape(b, k * t, d)
            kv = torch.cat([persons[0], persons[1]], dim=1)  # [B, 2T, d]
            kv_valid = guard_keys(torch.cat([pa, pb], dim=1))
            heard, _ = self.listen(q, kv, kv_valid, steps.repeat(k), steps.repeat(2))
            ctx_new = self.norm_listen(q + self.drop(heard)).view(b, k, t, d).permute(0, 2, 1, 3)
            ctx_new = ctx_new * pres[:, :, 2:].unsqueeze(-1).to(tok.dtype)
            out += list(ctx_new.unbind(2))
        else:
            out += list(tok[:, :, 2:].unbind(2))
        return torch.stack(out, dim=2)

    def _aux(self, f: Tensor, present: Tensor) -> Tensor:
        """Eq. 12's unimodal heads FC_m on each modality's mean projected feature over its present steps."""
        w = present.to(f.dtype).unsqueeze(-1)
        mean = (f * w).sum(1) / w.sum(1).clamp_min(1.0)  # [B, M, d]
        return torch.einsum("bmd,mcd->bmc", mean, self.aux_head_weight) + self.aux_head_bias

    def loss(self, out: ModelOutput, y: Tensor, mask: Mapping[str, Tensor] | Tensor | None = None) -> Tensor:
        """Eq. 5 with eq. 12's heads: CE(ŷ) + aux_weight · Σ_m CE(ŷ^m) over modalities present in the clip."""
        return FusionModel.loss(self, out, y, mask)  # type: ignore[arg-type]


MODELS.register("pair-cross")(PairCrossModel)
