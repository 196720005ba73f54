"""The person vector, per timestep (``PERSON_LAYOUT``), and its relative-position part.

* ``expression`` (128): fer's emotion CNN penultimate map, globally averaged;
* ``emotions`` (7): its softmax over :data:`perr.features.person.expression.FER_EMOTIONS`;
* ``pose`` (1 + 99): a flag and 33 MediaPipe pose keypoints (x, y relative to the face centre in face
  heights, visibility) of the body that belongs to this face;
* ``relation`` (14): own box and the other character's box (centre x, y, width, height as fractions of
  the frame), other present, offset to the other (dx, dy), centre distance (frame diagonals), IoU and
  intersection over the smaller box.
"""

from __future__ import annotations

import numpy as np

from perr.faces import FaceBox, iou

N_POSE = 33
N_EMOTIONS = 7
#: Named slices of the person vector, in order.
PERSON_LAYOUT: tuple[tuple[str, int], ...] = (
    ("expression", 128),
    ("emotions", N_EMOTIONS),
    ("pose_flag", 1),
    ("pose", 3 * N_POSE),
    ("relation", 14),
)
PERSON_DIM = sum(n for _, n in PERSON_LAYOUT)


def person_slices() -> dict[str, slice]:
    out, i = {}, 0
    for name, n in PERSON_LAYOUT:
        out[name] = slice(i, i + n)
        i += n
    return out


def relation_features(own: FaceBox, other: FaceBox | None, width: int, height: int) -> np.ndarray:
    """The 14 relative-position values (see module docstring)."""

    def norm(b: FaceBox) -> list[float]:
        cx, cy = b.center
        return [cx / width, cy / height, b.w / width, b.h / height]

    v = np.zeros(14, np.float32)
    v[0:4] = norm(own)
    if other is not None:
        v[4:8] = norm(other)
        v[8] = 1.0
        dx, dy = v[4] - v[0], v[5] - v[1]
        v[9:11] = dx, dy
        v[11] = np.hypot(dx * width, dy * height) / np.hypot(width, height)
        v[12] = iou(own, other)
        small = min(own.area, other.area)
        v[13] = own.intersection(other) / small if small > 0 else 0.0
    return v
