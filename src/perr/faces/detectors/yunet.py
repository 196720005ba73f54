"""YuNet (``yunet``): libfacedetection's CNN, compiled with its weights into the ``yuface`` wheel
(``yuface==2023.5.1``, BSD-3; https://github.com/ShiqiYu/libfacedetection). Finds faces down to
~10–15 px; ~25 ms a 640×360 frame on one core (``benchmarks/results/detectors.json``)."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from perr.faces.box import FaceBox
from perr.faces.detectors.base import FACE_DETECTORS, MAX_FACES, FaceDetector, fit_within, rgb_uint8, to_boxes

#: yuface warns above 960 px (its anchors were tuned for smaller inputs): larger frames are shrunk to it.
MAX_SIDE = 960

# yuface's extension may keep buffers between calls: one call at a time in a process.
_LOCK = threading.Lock()


def _openmp(package: Path) -> ctypes.CDLL | None:
    """The OpenMP runtime the yuface wheel bundles (auditwheel's ``yuface.libs/libgomp-*.so``), if any."""
    libs = sorted((package.parent / "yuface.libs").glob("libgomp*.so*"))
    return ctypes.CDLL(str(libs[0])) if libs else None


@FACE_DETECTORS.register("yunet")
class YunetFaceDetector(FaceDetector):
    """YuNet via ``yuface``: box, score and 5 keypoints (eyes, nose tip, mouth corners, as the subject's
    right eye first). yuface scores faces 0–100; boxes carry score/100, so `min_confidence` is on the
    same 0–1 scale as every other detector.

    `threads` caps the OpenMP threads of yuface's own runtime (default 1: on a loaded 2-core machine its
    default of one thread per core made a 640×360 frame take 120–370 ms against 25–28 ms on one thread;
    ``None`` leaves OpenMP's default). `max_side` shrinks larger frames before detection and maps the
    boxes back (yuface warns above 960 px). `min_side` upscales smaller frames first (``min_side=960`` on
    a 640×360 frame: every face of 15–24 px in the tests' fixture found, at about twice the cost:
    ``benchmarks/results/detectors.json``)."""

    name = "yunet"

    def __init__(
        self,
        min_confidence: float = 0.7,  # the build's default: on the dev set 0.7 keeps faces and drops
        max_faces: int = MAX_FACES,  # false ones on the backs of heads (benchmarks/results/characters.json)
        max_side: int | None = MAX_SIDE,
        min_side: int | None = None,
        threads: int | None = 1,
    ) -> None:
        import yuface.yuface as native

        self._detect = native.detect
        self._min = float(min_confidence)
        self._max = max_faces
        self._max_side = max_side
        self._min_side = min_side
        self._threads = threads
        self._omp = _openmp(Path(native.__file__).parent) if threads is not None else None

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        image = rgb_uint8(image)
        h, w = image.shape[:2]
        small, scale = fit_within(image, self._max_side, self._min_side)
        bgr = np.ascontiguousarray(small[:, :, ::-1])
        with _LOCK:
            if self._omp is not None:
                self._omp.omp_set_num_threads(self._threads)  # per calling thread in OpenMP
            res = np.asarray(self._detect(bgr), np.float64).reshape(-1, 16)
        scores = res[:, 0] / 100.0
        res = res[scores >= self._min]
        scores = scores[scores >= self._min]
        x, y, bw, bh = res[:, 1], res[:, 2], res[:, 3], res[:, 4]
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)
        kps = res[:, 5:15].reshape(-1, 5, 2)
        return to_boxes(boxes, scores, kps, w, h, scale, self._max)
