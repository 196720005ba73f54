"""Per-modality attention weight per step, for the Fig. 7 timeline."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from perr.models.args import ModelOutput


def attention_timeline(out: ModelOutput, modality_names: Sequence[str]) -> Tensor:
    """[B, T, M]: the attention each modality token *receives* at step t — the column sums of A_t over
    all query tokens (including h̃ for smta-*), restricted to the M modality columns and normalised to
    sum to 1 over M. The h̃ column of SMTA is left out: Fig. 7 plots modalities only, so a step of an
    smta-* model where every modality is missing (all attention on h̃) is all zeros."""
    if out.attention is None:
        raise ValueError("this model has no attention (the lstm baseline); no timeline to draw")
    m = len(modality_names)
    a = out.attention
    k = a.shape[-1]
    if k not in (m, m + 1):
        raise ValueError(
            f"attention has {k} tokens but {m} modality names were given: {list(modality_names)}"
        )
    received = a.sum(dim=-2)[..., :m]  # [B, T, M]
    return received / received.sum(dim=-1, keepdim=True).clamp_min(1e-12)
