"""Face tracks within shots → characters across the shots of a clip → pair candidates.

Tracking is streaming (``FaceTracker.update`` per sampled frame) so a 45-minute episode never holds
its frames in memory: a track keeps only a few face crops (its largest, sharpest faces) from which
one identity embedding per track is computed when the track ends — never one per frame. Tracks are
then clustered into characters by agglomerative clustering (average linkage) of their mean
embeddings with dlib's same-person threshold; characters are ranked by occurrences (sampled frames
their face appears in), and the top three are the pair candidates (paper §3.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perr.build.faces import FaceBox, FaceEmbedder, embed_faces, iou

#: Crops kept per track for its embedding (largest × most confident faces). Two make a track's mean
#: descriptor steady enough to join the shots of one person on Megamind.avi; one does not.
CROPS_PER_TRACK = 2


@dataclass
class TrackedFace:
    time: float
    box: FaceBox


@dataclass
class Track:
    """One face followed through the sampled frames of one shot."""

    id: int
    shot: int
    faces: list[TrackedFace] = field(default_factory=list)
    crops: list[tuple[float, np.ndarray, FaceBox]] = field(default_factory=list)  # (quality, crop, box in crop)
    embedding: np.ndarray | None = None

    @property
    def start(self) -> float:
        return self.faces[0].time

    @property
    def end(self) -> float:
        return self.faces[-1].time

    @property
    def last(self) -> FaceBox:
        return self.faces[-1].box

    def best_crop(self) -> np.ndarray | None:
        return self.crops[0][1] if self.crops else None


def _quality(box: FaceBox) -> float:
    return box.area * box.score


class FaceTracker:
    """Greedy IoU / centre-distance association of detections between consecutive sampled frames.

    At 2–4 samples per second faces move; a detection joins the track whose last box overlaps it
    most (IoU ≥ `min_iou`), or failing that whose centre is within `max_center_shift` face widths.
    Tracks end at shot boundaries (`new_shot`) or after `max_gap` seconds unseen.
    """

    def __init__(self, min_iou: float = 0.2, max_center_shift: float = 0.6, max_gap: float = 1.0,
                 min_faces: int = 2, min_size: float = 24.0, crops: int = CROPS_PER_TRACK) -> None:
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
        self.finished.extend(t for t in tracks if len(t.faces) >= self.min_faces)

    def new_shot(self, shot: int) -> None:
        self._close(self.active)
        self.active = []
        self._shot = shot

    def _affinity(self, track: Track, box: FaceBox) -> float:
        o = iou(track.last, box)
        if o >= self.min_iou:
            return 1.0 + o
        (ax, ay), (bx, by) = track.last.center, box.center
        width = max(track.last.x1 - track.last.x0, box.x1 - box.x0, 1.0)
        shift = float(np.hypot(ax - bx, ay - by)) / width
        return 1.0 - shift if shift <= self.max_center_shift else -1.0

    def update(self, time: float, image: np.ndarray, boxes: list[FaceBox]) -> None:
        stale = [t for t in self.active if time - t.end > self.max_gap]
        if stale:
            self._close(stale)
            self.active = [t for t in self.active if t not in stale]
        boxes = [b for b in boxes if min(b.x1 - b.x0, b.y1 - b.y0) >= self.min_size]
        pairs = sorted(
            ((self._affinity(t, b), ti, bi) for ti, t in enumerate(self.active) for bi, b in enumerate(boxes)),
            reverse=True,
        )
        used_t: set[int] = set()
        used_b: set[int] = set()
        for aff, ti, bi in pairs:
            if aff < 0 or ti in used_t or bi in used_b:
                continue
            used_t.add(ti)
            used_b.add(bi)
            self._add(self.active[ti], time, image, boxes[bi])
        for bi, b in enumerate(boxes):
            if bi not in used_b:
                t = Track(self._next, self._shot)
                self._next += 1
                self.active.append(t)
                self._add(t, time, image, b)

    def _add(self, track: Track, time: float, image: np.ndarray, box: FaceBox) -> None:
        track.faces.append(TrackedFace(time, box))
        q = _quality(box)
        if len(track.crops) < self.crops or q > track.crops[-1][0]:
            crop, local = _crop_with_box(image, box)
            track.crops.append((q, crop, local))
            track.crops.sort(key=lambda c: -c[0])
            del track.crops[self.crops:]

    def finish(self) -> list[Track]:
        self._close(self.active)
        self.active = []
        return self.finished


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
    for t in tracks:
        vecs = [embed_faces(crop, [local], embedder)[0] for _, crop, local in t.crops]
        t.embedding = np.mean(vecs, axis=0) if vecs else None


def cluster_tracks(tracks: list[Track], threshold: float = 0.5) -> list[list[Track]]:
    """Group tracks into identities: average-linkage agglomerative clustering on track embeddings.

    Two tracks in the same sampled frame are never the same person, so their distance is set to
    infinity before clustering (a cannot-link constraint). Tracks without an embedding (not needed
    for any pair) stay singletons.
    """
    singles = [[t] for t in tracks if t.embedding is None]
    tracks = [t for t in tracks if t.embedding is not None]
    if len(tracks) <= 1:
        return ([tracks] if tracks else []) + singles
    from sklearn.cluster import AgglomerativeClustering

    x = np.stack([t.embedding for t in tracks])  # type: ignore[misc]
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    times = [{round(f.time, 4) for f in t.faces} for t in tracks]
    for i in range(len(tracks)):
        for j in range(i + 1, len(tracks)):
            if times[i] & times[j]:
                d[i, j] = d[j, i] = 1e3
    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    ).fit_predict(d)
    groups: dict[int, list[Track]] = {}
    for t, lab in zip(tracks, labels, strict=True):
        groups.setdefault(int(lab), []).append(t)
    return list(groups.values()) + singles


@dataclass
class CharacterSummary:
    """One identity inside a time window: its spans, occurrences and best face crop."""

    tracks: list[Track]
    spans: list[tuple[float, float]]
    occurrences: int
    thumbnail: np.ndarray | None
    embedding: np.ndarray | None  # mean identity descriptor (None when its tracks were not embedded)

    @property
    def seconds(self) -> float:
        return sum(e - s for s, e in self.spans)


def _merge_spans(spans: list[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def summarise(
    groups: list[list[Track]], start: float, end: float, sample_step: float, cuts: list[float] | None = None
) -> list[CharacterSummary]:
    """Characters inside [start, end], most frequent first.

    A sampled face at time t stands for [t, t + step) on screen, so spans are the union of those
    intervals (clipped to the window and to the next shot cut in `cuts`; gaps under half a step,
    from frame-time jitter, are closed); occurrences count sampled frames with the face.
    """
    import bisect

    cuts = sorted(cuts or [])

    def stop(t: float) -> float:
        i = bisect.bisect_right(cuts, t + 1e-9)
        return min(end, t + sample_step, cuts[i] if i < len(cuts) else np.inf)

    out: list[CharacterSummary] = []
    for g in groups:
        times = sorted({f.time for t in g for f in t.faces if start <= f.time < end})
        if not times:
            continue
        spans = _merge_spans([(t, stop(t)) for t in times], gap=0.5 * sample_step)
        crops = sorted((c for t in g for c in t.crops), key=lambda c: -c[0])
        vecs = [t.embedding for t in g if t.embedding is not None]
        emb = np.mean(vecs, axis=0) if vecs else None
        out.append(CharacterSummary(g, spans, len(times), crops[0][1] if crops else None, emb))
    out.sort(key=lambda c: (-c.occurrences, c.spans[0][0]))
    return out


__all__ = [
    "CharacterSummary",
    "FaceTracker",
    "Track",
    "cluster_tracks",
    "embed_tracks",
    "summarise",
]
