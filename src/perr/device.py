"""`--device auto|cpu|cuda[:N]|mps` resolution, shared by every command that runs a model.

torch is imported when a device is resolved, not with this module: drivers that only hand work to worker
processes (`perr features extract` with workers) never load it (~190 MB of RSS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(spec: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU; an explicit device that is absent is an error."""
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: CUDA is not available on this machine (use --device auto or cpu)")
    return dev
