"""Face tracks: detections linked across sampled frames, one identity descriptor per track (grouping tracks
into people is :mod:`perr.faces.clustering`).

Tracking is streaming (``FaceTracker.update`` per sampled frame), so a 45-minute episode never holds its
frames in memory: a track keeps only a few face crops (its largest, most confident faces), from which
one identity descriptor per track is computed when needed — never one per frame. The build tracks
within shots and clusters tracks into characters; the person features link the detections of a clip's
timesteps with the same tracker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perr.faces.box import FaceBox, iou
from perr.faces.identity import FaceEmbedder, mean_descriptors

#: Crops kept per track for its descriptor (largest × most confident faces). Two make a track's mean
#: descriptor steady enough to join the shots of one person on Megamind.avi; one does not.
CROPS_PER_TRACK = 2


@dataclass
class TrackedFace:
    time: float
    box: FaceBox
    index: int = 0  # position of the box in the detections of its frame


@dataclass
class Track:
    """One person followed through consecutive sampled frames (of one shot, in the build).

    `faces` are the person's face detections; `bodies` their whole-body detections (the build's person
    detector, on fewer frames), linked to the face track by :func:`perr.faces.persons.link_bodies`. A
    person seen only from behind or too small for a face has bodies and no faces."""

    id: int
    shot: int
    faces: list[TrackedFace] = field(default_factory=list)
    crops: list[tuple[float, np.ndarray, FaceBox]] = field(
        default_factory=list
    )  # (quality, crop, box in crop)
    embedding: np.ndarray | None = None
    bodies: list[TrackedFace] = field(default_factory=list)
    #: Largest change of the pixels where the face was first seen, since then (mean absolute difference of
    #: 16×16 grey thumbnails of that region, 0–255); None when not measured. A face that never changes for seconds is a picture:
    #: a photo, a poster, a paused screen (:func:`is_still`).
    motion: float | None = None
    _first_look: np.ndarray | None = field(default=None, repr=False, compare=False)
    _first_box: FaceBox | None = field(default=None, repr=False, compare=False)

    @property
    def observations(self) -> list[TrackedFace]:
        """The detections that follow this track: its faces, or its bodies when it has no face."""
        return self.faces or self.bodies

    @property
    def boxes(self) -> list[FaceBox]:
        return [f.box for f in self.observations]

    @property
    def kind(self) -> str:
        """``face``, ``body`` (no face seen) or ``face+body``."""
        return "face+body" if self.faces and self.bodies else ("face" if self.faces else "body")

    @property
    def start(self) -> float:
        return min(o[0].time for o in (self.faces, self.bodies) if o)

    @property
    def end(self) -> float:
        return max(o[-1].time for o in (self.faces, self.bodies) if o)

    @property
    def last(self) -> FaceBox:
        return self.observations[-1].box

    def face_height(self) -> float | None:
        """Median face box height (px of the sampled frames), None without faces."""
        return float(np.median([f.box.h for f in self.faces])) if self.faces else None

    def best_crop(self) -> np.ndarray | None:
        return self.crops[0][1] if self.crops else None


def _quality(box: FaceBox) -> float:
    return box.area * box.score


class FaceTracker:
    """Greedy association of detections between consecutive sampled frames.

    A detection joins the track whose last box overlaps it most (IoU ≥ `min_iou`), or failing that
    (when `max_center_shift` is set) whose centre is within `max_center_shift` face widths — at 2–4
    samples per second faces move. Tracks end at shot boundaries (`new_shot`) or after `max_gap`
    seconds unseen; tracks with fewer than `min_faces` faces are dropped. `crops` face crops per
    track are kept for its identity descriptor (0: none, and `update` needs no image).
    """

    def __init__(
        self,
        min_iou: float = 0.2,
        max_center_shift: float | None = 0.6,
        max_gap: float = 1.0,
        min_faces: int = 2,
        min_size: float = 24.0,
        crops: int = CROPS_PER_TRACK,
    ) -> None:
        self.min_iou = min_iou
        self.max_center_shift = max_center_shift
        self.max_gap = max_gap
        self.min_faces = min_faces
        self.min_size = min_size
        self.crops = crops
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next = 0
        self._shot = 0

    def _close(self, tracks: list[Track]) -> None:
        self.finished.extend(t for t in tracks if len(t.observations) >= self.min_faces)

    def new_shot(self, shot: int) -> None:
        self._close(self.active)
        self.active = []
        self._shot = shot

    def _affinity(self, track: Track, box: FaceBox) -> float:
        o = iou(track.last, box)
        if o >= self.min_iou:
            return 1.0 + o
        if self.max_center_shift is None:
            return -1.0
        (ax, ay), (bx, by) = track.last.center, box.center
        width = max(track.last.x1 - track.last.x0, box.x1 - box.x0, 1.0)
        shift = float(np.hypot(ax - bx, ay - by)) / width
        return 1.0 - shift if shift <= self.max_center_shift else -1.0

    def update(self, time: float, image: np.ndarray | None, boxes: list[FaceBox]) -> None:
        """Link the detections of one sampled frame (in time order) to the open tracks."""
        stale = [t for t in self.active if time - t.end > self.max_gap]
        if stale:
            self._close(stale)
            self.active = [t for t in self.active if t not in stale]
        kept = [(i, b) for i, b in enumerate(boxes) if min(b.x1 - b.x0, b.y1 - b.y0) >= self.min_size]
        pairs = sorted(
            (
                (self._affinity(t, b), ti, bi)
                for ti, t in enumerate(self.active)
                for bi, (_, b) in enumerate(kept)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_b: set[int] = set()
        for aff, ti, bi in pairs:
            if aff < 0 or ti in used_t or bi in used_b:
                continue
            used_t.add(ti)
            used_b.add(bi)
            self._add(self.active[ti], time, image, *kept[bi])
        for bi, (i, b) in enumerate(kept):
            if bi not in used_b:
                t = Track(self._next, self._shot)
                self._next += 1
                self.active.append(t)
                self._add(t, time, image, i, b)

    def _add(self, track: Track, time: float, image: np.ndarray | None, index: int, box: FaceBox) -> None:
        track.faces.append(TrackedFace(time, box, index))
        if self.crops <= 0 or image is None:
            return
        if track._first_look is None:  # the first box's region, looked at again in every later frame:
            track._first_look, track.motion = _look(image, box), 0.0  # box jitter is no motion
            track._first_box = box
        else:
            look = _look(image, track._first_box)
            track.motion = max(track.motion or 0.0, float(np.abs(look - track._first_look).mean()))
        q = _quality(box)
        if len(track.crops) < self.crops or q > track.crops[-1][0]:
            crop, local = _crop_with_box(image, box)
            track.crops.append((q, crop, local))
            track.crops.sort(key=lambda c: -c[0])
            del track.crops[self.crops :]

    def finish(self) -> list[Track]:
        """Close every open track; the tracks kept, in the order they ended."""
        self._close(self.active)
        self.active = []
        return self.finished


#: A face track this still (see Track.motion) for at least STILL_SECONDS is a picture, not a person.
#: Measured on the region where the face was first seen: a photo made into a video 0.0 over 5.7 s, a
#: photo pinned into a real scene 0.5 over 11 s; the people of Megamind.avi and the Hamilton clip 12–94.
STILL_MOTION = 3.0
STILL_SECONDS = 2.0


def _look(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """A 16×16 grey thumbnail of the face box (what `Track.motion` compares)."""
    import cv2

    h, w = image.shape[:2]
    x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
    x1, y1 = min(w, max(x0 + 1, int(box.x1))), min(h, max(y0 + 1, int(box.y1)))
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


def is_still(track: Track) -> bool:
    """Whether a face track never moved for STILL_SECONDS or more: a photo, a poster, a still screen."""
    return (
        track.motion is not None
        and bool(track.faces)
        and track.faces[-1].time - track.faces[0].time >= STILL_SECONDS
        and track.motion < STILL_MOTION
    )


def _crop_with_box(image: np.ndarray, box: FaceBox, margin: float = 0.5) -> tuple[np.ndarray, FaceBox]:
    """A crop around the face large enough for dlib's landmarks, and the box in crop coordinates."""
    h, w = image.shape[:2]
    mx, my = (box.x1 - box.x0) * margin, (box.y1 - box.y0) * margin
    x0, y0 = int(max(0, box.x0 - mx)), int(max(0, box.y0 - my))
    x1, y1 = int(min(w, box.x1 + mx)), int(min(h, box.y1 + my))
    local = FaceBox(box.x0 - x0, box.y0 - y0, box.x1 - x0, box.y1 - y0, box.score)
    return image[y0:y1, x0:x1].copy(), local


def embed_tracks(tracks: list[Track], embedder: FaceEmbedder | None = None) -> None:
    """Set each track's embedding: the mean descriptor of its kept crops (a few per track)."""
    vecs = mean_descriptors([[(crop, local) for _, crop, local in t.crops] for t in tracks], embedder)
    for t, vec in zip(tracks, vecs, strict=True):
        t.embedding = vec
