"""MediaPipe BlazeFace (``mediapipe``, the default): 1–3 ms a 640 px frame, faces of ≥ ~40 px."""

from __future__ import annotations

import numpy as np

from perr.faces.box import FaceBox
from perr.faces.detectors.base import FACE_DETECTORS, MAX_FACES, FaceDetector


@FACE_DETECTORS.register("mediapipe")
class MediapipeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace (legacy solutions API). model=1 is full range (faces up to ~5 m)."""

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5, model: int = 1, max_faces: int = MAX_FACES) -> None:
        import mediapipe as mp

        self._fd = mp.solutions.face_detection.FaceDetection(
            model_selection=model, min_detection_confidence=min_confidence
        )
        self._max = max_faces

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
        return sorted(out, key=lambda b: -b.score)[: self._max]

    def close(self) -> None:
        self._fd.close()
