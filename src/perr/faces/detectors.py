"""Face detectors behind one registry (``FACE_DETECTORS``), the CLI's ``--face-detector`` choices.

``mediapipe`` (default; BlazeFace full range, 1–3 ms per 640 px frame) and ``dlib-hog`` (faces of
≥ ~80 px). The paper's MTCNN can be added as one more registered class by a user who has its weights.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from perr.faces.box import FaceBox
from perr.registry import Registry


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
            box = FaceBox(
                bb.xmin * w,
                bb.ymin * h,
                (bb.xmin + bb.width) * w,
                (bb.ymin + bb.height) * h,
                float(d.score[0]),
                kps,
            ).clip(w, h)
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
