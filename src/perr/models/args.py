"""Model hyper-parameters and the model output type, shared by every Table-3 model.

`ModelArgs` travels inside checkpoints (as JSON) so `evaluate`/`predict` rebuild exactly what was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

from torch import Tensor

#: Fields that older checkpoints carry and that no longer exist (ignored when read back).
RETIRED_FIELDS = ("precision",)


@dataclass
class ModelArgs:
    """Everything needed to rebuild a model. `input_dims` order is the modality order (M = len)."""

    name: str
    input_dims: dict[str, int] = field(default_factory=dict)
    n_classes: int = 5
    d_model: int = 256  # common width d; the stage-1 LSTM hidden is also d (Z_t stacks f^m and h̃)
    stage2_hidden: int = 256
    heads: int = 4
    ff_dim: int = 512  # transformer feed-forward width
    dropout: float = 0.1
    aux_weight: float = 1.0  # weight of Σ_m CE(ŷ^m) in eq. 5 (paper: 1)
    label_smoothing: float = 0.0  # of every CE term in eq. 5 (paper: 0)
    joint_classes: int = 0  # > 0: a second head on the fused representation for a second task (joint_task)
    joint_weight: float = 1.0  # its loss weight
    modality_dropout: float = 0.0  # pair-cross: chance a clip's modality is dropped in training (balance.py)
    # text_encoder=finetune (perr.models.text_encoder): these modalities are encoded from raw step texts
    text_modalities: list[str] = field(default_factory=list)
    text_model: str = ""  # sentence-transformers folder; "" = the packaged all-MiniLM-L6-v2
    text_max_tokens: int = 64
    text_pooling: str = "mean"  # mean | line (perr.models.text_encoder.TEXT_POOLINGS)

    def __post_init__(self) -> None:
        if not self.input_dims:
            raise ValueError("ModelArgs.input_dims is empty: give at least one modality name -> feature dim")
        for k, v in self.input_dims.items():
            if int(v) <= 0:
                raise ValueError(f"ModelArgs.input_dims[{k!r}] = {v}: feature dims must be positive")
        if self.n_classes < 2:
            raise ValueError(f"ModelArgs.n_classes = {self.n_classes}: need at least 2 classes")
        if not 0 <= self.modality_dropout < 1:
            raise ValueError(f"ModelArgs.modality_dropout = {self.modality_dropout}: must be in [0, 1)")
        if self.joint_classes < 0 or self.joint_classes == 1:
            raise ValueError(
                f"ModelArgs.joint_classes = {self.joint_classes}: 0 (no joint task) or at least 2"
            )
        if self.d_model % self.heads:
            raise ValueError(f"ModelArgs.d_model = {self.d_model} is not divisible by heads = {self.heads}")

    @property
    def modalities(self) -> list[str]:
        return list(self.input_dims)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_dims"] = dict(self.input_dims)
        d["text_modalities"] = list(self.text_modalities)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelArgs:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k not in RETIRED_FIELDS}  # bf16 is TrainConfig.bf16 now
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelArgs: unknown field(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        d["input_dims"] = {str(k): int(v) for k, v in d.get("input_dims", {}).items()}
        d["text_modalities"] = [str(m) for m in d.get("text_modalities", [])]
        return cls(**d)


class ModelOutput(NamedTuple):
    logits: Tensor  # [B, C]   fused head FC(Σ_m h_T^m) over the modalities present in the clip
    aux_logits: Tensor  # [B, M, C] per-modality heads FC_m(h_T^m)
    attention: (
        Tensor | None
    )  # [B, T, K, K] A_t per step, heads averaged (K = M+1 smta-*, M plain and pair-cross); None for lstm
    joint_logits: Tensor | None = None  # [B, C'] the joint task's head on the fused representation
