"""Training configuration: dataclass defaults ← YAML file ← `--set key=value`.

The defaults are the paper's protocol (§5.1): Adam, lr 5e-3, StepLR ×0.1 every 15 epochs, 50 epochs,
batch 16, separate 5- and 3-class runs. The resolved config is saved in every run folder and inside
every checkpoint, so `resume` and `evaluate` rebuild exactly what was trained.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from perr.io import atomic_open
from perr.modalities import expand_groups
from perr.models import MODELS, TEXT_POOLINGS
from perr.schedules import SCHEDULES

#: Keys renamed since checkpoints were first written: old name → new name.
RENAMED_KEYS: Mapping[str, str] = {"val_fraction": "holdout_fraction"}


@dataclass
class TrainConfig:
    # what to train
    model: str = "smta-transformer"
    task: str = "5"
    drop: list[str] = field(default_factory=list)  # modalities (or groups like "person") left out, Table 4
    # model size
    d_model: int = 256
    stage2_hidden: int = 256
    heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    aux_weight: float = 1.0
    modality_dropout: float = 0.0  # pair-cross: chance each modality of a clip is dropped in training
    # text modalities: cached frozen embeddings (the store's vectors) or a sentence encoder fine-tuned
    # end to end from the store's raw step texts (dialogue stores; perr.models.text_encoder)
    text_encoder: str = "frozen"  # frozen | finetune
    text_lr: float = 5e-5  # learning rate of the fine-tuned text encoder
    text_finetune: list[str] = field(default_factory=list)  # which step-text modalities; [] = all of them
    text_model: str = ""  # sentence-transformers folder; "" = the packaged all-MiniLM-L6-v2
    text_max_tokens: int = 64  # tokens kept per text (longer ones are truncated)
    text_pooling: str = (
        "mean"  # mean: over all tokens | line: over the step's own line, context as 2nd segment
    )
    # optimisation: the paper's protocol
    epochs: int = 50
    batch_size: int = 16
    # "" = batches of rows in a random order; a column of the store's index (e.g. dialogue_id) = its groups
    # in a random order, each group's rows together, so a batch holds few groups (perr.train.batches.
    # epoch_order). Consecutive utterances of a dialogue share most of their steps' texts, so with
    # text_encoder=finetune a batch has ~3x fewer distinct texts to encode (the usual ERC batching).
    batch_by: str = ""
    lr: float = 5e-3
    lr_step: int = 15
    lr_gamma: float = 0.1
    # step: the paper's (×lr_gamma every lr_step epochs) | linear | cosine: warm-up over the first `warmup`
    # share of all batches, then a decay to 0 (perr.schedules; the usual transformer fine-tuning schedule)
    lr_schedule: str = "step"
    warmup: float = 0.0
    label_smoothing: float = 0.0  # of every cross-entropy term in eq. 5 (0 = the paper's plain CE)
    # another task of the store (e.g. "3" beside task "7") learnt by a second head on the same fused
    # representation, its CE weighted by joint_weight (multi-task training); "" = none. Predictions and
    # early stopping are `task`'s; metrics add the joint head's as `joint-<task>`.
    joint_task: str = ""
    joint_weight: float = 1.0
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # 0 = off
    seed: int = 0
    # validation / early stopping (used when the store has a `val` split or holdout_fraction > 0)
    holdout_fraction: float = 0.0  # per class, the share of the train split held out for validation
    early_stop_metric: str = "macro_f1"  # micro_f1 | macro_f1 | weighted_f1 | loss
    patience: int = 0  # epochs without improvement before stopping; 0 = never stop early
    # runtime
    device: str = "auto"
    bf16: bool = (
        False  # bfloat16 autocast of forward passes (CPU with AVX512-BF16/AMX, or CUDA): the one switch
    )
    # read the train (and val) split's features into memory before the first epoch: auto = when they
    # take at most half the memory available (perr.train.preload); same results either way
    preload: str = "auto"  # auto | on | off
    threads: int = (
        0  # torch intra-op threads; 0 = auto (perr.train.threads): 1 for small models, else by size and cores
    )

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: unknown {self.model!r}; choose one of {', '.join(MODELS.names())}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs, batch_size must be ≥ 1 and lr > 0")
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction: {self.holdout_fraction} not in [0, 1)")
        if self.text_encoder not in {"frozen", "finetune"}:
            raise ValueError(f"text_encoder: unknown {self.text_encoder!r}; choose frozen or finetune")
        if self.text_lr <= 0 or self.text_max_tokens < 1:
            raise ValueError("text_lr must be > 0 and text_max_tokens ≥ 1")
        if self.text_pooling not in TEXT_POOLINGS:
            raise ValueError(
                f"text_pooling: unknown {self.text_pooling!r}; choose {' or '.join(TEXT_POOLINGS)}"
            )
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(
                f"lr_schedule: unknown {self.lr_schedule!r}; choose one of {', '.join(SCHEDULES.names())}"
            )
        if not 0 <= self.warmup < 1:
            raise ValueError(
                f"warmup: {self.warmup} not in [0, 1) (the share of all batches spent warming up)"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing: {self.label_smoothing} not in [0, 1)")
        if self.joint_task and self.joint_task == self.task:
            raise ValueError(
                f"joint_task: {self.joint_task!r} is the task itself; name another task of the store"
            )
        if self.joint_weight < 0:
            raise ValueError(f"joint_weight: {self.joint_weight} must be ≥ 0")
        if self.preload not in {"auto", "on", "off"}:
            raise ValueError(f"preload: unknown {self.preload!r}; choose auto, on or off")
        if self.early_stop_metric not in {"micro_f1", "macro_f1", "weighted_f1", "loss"}:
            raise ValueError(f"early_stop_metric: unknown {self.early_stop_metric!r}")

    def dropped_modalities(self, available: Iterable[str]) -> list[str]:
        """Expand `drop` (groups allowed) against the store's modalities; unknown names are an error."""
        return expand_groups(self.drop, available)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """A config from its dict form (config.yaml, a checkpoint); renamed keys are read under their new name."""
        cfg = cls()
        apply_overrides(cfg, {RENAMED_KEYS.get(k, k): v for k, v in d.items()})
        return cfg


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Coerce a YAML/CLI value to the dataclass field's type, naming the key on failure."""
    hints = annotation
    origin = typing.get_origin(hints)
    try:
        if origin in (list, typing.List):  # noqa: UP006
            (inner,) = typing.get_args(hints) or (str,)
            if isinstance(value, str):
                value = [v for v in (s.strip() for s in value.strip().strip("[]").split(",")) if v]
            return [_coerce(v, inner, key) for v in value]
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hints) if a is not type(None)]
            if value in (None, "none", "None", "null"):
                return None
            return _coerce(value, args[0], key)
        if hints is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in {"1", "true", "yes", "on"}:
                return True
            if s in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if hints in (int, float, str):
            if hints is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(f"not an integer: {value!r}")
            return hints(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config key {key!r}: {e}") from None
    return value


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(type(cfg))
    for key, value in overrides.items():
        if key not in hints:
            valid = ", ".join(f.name for f in dataclasses.fields(cfg))
            raise ValueError(f"unknown config key {key!r}; valid keys: {valid}")
        setattr(cfg, key, _coerce(value, hints[key], key))
    return cfg


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """`["epochs=5", "model=lstm"]` → dict; a malformed item names itself."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (), base: TrainConfig | None = None
) -> TrainConfig:
    """defaults (or `base`) ← YAML file ← `--set key=value` items."""
    cfg = dataclasses.replace(base) if base is not None else TrainConfig()
    if path is not None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config file must be a YAML mapping of key: value")
        apply_overrides(cfg, data)
    apply_overrides(cfg, parse_set(overrides))
    return cfg


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    with atomic_open(path) as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
