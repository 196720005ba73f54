"""Face identity: dlib's 128-d ResNet descriptor (same person: distance < 0.6).

The model files come from ``face-recognition-models``, found with ``importlib.util.find_spec`` so the
package's ``pkg_resources`` import never runs. At ~55 ms a face, callers embed once per track (build)
or once per character (features reuse the build's descriptors), never per frame.
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
    """dlib ResNet 128-d identity descriptor (5-point alignment, 150 px chips)."""

    dim = 128

    def __init__(self, model_dir: str | os.PathLike | None = None, jitters: int = 0) -> None:
        import dlib

        d = Path(model_dir) if model_dir is not None else face_model_dir()
        sp = d / "shape_predictor_5_face_landmarks.dat"
        rec = d / "dlib_face_recognition_resnet_model_v1.dat"
        for p in (sp, rec):
            if not p.exists():
                raise FileNotFoundError(f"dlib face model missing: {p}")
        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(sp))
        self._rec = dlib.face_recognition_model_v1(str(rec))
        self._jitters = jitters

    def embed(self, image: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        """One descriptor per box (rows in box order), float32 [n, 128]."""
        if not boxes:
            return np.zeros((0, self.dim), np.float32)
        img = np.ascontiguousarray(image)
        dlib = self._dlib
        shapes = dlib.full_object_detections()
        for b in boxes:
            rect = dlib.rectangle(round(b.x0), round(b.y0), round(b.x1), round(b.y1))
            shapes.append(self._sp(img, rect))
        desc = self._rec.compute_face_descriptor(img, shapes, self._jitters)
        return np.asarray([np.asarray(v) for v in desc], dtype=np.float32)


@lru_cache(maxsize=1)
def default_embedder() -> FaceEmbedder:
    return FaceEmbedder()


def embed_faces(image: np.ndarray, boxes: list[FaceBox], embedder: FaceEmbedder | None = None) -> np.ndarray:
    """Identity descriptors [n, 128] for `boxes` in an RGB image (dlib; same person < 0.6)."""
    return (embedder or default_embedder()).embed(image, boxes)


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
