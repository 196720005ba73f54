"""The checkpoint: the one way any code reads or writes a trained model.

A checkpoint carries what was trained (model args, the full training config, the task), on what (the
feature signature — modality names, dims, extractor names and versions — and T), how far (epoch, best
epoch, history) and the weights; a resumable one (``checkpoint.pt``) adds optimizer, scheduler and RNG
state (nanoGPT idiom). On disk it is a dict of tensors and plain values, read with
``torch.load(weights_only=True)``, so loading one runs no pickled code.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perr.config import TrainConfig
from perr.errors import PerrError
from perr.io import atomic_path
from perr.labels import Task
from perr.models import ModelArgs, build_model
from perr.store import ModalitySpec, StoreError, StoreHeader
from perr.version import __version__

CHECKPOINT_FORMAT = 1


class CheckpointError(PerrError, ValueError):
    """A file that is not a readable perr checkpoint; the message names it."""


@dataclass
class ResumeState:
    """What `perr train` needs to continue a run exactly where it stopped."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Tensor]


@dataclass
class Checkpoint:
    model_args: ModelArgs
    config: TrainConfig
    task: Task
    features: list[ModalitySpec]
    T: int
    dataset: str = ""
    synthetic: bool = False
    model_state: dict[str, Tensor] = field(default_factory=dict)
    epoch: int = 0
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    resume: ResumeState | None = None
    perr_version: str = __version__
    joint_task: Task | None = None  # the second head's task (config.joint_task), with its classes

    # -- what it was trained on ---------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """The model's input modalities, in model order."""
        return list(self.model_args.input_dims)

    @property
    def model_name(self) -> str:
        return self.model_args.name

    def check_features(self, header: StoreHeader, where: str) -> None:
        """Refuse features made by other extractors (or dims, versions, T) than these weights saw:
        an error naming each difference, never a silent wrong answer."""
        have = {s.name: s for s in header.modalities}
        problems = []
        for want in self.features:
            got = have.get(want.name)
            if got is None:
                problems.append(f"modality {want.name!r} is missing")
                continue
            for key in ("dim", "extractor", "version"):
                if str(getattr(got, key)) != str(getattr(want, key)):
                    problems.append(
                        f"modality {want.name!r}: {key} is {getattr(got, key)!r}, "
                        f"the checkpoint was trained with {getattr(want, key)!r}"
                    )
        if problems:
            raise StoreError(f"{where}: features do not match the checkpoint:\n  " + "\n  ".join(problems))
        if header.T != self.T:
            raise StoreError(f"{where}: T={header.T}, the checkpoint was trained with T={self.T}")

    # -- the model ------------------------------------------------------------------------------
    def build_model(self, device: torch.device | str = "cpu") -> nn.Module:
        """The trained model in eval mode on `device`."""
        model = build_model(self.model_args)
        model.load_state_dict(self.model_state)
        return model.to(device).eval()

    # -- files ------------------------------------------------------------------------------------
    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "perr_version": self.perr_version,
            "model_args": self.model_args.to_json(),
            "config": self.config.to_dict(),
            "task": self.task.to_json(),
            "features": [asdict(s) for s in self.features],
            "T": self.T,
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "model_state": self.model_state,
            "epoch": self.epoch,
            "best": self.best,
            "history": self.history,
        }
        if self.joint_task is not None:
            payload["joint_task"] = self.joint_task.to_json()
        if self.resume is not None:
            payload.update(
                optimizer=self.resume.optimizer, scheduler=self.resume.scheduler, rng=self.resume.rng
            )
        return payload

    @classmethod
    def from_payload(cls, d: dict[str, Any], where: str = "checkpoint") -> Checkpoint:
        if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
            fmt = d.get("format") if isinstance(d, dict) else "?"
            raise CheckpointError(f"{where}: not a perr checkpoint (format {fmt})")
        try:
            resume = ResumeState(d["optimizer"], d["scheduler"], d["rng"]) if "optimizer" in d else None
            return cls(
                model_args=ModelArgs.from_json(d["model_args"]),
                config=TrainConfig.from_dict(d["config"]),
                task=Task.from_json(d["task"]),
                features=[ModalitySpec.from_json(s) for s in d["features"]],
                T=int(d["T"]),
                dataset=str(d.get("dataset", "")),
                synthetic=bool(d.get("synthetic", False)),
                model_state=d["model_state"],
                epoch=int(d.get("epoch", 0)),
                best=dict(d.get("best", {})),
                history=list(d.get("history", [])),
                resume=resume,
                perr_version=str(d.get("perr_version", "")),
                joint_task=Task.from_json(d["joint_task"]) if d.get("joint_task") else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: malformed perr checkpoint ({type(e).__name__}: {e})") from e

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file + rename): a killed run never leaves half a checkpoint."""
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(self.to_payload(), tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> Checkpoint:
        """Read a checkpoint with ``weights_only=True``; a missing or foreign file is a clear error."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"checkpoint not found: {path}")
        try:
            payload = torch.load(path, map_location=device, weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{path}: not a readable perr checkpoint ({e})") from e
        return cls.from_payload(payload, str(path))
