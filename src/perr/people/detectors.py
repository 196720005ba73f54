"""Person (body) detectors behind one registry (``PERSON_DETECTORS``), the build's ``--person-detector``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from perr.faces.box import FaceBox
from perr.registry import Registry


class PersonDetector:
    """Interface: ``detect(rgb uint8 H×W×3) -> list[FaceBox]`` (whole-person boxes, no keypoints)."""

    name: ClassVar[str] = ""

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        raise NotImplementedError

    def close(self) -> None:
        return None


PERSON_DETECTORS: Registry[type[PersonDetector]] = Registry("person detector")


def make_person_detector(name: str, **kwargs: Any) -> PersonDetector:
    return PERSON_DETECTORS.get(name)(**kwargs)
