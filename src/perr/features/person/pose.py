"""Body pose of the person behind a face: MediaPipe pose (``model_complexity=1``, the packaged model)
on a crop around the face; the body is kept only when its nose lies in that face."""

from __future__ import annotations

from typing import Any

import numpy as np

from perr.faces import FaceBox
from perr.logs import native_noise_filtered


class BodyPose:
    """33 × (x, y, visibility) keypoints relative to the face (centre, in face heights), or None."""

    def __init__(self) -> None:
        self._model: Any = None

    def model(self) -> Any:
        if self._model is None:
            import mediapipe as mp

            # static_image_mode: every crop is independent, so results never depend on clip order.
            with native_noise_filtered():  # MediaPipe's start-up chatter, on the first image
                self._model = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
                self._model.process(np.zeros((64, 64, 3), np.uint8))
        return self._model

    def __call__(self, frame: np.ndarray, face: FaceBox) -> np.ndarray | None:
        H, W = frame.shape[:2]
        cx, _ = face.center
        x0, x1 = int(max(0, cx - 2.5 * face.w)), int(min(W, cx + 2.5 * face.w))
        y0, y1 = int(max(0, face.y0 - 0.75 * face.h)), int(min(H, face.y1 + 5.0 * face.h))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        res = self.model().process(crop)
        if res.pose_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        pts = np.array([[x0 + p.x * (x1 - x0), y0 + p.y * (y1 - y0), p.visibility] for p in lm], np.float32)
        if not face.contains(pts[0, 0], pts[0, 1], grow=0.25):  # the body belongs to another face
            return None
        fx, fy = face.center
        scale = max(face.h, 1.0)
        pts[:, 0] = (pts[:, 0] - fx) / scale
        pts[:, 1] = (pts[:, 1] - fy) / scale
        return pts.reshape(-1)
