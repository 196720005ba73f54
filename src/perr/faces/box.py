"""The face box every stage shares: pixel coordinates in the image it was found in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaceBox:
    """A face in pixel coordinates; `score` is the detector's confidence, `keypoints` its landmarks."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    keypoints: tuple[tuple[float, float], ...] = field(default=(), compare=False)

    @property
    def w(self) -> float:
        return max(0.0, self.x1 - self.x0)

    @property
    def h(self) -> float:
        return max(0.0, self.y1 - self.y0)

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))

    def clip(self, width: int, height: int) -> FaceBox:
        return FaceBox(
            max(0.0, self.x0),
            max(0.0, self.y0),
            min(float(width), self.x1),
            min(float(height), self.y1),
            self.score,
            self.keypoints,
        )

    def scaled(self, sx: float, sy: float) -> FaceBox:
        kp = tuple((x * sx, y * sy) for x, y in self.keypoints)
        return FaceBox(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy, self.score, kp)

    def intersection(self, other: FaceBox) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        return ix * iy

    def contains(self, x: float, y: float, grow: float = 0.0) -> bool:
        """Whether (x, y) lies inside the box grown by `grow` times its size on each side."""
        gx, gy = grow * self.w, grow * self.h
        return self.x0 - gx <= x <= self.x1 + gx and self.y0 - gy <= y <= self.y1 + gy


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes (0 when both are empty)."""
    inter = a.intersection(b)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0
