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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from perr.io import atomic_open
from perr.modalities import expand_groups
from perr.models import MODELS, TEXT_POOLINGS, ModelArgs
from perr.schedules import SCHEDULES
from perr.settings import check_settings, setting

#: Keys renamed since checkpoints were first written: old name → new name.
RENAMED_KEYS: Mapping[str, str] = {"val_fraction": "holdout_fraction"}


EARLY_STOP_METRICS = ("micro_f1", "macro_f1", "weighted_f1", "loss")


@dataclass
class TrainConfig:
    """Every key of `perr train --set KEY=VALUE` / `--config FILE`, declared once (perr.settings): its
    default, bounds or choices and help. The fields it shares with ModelArgs are the model's settings."""

    # what to train
    model: str = setting("smta-transformer", "model (`perr models` lists them)", choices=MODELS.names)
    task: str = setting("5", "task: 5 (fine) or 3 (coarse); a store may define others")
    drop: list[str] = setting(
        help="modalities (or groups like person) left out, Table 4", default_factory=list
    )
    # model size
    d_model: int = setting(256, "common width d", min=1)
    stage2_hidden: int = setting(256, "hidden size of the stage-2 LSTMs", min=1)
    heads: int = setting(4, "attention heads (d_model must divide by it)", min=1)
    ff_dim: int = setting(512, "transformer feed-forward width", min=1)
    dropout: float = setting(0.1, "dropout", min=0, below=1)
    aux_weight: float = setting(1.0, "weight of the per-modality losses in eq. 5 (paper: 1)", min=0)
    modality_dropout: float = setting(
        0.0, "pair-cross: chance each modality of a clip is dropped in training", min=0, below=1
    )
    # text modalities: cached frozen embeddings (the store's vectors) or a sentence encoder fine-tuned
    # end to end from the store's raw step texts (dialogue stores; perr.models.text_encoder)
    text_encoder: str = setting(
        "frozen",
        "text modalities: the store's frozen vectors, or a sentence encoder fine-tuned from raw step texts",
        choices=("frozen", "finetune"),
    )
    text_lr: float = setting(5e-5, "learning rate of the fine-tuned text encoder", above=0)
    text_finetune: list[str] = setting(
        help="which step-text modalities are fine-tuned; [] = all of them", default_factory=list
    )
    text_model: str = setting("", 'sentence-transformers folder; "" = the packaged all-MiniLM-L6-v2')
    text_max_tokens: int = setting(64, "tokens kept per text (longer ones are truncated)", min=1)
    text_pooling: str = setting(
        "mean",
        "mean: over all tokens | line: over the step's own line, its context as a 2nd segment",
        choices=TEXT_POOLINGS,
    )
    # optimisation: the paper's protocol
    epochs: int = setting(50, "epochs", min=1)
    batch_size: int = setting(16, "clips per batch", min=1)
    batch_by: str = setting(
        "",
        '"" = batches of rows in a random order; a column of the store\'s index (e.g. dialogue_id) = its '
        "groups in a random order, each group's rows together (fewer distinct texts per batch for "
        "text_encoder=finetune)",
    )
    lr: float = setting(5e-3, "learning rate (Adam)", above=0)
    lr_step: int = setting(15, "step schedule: epochs between two lr × lr_gamma", min=1)
    lr_gamma: float = setting(0.1, "step schedule: factor of each step", above=0)
    lr_schedule: str = setting(
        "step",
        "step: the paper's (× lr_gamma every lr_step epochs); linear | cosine: warm-up over the first "
        "`warmup` share of all batches, then a decay to 0",
        choices=SCHEDULES.names,
    )
    warmup: float = setting(0.0, "the share of all batches spent warming up (linear, cosine)", min=0, below=1)
    label_smoothing: float = setting(
        0.0, "of every cross-entropy term in eq. 5 (0 = the paper's plain CE)", min=0, below=1
    )
    joint_task: str = setting(
        "",
        "another task of the store learnt by a second head on the same fused representation "
        '(multi-task training); its metrics are reported as joint-<task>; "" = none',
    )
    joint_weight: float = setting(1.0, "weight of the joint task's cross-entropy", min=0)
    weight_decay: float = setting(0.0, "Adam weight decay", min=0)
    grad_clip: float = setting(0.0, "gradient norm clip; 0 = off", min=0)
    seed: int = setting(0, "seed of the weights, the shuffle and dropout")
    # validation / early stopping (used when the store has a `val` split or holdout_fraction > 0)
    holdout_fraction: float = setting(
        0.0, "per class, the share of the train split held out for validation", min=0, below=1
    )
    early_stop_metric: str = setting(
        "macro_f1", "validation figure that picks the best epoch", choices=EARLY_STOP_METRICS
    )
    patience: int = setting(0, "epochs without improvement before stopping; 0 = never stop early", min=0)
    # runtime
    device: str = setting("auto", "auto | cpu | cuda[:N] | mps")
    bf16: bool = setting(False, "bfloat16 autocast of forward passes (CPU with AVX512-BF16/AMX, or CUDA)")
    preload: str = setting(
        "auto",
        "read the train (and val) features into memory before the first epoch; auto = when they take at "
        "most half the memory available (same results either way)",
        choices=("auto", "on", "off"),
    )
    threads: int = setting(
        0, "torch intra-op threads; 0 = auto: 1 for small models, else by size and cores", min=0
    )
    cpu_helpers: str = setting(
        "auto",
        "CPU speed-ups: dropout masks drawn a step ahead and the stage-2 LSTMs on two threads; auto = where "
        "the threads leave a core free and other jobs do not keep every core busy (same results either "
        "way; never on a GPU)",
        choices=("auto", "on", "off"),
    )

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ValueError naming a key whose value is out of its bounds or choices (perr.settings)."""
        check_settings(self)
        if self.joint_task and self.joint_task == self.task:
            raise ValueError(
                f"joint_task: {self.joint_task!r} is the task itself; name another task of the store"
            )

    def model_settings(self) -> dict[str, Any]:
        """The settings a ModelArgs takes from this config: the fields the two share."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ModelArgs) if hasattr(self, f.name)}

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
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
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


#: `perr demo`'s epochs and learning rate (the paper's 50 and 5e-3 take too long for a demo)
DEMO_EPOCHS, DEMO_LR = 6, 2e-3


def demo_config(epochs: int = DEMO_EPOCHS, lr: float = DEMO_LR, device: str = "auto") -> TrainConfig:
    """The one demo configuration (`perr demo`, benchmarks/bf16_vs_fp32.py): reduced epochs, a lower
    lr with one ×0.1 step before the last epoch, d 64, one torch thread."""
    return TrainConfig(
        epochs=epochs,
        lr=lr,
        lr_step=max(1, epochs - 1),
        d_model=64,
        stage2_hidden=64,
        ff_dim=128,
        threads=1,
        device=device,
    )


def changed_keys(cfg: TrainConfig) -> list[str]:
    """`key=value` for every key of `cfg` that differs from the default (the `--set` items that make it)."""
    default = TrainConfig()
    return [
        f"{f.name}={getattr(cfg, f.name)}"
        for f in dataclasses.fields(cfg)
        if getattr(cfg, f.name) != getattr(default, f.name)
    ]
