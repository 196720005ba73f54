"""MTCNN (``mtcnn``), the face detector of the paper: three cascaded CNNs (Zhang et al. 2016, "Joint Face
Detection and Alignment using Multi-task Cascaded Convolutional Networks").

The weights are the ones ``facenet-pytorch==2.6.0`` ships (``data/pnet.pt``, ``rnet.pt``, ``onet.pt``,
MIT; converted there from the authors' Caffe models by way of davidsandberg/facenet). That package pins
torch < 2.3 and imports torchvision, so it is installed ``--no-deps`` and never imported: its state dicts
are read with ``torch.load(weights_only=True)`` into perr's own modules (:mod:`perr.faces.detectors.mtcnn_nets`), written from the
architecture in facenet-pytorch's ``models/mtcnn.py`` and the cascade of its
``models/utils/detect_face.py`` (itself after the authors' MATLAB code), without torchvision.

Cascade: an image pyramid (scale factor 0.709, smallest face `min_face` = 12 px by default) through
PNet (fully convolutional, stride 2, 12-px cells), NMS per scale (IoU 0.5) then over all (0.7), box
regression, squared boxes; RNet on 24-px crops (threshold, NMS 0.7, regression); ONet on 48-px crops
(score, regression, 5 landmarks; NMS 0.7 over the smaller area). Crops reaching outside the image are
zero-padded, as in the authors' code.

Checked against facenet-pytorch's own cascade and modules (run outside the repository with a stand-in
for torchvision's NMS): the same faces on 5 of 6 real images and the small-face fixture (8 of 8), box IoU
0.78–0.97 on large faces, landmarks within ~4 px; the rest is resampling (OpenCV's area interpolation
against torch's) and the zero padding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perr.faces.box import FaceBox
from perr.faces.detectors.base import (
    FACE_DETECTORS,
    MAX_FACES,
    FaceDetector,
    fit_within,
    model_path,
    nms,
    rgb_uint8,
    to_boxes,
)

#: $PERR_MTCNN_MODELS: a folder with pnet.pt, rnet.pt, onet.pt (default: facenet-pytorch's data/).
ENV = "PERR_MTCNN_MODELS"
INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"
#: PNet candidates kept (by score) after the pyramid, and RNet survivors passed to ONet (the best by
#: RNet's score: 3 per face asked for by `max_faces`, at least 100): a crowd frame stays bounded (288
#: faces at 1280×720: ~1.3 s at max_faces=64, against 2.5 s uncapped).
MAX_PNET, RNET_PER_FACE, MIN_ONET = 1000, 3, 100


def mtcnn_model_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder of MTCNN's three state dicts: `path`, else $PERR_MTCNN_MODELS, else facenet-pytorch's."""
    return model_path(path, ENV, "facenet_pytorch", "data", install=INSTALL)


def _square(b: np.ndarray) -> np.ndarray:
    """Boxes made square around their centres, side = the longer side (the authors' ``rerec``)."""
    b = b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += (w - side) / 2
    b[:, 1] += (h - side) / 2
    b[:, 2], b[:, 3] = b[:, 0] + side, b[:, 1] + side
    return b


def _regress(b: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Box regression: each side moves by its offset times the box's width or height."""
    w = b[:, 2] - b[:, 0] + (1 if plus_one else 0)
    h = b[:, 3] - b[:, 1] + (1 if plus_one else 0)
    return b[:, :4] + reg * np.stack([w, h, w, h], axis=1)


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """size×size crops (N×size×size×3 float32) of integer boxes, zero-padded where they leave the image."""
    import cv2

    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(np.floor(boxes[:, :4]).astype(np.int64)):
        bw, bh = x1 - x0 + 1, y1 - y0 + 1
        if bw <= 0 or bh <= 0:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


@FACE_DETECTORS.register("mtcnn")
class MtcnnFaceDetector(FaceDetector):
    """The paper's MTCNN: box, ONet probability (0–1) and 5 keypoints (eyes, nose, mouth corners).

    `min_confidence` is the last stage's threshold (the paper's 0.7 by default); `thresholds` are the
    first two stages'. `min_face` is the smallest face searched (12 px: PNet's cell; larger is faster);
    `max_side` shrinks larger frames first. Runs in torch on one thread (the build's parallelism is its
    worker processes, and the boxes then never depend on the thread count). Weights load on
    first use from `model_dir` / $PERR_MTCNN_MODELS / facenet-pytorch's data folder."""

    name = "mtcnn"

    def __init__(
        self,
        min_confidence: float = 0.7,
        max_faces: int = MAX_FACES,
        min_face: float = 12.0,
        thresholds: tuple[float, float] = (0.6, 0.7),
        factor: float = 0.709,
        max_side: int | None = 960,
        model_dir: str | os.PathLike | None = None,
    ) -> None:
        if min_face < 12 or not 0 < factor < 1:
            raise ValueError(f"min_face must be ≥ 12 and factor in (0, 1), got {min_face}, {factor}")
        self._dir = mtcnn_model_dir(model_dir)
        self._min = float(min_confidence)
        self._max = max_faces
        self._min_face = float(min_face)
        self._thresholds = thresholds
        self._factor = factor
        self._max_side = max_side
        self._nets: tuple[Any, Any, Any] | None = None

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        image = rgb_uint8(image)
        h, w = image.shape[:2]
        small, scale = fit_within(image, self._max_side)
        if self._nets is None:
            from perr.faces.detectors.mtcnn_nets import load_nets

            self._nets = load_nets(self._dir)
        from perr.faces.dlib_resnet import one_thread

        with one_thread():  # boxes independent of the process's thread count; parallel across workers
            boxes, scores, kps = self._cascade(small)
        return to_boxes(boxes, scores, kps, w, h, scale, self._max)

    def _pyramid(self, h: int, w: int) -> list[float]:
        scales, s = [], 12.0 / self._min_face
        side = min(h, w) * s
        while side >= 12:
            scales.append(s)
            s *= self._factor
            side *= self._factor
        return scales

    def _cascade(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import cv2

        from perr.faces.detectors.mtcnn_nets import run

        pnet, rnet, onet = self._nets  # type: ignore[misc]
        h, w = image.shape[:2]
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
        # Stage 1: PNet over the pyramid.
        found = []
        for s in self._pyramid(h, w):
            sized = cv2.resize(image, (int(w * s + 1), int(h * s + 1)), interpolation=cv2.INTER_AREA)
            reg, prob = run(pnet, sized)
            prob, reg = prob[0], reg[0]
            ys, xs = np.nonzero(prob >= self._thresholds[0])
            if len(ys) == 0:
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float64)
            q0, q1 = np.floor((2 * cells + 1) / s), np.floor((2 * cells + 12) / s)
            rows = np.concatenate([q0, q1, prob[ys, xs, None], reg[:, ys, xs].T], axis=1)
            found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
        if not found:
            return empty
        rows = np.concatenate(found)
        rows = rows[np.argsort(-rows[:, 4], kind="stable")[:MAX_PNET]]
        rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
        boxes = _square(_regress(rows[:, :4], rows[:, 5:9], plus_one=False))
        # Stage 2: RNet on 24-px crops.
        reg, prob = run(rnet, _crops(image, boxes, 24))
        ok = prob > self._thresholds[1]
        boxes, prob, reg = boxes[ok], prob[ok], reg[ok]
        keep = nms(boxes, prob, 0.7)[: max(MIN_ONET, RNET_PER_FACE * self._max)]
        if len(keep) == 0:
            return empty
        boxes = _square(_regress(boxes[keep], reg[keep]))
        # Stage 3: ONet on 48-px crops: score, regression, landmarks.
        reg, marks, prob = run(onet, _crops(image, boxes, 48))
        ok = prob > self._min
        boxes, prob, reg, marks = np.floor(boxes[ok]), prob[ok], reg[ok], marks[ok]
        if len(boxes) == 0:
            return empty
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        kps = np.stack([boxes[:, :1] + marks[:, :5] * bw - 1, boxes[:, 1:2] + marks[:, 5:] * bh - 1], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes, prob, 0.7, min_area=True)
        return boxes[keep].astype(np.float32), prob[keep].astype(np.float32), kps[keep].astype(np.float32)
