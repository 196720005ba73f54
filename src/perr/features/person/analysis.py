"""The per-clip work of the person features, done once for both roles: faces → roles → expression,
pose and relative position (paper §5.1 "person-wise"; layout in :mod:`.layout`)."""

from __future__ import annotations

import numpy as np

from perr.faces import FaceDetector, make_face_detector
from perr.features.base import ClipContext
from perr.features.person.expression import ExpressionModel, fer_crop
from perr.features.person.layout import PERSON_DIM, person_slices, relation_features
from perr.features.person.pose import BodyPose
from perr.features.person.roles import RoleAssigner
from perr.logs import native_noise_filtered


class PersonAnalysis:
    """Detection, roles, expression and pose for both roles; models load lazily and stay loaded."""

    def __init__(
        self, detector: str = "mediapipe", pose: bool = True, identity: bool = True, device: str = "cpu"
    ) -> None:
        self.detector_name = detector
        self.device = device
        self.use_pose = pose
        self.use_identity = identity
        self._detector: FaceDetector | None = None
        self._expr: ExpressionModel | None = None
        self._pose = BodyPose()

    def detector(self) -> FaceDetector:
        if self._detector is None:
            with native_noise_filtered():  # MediaPipe's start-up chatter, on the first detection
                self._detector = make_face_detector(self.detector_name)
                self._detector.detect(np.zeros((64, 64, 3), np.uint8))
        return self._detector

    def expression(self) -> ExpressionModel:
        if self._expr is None:
            self._expr = ExpressionModel(device=self.device)
        return self._expr

    def run(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        """Features [2, T, PERSON_DIM] and masks [2, T] for roles (a, b)."""
        import cv2

        T = ctx.T
        x = np.zeros((2, T, PERSON_DIM), np.float32)
        mask = np.zeros((2, T), np.uint8)
        roles = RoleAssigner(self.detector(), self.use_identity)
        if ctx.clip.characters:
            on = np.stack([ctx.on_screen(c) for c in ctx.pair])  # [2, T]
            if not on.any():
                return x, mask
            frames = ctx.frames
            boxes = roles.assign(ctx, on, frames)
        else:  # no face tracks in the manifest (e.g. ERATO): the two faces seen most often
            frames = ctx.frames
            boxes = roles.auto_assign(ctx, frames)
        H, W = frames.shape[1:3]
        sl = person_slices()
        # Expression: one batch for every (role, step) with a box.
        jobs = [(r, t) for r in range(2) for t in range(T) if boxes[r][t] is not None]
        if not jobs:
            return x, mask
        grays: dict[int, np.ndarray] = {}
        crops = []
        size = self.expression().size
        for r, t in jobs:
            if t not in grays:
                grays[t] = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
            box = boxes[r][t]
            assert box is not None
            crops.append(fer_crop(grays[t], box, size))
        emb, probs = self.expression()(np.stack(crops))
        for k, (r, t) in enumerate(jobs):
            own = boxes[r][t]
            assert own is not None
            x[r, t, sl["expression"]] = emb[k]
            x[r, t, sl["emotions"]] = probs[k]
            if self.use_pose:
                kp = self._pose(frames[t], own)
                if kp is not None:
                    x[r, t, sl["pose_flag"]] = 1.0
                    x[r, t, sl["pose"]] = kp
            x[r, t, sl["relation"]] = relation_features(own, boxes[1 - r][t], W, H)
            mask[r, t] = 1
        return x, mask
