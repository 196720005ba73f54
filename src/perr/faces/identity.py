"""Face identity: dlib's 128-d ResNet descriptor (same person: distance < 0.6).

The model files come from ``face-recognition-models``, found with ``importlib.util.find_spec`` so the
package's ``pkg_resources`` import never runs. dlib aligns the face; its network runs in torch
(:mod:`perr.faces.dlib_resnet`, ~9 ms a face on one core against dlib-bin's ~87 ms:
``benchmarks/identity_speed.py``). Callers still embed once per track (build) or once per character
(features reuse the build's descriptors), never per frame.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from perr.faces.box import FaceBox
from perr.faces.detectors import FaceDetector, make_face_detector

#: Same-person threshold for dlib descriptors (dlib's own figure; LFW-calibrated).
SAME_PERSON_DISTANCE = 0.6

#: Chips per forward pass of the identity network (zero-padded): ~9 ms a face at 4 against ~13.5
#: alone (``benchmarks/results/identity_speed.avx512.json``).
BLOCK = 4


def face_model_dir() -> Path:
    """Folder of dlib's model files: $PERR_FACE_MODELS, else the installed face-recognition-models."""
    env = os.environ.get("PERR_FACE_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib face models not found: install face-recognition-models==0.3.0 or set PERR_FACE_MODELS"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceEmbedder:
    """dlib's 128-d identity descriptor: dlib's 5-point alignment to a 150-px chip, then dlib's ResNet run in
    torch (:mod:`perr.faces.dlib_resnet`: dlib's own weights, its descriptor to float rounding, several
    times faster than dlib-bin's BLAS-less network, and batched)."""

    dim = 128
    chip_size = 150
    chip_padding = 0.25  # dlib's compute_face_descriptor: get_face_chip_details(shape, 150, 0.25)

    def __init__(self, model_dir: str | os.PathLike | None = None) -> None:
        import dlib

        from perr.faces.dlib_resnet import DlibResNet

        d = Path(model_dir) if model_dir is not None else face_model_dir()
        sp = d / "shape_predictor_5_face_landmarks.dat"
        rec = d / "dlib_face_recognition_resnet_model_v1.dat"
        for p in (sp, rec):
            if not p.exists():
                raise FileNotFoundError(f"dlib face model missing: {p}")
        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(sp))
        self._net = DlibResNet(rec)

    def chips(self, image: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        """The aligned uint8 RGB face chips [n, 150, 150, 3] of `boxes` in an RGB image."""
        if not boxes:
            return np.zeros((0, self.chip_size, self.chip_size, 3), np.uint8)
        img = np.ascontiguousarray(image)
        dlib = self._dlib
        out = []
        for b in boxes:
            rect = dlib.rectangle(round(b.x0), round(b.y0), round(b.x1), round(b.y1))
            out.append(dlib.get_face_chip(img, self._sp(img, rect), self.chip_size, self.chip_padding))
        return np.stack(out)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors [n, 128] of aligned chips, computed in zero-padded blocks of :data:`BLOCK`.

        Every forward pass has the same shape, and a chip's descriptor then does not depend on the
        other chips of its call (a lone chip and one in a batch differ by ~2e-7 otherwise): a build
        spread over workers equals the single pass bit for bit."""
        n = len(chips)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        padded = np.zeros((-(-n // BLOCK) * BLOCK, *chips.shape[1:]), np.uint8)
        padded[:n] = chips
        return np.concatenate([self._net.embed(padded[i : i + BLOCK]) for i in range(0, n, BLOCK)])[:n]

    def embed(self, image: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        """One descriptor per box (rows in box order), float32 [n, 128]."""
        return self.embed_chips(self.chips(image, boxes))


@lru_cache(maxsize=1)
def default_embedder() -> FaceEmbedder:
    return FaceEmbedder()


def embed_faces(image: np.ndarray, boxes: list[FaceBox], embedder: FaceEmbedder | None = None) -> np.ndarray:
    """Identity descriptors [n, 128] for `boxes` in an RGB image (dlib; same person < 0.6)."""
    return (embedder or default_embedder()).embed(image, boxes)


def mean_descriptors(
    groups: list[list[tuple[np.ndarray, FaceBox]]], embedder: FaceEmbedder | None = None
) -> list[np.ndarray | None]:
    """The mean descriptor of each group of (image, face box) crops — a face track's few kept views —
    all chips through the network together (None for an empty group)."""
    emb = embedder or default_embedder()
    chips = [emb.chips(image, [box]) for group in groups for image, box in group]
    if not chips:
        return [None] * len(groups)
    vecs = emb.embed_chips(np.concatenate(chips))
    out: list[np.ndarray | None] = []
    at = 0
    for group in groups:
        out.append(np.mean(vecs[at : at + len(group)], axis=0) if group else None)
        at += len(group)
    return out


def embed_image(
    image: np.ndarray, detector: FaceDetector | None = None, embedder: FaceEmbedder | None = None
) -> np.ndarray:
    """Descriptor of the largest face in a (reference) photo. Raises ValueError if none is found."""
    own = detector is None
    det = detector or make_face_detector("mediapipe")
    try:
        boxes = det.detect(image)
    finally:
        if own:
            det.close()
    if not boxes:
        raise ValueError("no face found in the image")
    best = max(boxes, key=lambda b: b.area)
    return embed_faces(image, [best], embedder)[0]


def crop_face(image: np.ndarray, box: FaceBox, margin: float = 0.35) -> np.ndarray:
    """A square crop around a face with `margin` (fraction of the box side) — for thumbnails."""
    h, w = image.shape[:2]
    cx, cy = box.center
    side = max(box.x1 - box.x0, box.y1 - box.y0) * (1 + 2 * margin)
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    return image[y0:y1, x0:x1].copy()
