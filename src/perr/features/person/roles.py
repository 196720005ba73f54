"""Who is who: the face box of each role of the pair (a, b) at each timestep of a clip.

A character is on screen where its manifest spans say so (``perr build`` derives them from face
tracks). What the build already computed is reused: a character's saved face boxes (``boxes``) give
its box at every step within MAX_BOX_GAP of a saved box, with no detection; its saved identity
descriptor (``descriptor``) stands for its thumbnail. Only the remaining steps are detected: their
detections are linked into tracks (:class:`perr.faces.FaceTracker`, IoU between consecutive steps),
and each track gets an identity by comparing *one* dlib descriptor per track with each character's
descriptor (identity per track, not per frame).
Without thumbnails the largest face on screen goes to the character the spans put there. A character
on screen whose face is missed at a step reuses its nearest box from the same on-screen run.
A clip with no characters in its manifest (ERATO has no face tracks) gets its pair from the video:
tracks grouped by identity, the two seen at most steps.
"""

from __future__ import annotations

import bisect
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from perr.faces import SAME_PERSON_DISTANCE, FaceBox, FaceDetector, FaceTracker, embed_faces, embed_image, iou
from perr.features.base import ClipContext
from perr.intervals import true_runs
from perr.manifest import Character, split_ref
from perr.video import source_frame_size

TRACK_IOU = 0.3  # consecutive-step boxes with at least this IoU continue one track
#: A saved box this close in time (s) stands for the face at a step. The build samples at 3 fps, so
#: inside a track its boxes are 0.33 s apart; beyond 0.5 s the face may have moved or gone.
MAX_BOX_GAP = 0.5

#: Detections per step, and tracks as (step, index into that step's detections).
Detections = dict[int, list[FaceBox]]
StepTrack = list[tuple[int, int]]
Roles = list[list[FaceBox | None]]


def _version(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=8)
def _read_json(path: str, version: tuple[int, int]) -> Any:
    """A JSON file, parsed once per version: the clips of one video share its tracks file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=256)
def _read_descriptor(path: str, version: tuple[int, int], key: str) -> np.ndarray:
    with np.load(path) as z:
        return np.asarray(z[key], dtype=np.float64)


def load_box_track(path: Path, key: str | None = None) -> list[tuple[float, FaceBox]]:
    """A saved per-frame box track (pixels of the source video), sorted by time. Entries are
    [t, x0, y0, x1, y1] (what ``perr build`` writes) or {"t"|"time": s, "box": [x0, y0, x1, y1]}; the
    file is a list, a {"boxes": [...]} wrapper, or an object of tracks of which `key` picks one."""
    raw: Any = _read_json(str(path), _version(path))
    where = f"{path}#{key}" if key else str(path)
    if key is not None:
        if not isinstance(raw, dict) or key not in raw:
            raise ValueError(f"{where}: no box track with key {key!r}")
        raw = raw[key]
    if isinstance(raw, dict):
        raw = raw.get("boxes", raw.get("track", []))
    out = []
    for i, r in enumerate(raw):
        try:
            if isinstance(r, list | tuple):
                t, b = float(r[0]), r[1:5]
                if len(b) != 4:
                    raise ValueError("expected [t, x0, y0, x1, y1]")
            else:
                t = float(r["t"] if "t" in r else r["time"])
                b = r["box"] if "box" in r else [r["x0"], r["y0"], r["x1"], r["y1"]]
            out.append((t, FaceBox(*map(float, b))))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"{where}: box track entry {i}: {e!r}") from e
    return sorted(out, key=lambda x: x[0])


def box_at(track: list[tuple[float, FaceBox]], t: float, max_gap: float = MAX_BOX_GAP) -> FaceBox | None:
    """The saved box at time t: interpolated between the saved boxes either side when both are within
    max_gap, else the nearest within max_gap, else None."""
    times = [tt for tt, _ in track]
    i = bisect.bisect_left(times, t)
    before = track[i - 1] if i > 0 and t - track[i - 1][0] <= max_gap else None
    after = track[i] if i < len(track) and track[i][0] - t <= max_gap else None
    if before and after:
        span = after[0] - before[0]
        w = 0.0 if span <= 0 else (t - before[0]) / span
        a, b = before[1], after[1]
        return FaceBox(
            a.x0 + w * (b.x0 - a.x0),
            a.y0 + w * (b.y0 - a.y0),
            a.x1 + w * (b.x1 - a.x1),
            a.y1 + w * (b.y1 - a.y1),
        )
    near = before or after
    return near[1] if near else None


def link_detections(steps: list[int], dets: Detections) -> list[StepTrack]:
    """Detections linked over consecutive steps (IoU ≥ TRACK_IOU), tracks in order of creation."""
    tracker = FaceTracker(
        min_iou=TRACK_IOU, max_center_shift=None, max_gap=1.0, min_faces=1, min_size=0.0, crops=0
    )
    for t in steps:
        tracker.update(float(t), None, dets[t])
    return [
        [(int(f.time), f.index) for f in tr.faces] for tr in sorted(tracker.finish(), key=lambda tr: tr.id)
    ]


class RoleAssigner:
    """Finds the face of each role at each step with one face detector (shared by both roles)."""

    def __init__(self, detector: FaceDetector, use_identity: bool = True) -> None:
        self.detector = detector
        self.use_identity = use_identity

    def detect(self, frames: np.ndarray, steps: list[int]) -> Detections:
        return {t: self.detector.detect(frames[t]) for t in steps}

    def assign(self, ctx: ClipContext, on: np.ndarray, frames: np.ndarray) -> Roles:
        """The face box of each role at each step (None where off screen or not found)."""
        T = ctx.T
        H, W = frames.shape[1:3]
        out: Roles = [[None] * T for _ in range(2)]
        saved = [saved_track(ctx, c, W, H) for c in ctx.pair]
        for r in range(2):  # the build's boxes, where it saw the face near the step: no detection
            if saved[r]:
                for t in range(T):
                    if on[r, t]:
                        out[r][t] = box_at(saved[r], float(ctx.times[t]))
        need = [t for t in range(T) if any(on[r, t] and out[r][t] is None for r in range(2))]
        dets = self.detect(frames, need)
        tracks = link_detections(need, dets)
        owner = self.identify(ctx, tracks, dets, frames, on)
        for r in range(2):
            for t in need:
                if not on[r, t] or out[r][t] is not None:
                    continue
                if saved[r]:
                    ref = min(saved[r], key=lambda tb: abs(tb[0] - ctx.times[t]))[1]
                    best = max(dets[t], key=lambda b: iou(b, ref), default=None)
                    out[r][t] = best if best is not None and iou(best, ref) >= TRACK_IOU else ref
                    continue
                # Where two tracks claim the role at one step, the closer identity keeps it.
                claims = [(d, i) for k, (o, d) in owner.items() if o == r for tt, i in tracks[k] if tt == t]
                if claims:
                    out[r][t] = dets[t][min(claims)[1]]
        # Fallbacks for steps the spans mark on screen but no box was assigned.
        for r in range(2):
            for a, b in true_runs(on[r]):
                have = [t for t in range(a, b) if out[r][t] is not None]
                for t in range(a, b):
                    if out[r][t] is not None:
                        continue
                    if have:  # nearest box of the same on-screen run
                        out[r][t] = out[r][min(have, key=lambda s: abs(s - t))]
                    elif not on[1 - r, t]:  # alone on screen: the largest face not taken
                        taken = {out[1 - r][t]}
                        free = [d for d in dets.get(t, []) if d not in taken]
                        if free:
                            out[r][t] = max(free, key=lambda d: d.area)
        return out

    def auto_assign(self, ctx: ClipContext, frames: np.ndarray) -> Roles:
        """Pair from the video alone: tracks → one descriptor per track → identities (greedy, dlib's
        same-person distance) → the two identities on screen at most steps become roles a and b."""
        T = ctx.T
        steps = [t for t in range(T) if ctx.valid[t]]
        dets = self.detect(frames, steps)
        tracks = link_detections(steps, dets)
        ids: list[tuple[np.ndarray, list[int]]] = []  # (descriptor sum, track indices)
        for k, tr in enumerate(tracks):
            t, i = max(tr, key=lambda ti: dets[ti[0]][ti[1]].area)
            d = embed_faces(frames[t], [dets[t][i]])[0]
            dist = [float(np.linalg.norm(d - s / len(m))) for s, m in ids]
            j = int(np.argmin(dist)) if dist else -1
            if j >= 0 and dist[j] < SAME_PERSON_DISTANCE:
                ids[j] = (ids[j][0] + d, [*ids[j][1], k])
            else:
                ids.append((d.copy(), [k]))
        seen = [len({t for k in m for t, _ in tracks[k]}) for _, m in ids]
        order = sorted(range(len(ids)), key=lambda j: (-seen[j], j))[:2]
        out: Roles = [[None] * T for _ in range(2)]
        for r, j in enumerate(order):
            for k in ids[j][1]:
                for t, i in tracks[k]:
                    cur = out[r][t]
                    if cur is None or dets[t][i].area > cur.area:
                        out[r][t] = dets[t][i]
        return out

    def identify(
        self, ctx: ClipContext, tracks: list[StepTrack], dets: Detections, frames: np.ndarray, on: np.ndarray
    ) -> dict[int, tuple[int, float]]:
        """track index → (role, distance). One identity descriptor per track, compared with each role's
        thumbnail; roles without a usable thumbnail take the largest face where the spans put them alone."""
        owner: dict[int, tuple[int, float]] = {}
        if not tracks:
            return owner
        refs = self.references(ctx) if self.use_identity else [None, None]
        if any(r is not None for r in refs):
            for k, tr in enumerate(tracks):
                t, i = max(tr, key=lambda ti: dets[ti[0]][ti[1]].area)  # the largest view of the face
                d = embed_faces(frames[t], [dets[t][i]])[0]
                steps = [tt for tt, _ in tr]
                dist = {r: float(np.linalg.norm(d - ref)) for r, ref in enumerate(refs) if ref is not None}
                cand = [r for r in dist if on[r, steps].any() and dist[r] < SAME_PERSON_DISTANCE]
                if cand:
                    r = min(cand, key=lambda r: dist[r])
                    owner[k] = (r, dist[r])
        for r in (r for r in range(2) if refs[r] is None):
            for k, tr in enumerate(tracks):
                if k in owner:
                    continue
                votes = 0
                for t, i in tr:
                    alone = on[r, t] and not on[1 - r, t]
                    if alone and max(range(len(dets[t])), key=lambda j: dets[t][j].area) == i:
                        votes += 1
                if votes * 2 > len(tr):
                    owner[k] = (r, 1.0)
        return owner

    def references(self, ctx: ClipContext) -> list[np.ndarray | None]:
        """Each role's identity descriptor: the one the build saved, else the dlib descriptor of its
        thumbnail (None when absent or faceless)."""
        import cv2

        refs: list[np.ndarray | None] = []
        for c in ctx.pair:
            if c is not None and c.descriptor:
                refs.append(saved_descriptor(ctx, c.descriptor))
                continue
            p = ctx.path(c.thumbnail) if c is not None and c.thumbnail else None
            if p is None or not p.exists():
                refs.append(None)
                continue
            img = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            try:
                refs.append(embed_image(img, detector=self.detector))
            except ValueError:
                refs.append(None)
        return refs


def saved_track(ctx: ClipContext, char: Character | None, W: int, H: int) -> list[tuple[float, FaceBox]]:
    """A character's saved box track (manifest field ``boxes``), scaled to the decoded frame size."""
    if char is None or not char.boxes:
        return []
    ref, key = split_ref(char.boxes)
    p = ctx.path(ref)
    if p is None or not p.exists():
        return []
    track = load_box_track(p, key)
    vw = ctx.cache.get("video_size")
    if vw is None:
        vw = ctx.cache["video_size"] = source_frame_size(ctx.video_path)
    return [(t, b.scaled(W / vw[0], H / vw[1])) for t, b in track]


def saved_descriptor(ctx: ClipContext, ref: str) -> np.ndarray:
    """A character's saved identity descriptor (manifest field ``descriptor``, ``file.npz#key``)."""
    name, key = split_ref(ref)
    p = ctx.path(name)
    if p is None or key is None:
        raise ValueError(f"descriptor {ref!r}: expected file.npz#key")
    try:
        return _read_descriptor(str(p), _version(p), key)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"descriptor {ref!r} ({p}): {e}") from e
