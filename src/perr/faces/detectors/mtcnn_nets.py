"""MTCNN's three networks in torch (PNet, RNet, ONet), perr's own modules for the state dicts that
``facenet-pytorch==2.6.0`` ships; written from the architecture in facenet-pytorch's ``models/mtcnn.py``.
Kept apart from :mod:`perr.faces.detectors.mtcnn` so that importing the detector registry does not
import torch (the CLI and the build's workers start faster)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn


class _Flatten(nn.Module):
    """(N, C, H, W) → (N, W·H·C): the converted Caffe weights' dense layers read columns first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal net: fully convolutional; per 12-px cell (stride 2) a face probability and a box offset."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """Refine net on 24×24 crops: face probability and box offset."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.flat = _Flatten()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool(self.prelu1(self.conv1(x)))
        x = self.pool(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(self.flat(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net on 48×48 crops: face probability, box offset and 5 landmarks (x's then y's)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.flat = _Flatten()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool(self.prelu1(self.conv1(x)))
        x = self.pool(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(self.flat(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


def load_nets(folder: str | os.PathLike) -> tuple[PNet, RNet, ONet]:
    """The three nets of a folder holding pnet.pt, rnet.pt, onet.pt, in eval mode, their weights read
    with ``weights_only=True``."""
    d = Path(folder)
    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, ("pnet", "rnet", "onet"), strict=True):
        net.load_state_dict(torch.load(d / f"{name}.pt", map_location="cpu", weights_only=True))
        net.eval().requires_grad_(False)
    return nets  # type: ignore[return-value]


def _normalise(x: np.ndarray) -> torch.Tensor:
    """H×W×3 (or N×H×W×3) RGB 0–255 → N×3×H×W in [-1, 1) (the authors' (x − 127.5) / 128)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.ndim == 3:
        t = t[None]
    return (t.permute(0, 3, 1, 2) - 127.5) * 0.0078125


def run(net: nn.Module, images: np.ndarray) -> tuple[np.ndarray, ...]:
    """A net's outputs (numpy) on RGB 0–255 images (H×W×3 or N×H×W×3), without autograd."""
    with torch.inference_mode():
        return tuple(t.numpy() for t in net(_normalise(images)))
