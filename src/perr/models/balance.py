"""Modality dropout: the remedy for modality imbalance used by `pair-cross` (paper §6: "modalities are
unbalanced").

A model trained on all modalities at once leans on whichever one is easiest early on and leaves the
others under-trained (Wang et al., CVPR'20; OGM-GE, Peng et al., CVPR'22). Dropping whole modalities
of a clip at random during training makes every modality carry the label on its own some of the time.
We chose it over OGM-GE's gradient modulation because it needs no per-modality score of the fused
model and works the same with any number of modalities; the measurement that kept it is in README
("PairCross").
"""

from __future__ import annotations

import torch
from torch import Tensor


def modality_dropout(present: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """present [B, T, M] bool → the same with each modality of each clip dropped (all its steps set
    absent) with probability p. A clip never loses every modality it has: if all would go, the draw
    keeps the one with the highest random score among those present."""
    if p <= 0:
        return present
    b, _, m = present.shape
    score = torch.rand(b, m, device=present.device, generator=generator)
    keep = score >= p
    has = present.any(dim=1)  # [B, M]
    none_left = ~(keep & has).any(dim=1)
    rescue = torch.nn.functional.one_hot(score.masked_fill(~has, -1.0).argmax(dim=1), m).bool()
    keep = keep | (rescue & none_left.unsqueeze(1))
    return present & keep.unsqueeze(1)
