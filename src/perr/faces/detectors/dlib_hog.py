"""dlib's HOG + linear SVM frontal face detector (``dlib-hog``)."""

from __future__ import annotations

import numpy as np

from perr.faces.box import FaceBox
from perr.faces.detectors.base import FACE_DETECTORS, MAX_FACES, FaceDetector


@FACE_DETECTORS.register("dlib-hog")
class DlibHogFaceDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal detector: CPU-cheap, frontal faces of ≥ ~80 px (upsample=0).
    Its scores are SVM margins (not probabilities): `min_confidence` is a margin (0 = dlib's default)."""

    name = "dlib-hog"

    def __init__(self, upsample: int = 0, min_confidence: float = 0.0, max_faces: int = MAX_FACES) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self._upsample = upsample
        self._min = min_confidence
        self._max = max_faces

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        h, w = image.shape[:2]
        rects, scores, _ = self._det.run(np.ascontiguousarray(image), self._upsample, self._min)
        out = [
            FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(s)).clip(w, h)
            for r, s in zip(rects, scores, strict=True)
        ]
        return sorted(out, key=lambda b: -b.score)[: self._max]
