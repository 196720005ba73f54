"""Face detection and identity embedding: plain classes other stages (features, predict) reuse.

Detectors are a registry (``FACE_DETECTORS``): ``mediapipe`` (default; BlazeFace full-range,
1–3 ms per 640 px frame) and ``dlib-hog`` (alternative; finds faces ≥ ~80 px). The paper's MTCNN
can be added as one more registered class by a user who has its weights. Identity embeddings are
dlib's 128-d ResNet descriptor from ``face-recognition-models`` (same person: distance < 0.6), found
with ``importlib.util.find_spec`` so the package's ``pkg_resources`` import never runs. At ~55 ms a
face, callers embed once per track, not per frame.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perr.registry import Registry

#: Same-person threshold for dlib descriptors (dlib's own figure; LFW-calibrated).
SAME_PERSON_DISTANCE = 0.6


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixel coordinates of the image it was found in."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    keypoints: tuple[tuple[float, float], ...] = field(default=(), compare=False)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))

    def clip(self, width: int, height: int) -> FaceBox:
        return FaceBox(
            max(0.0, self.x0), max(0.0, self.y0), min(float(width), self.x1), min(float(height), self.y1),
            self.score, self.keypoints,
        )

    def scaled(self, sx: float, sy: float) -> FaceBox:
        kp = tuple((x * sx, y * sy) for x, y in self.keypoints)
        return FaceBox(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy, self.score, kp)


def iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    """Interface: ``detect(rgb uint8 H×W×3) -> list[FaceBox]``. Subclasses register themselves."""

    name: ClassVar[str] = ""

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        raise NotImplementedError

    def close(self) -> None:  # release native resources
        return None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FACE_DETECTORS: Registry[type[FaceDetector]] = Registry("face detector")


@FACE_DETECTORS.register("mediapipe")
class MediapipeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace (legacy solutions API). model=1 is full range (faces up to ~5 m)."""

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5, model: int = 1) -> None:
        import mediapipe as mp

        self._fd = mp.solutions.face_detection.FaceDetection(
            model_selection=model, min_detection_confidence=min_confidence
        )

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        h, w = image.shape[:2]
        res = self._fd.process(np.ascontiguousarray(image))
        out: list[FaceBox] = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            kps = tuple((k.x * w, k.y * h) for k in d.location_data.relative_keypoints)
            box = FaceBox(bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h,
                          float(d.score[0]), kps).clip(w, h)
            if box.area > 0:
                out.append(box)
        return out

    def close(self) -> None:
        self._fd.close()


@FACE_DETECTORS.register("dlib-hog")
class DlibHogFaceDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal detector: CPU-cheap, frontal faces of ≥ ~80 px (upsample=0)."""

    name = "dlib-hog"

    def __init__(self, upsample: int = 0, min_confidence: float = 0.0) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self._upsample = upsample
        self._min = min_confidence

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        h, w = image.shape[:2]
        rects, scores, _ = self._det.run(np.ascontiguousarray(image), self._upsample, self._min)
        return [
            FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(s)).clip(w, h)
            for r, s in zip(rects, scores, strict=True)
        ]


def make_face_detector(name: str = "mediapipe", **kwargs: Any) -> FaceDetector:
    """A detector by registry name (the CLI's ``--face-detector`` choices are the registry keys)."""
    return FACE_DETECTORS.get(name)(**kwargs)


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


def embed_image(image: np.ndarray, detector: FaceDetector | None = None,
                embedder: FaceEmbedder | None = None) -> np.ndarray:
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
