"""Who is who: the face box of each role of the pair (a, b) at each timestep of a clip.

A character is on screen where its manifest spans say so (``perr build`` derives them from face
tracks). The detections of the clip's timesteps are linked into tracks (:class:`perr.faces.FaceTracker`,
IoU between consecutive steps), and each track gets an identity by comparing *one* dlib descriptor
per track with the descriptor of each character's thumbnail (identity per track, not per frame).
Without thumbnails the largest face on screen goes to the character the spans put there. A character
on screen whose face is missed at a step reuses its nearest box from the same on-screen run.
A clip with no characters in its manifest (ERATO has no face tracks) gets its pair from the video:
tracks grouped by identity, the two seen at most steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from perr.faces import SAME_PERSON_DISTANCE, FaceBox, FaceDetector, FaceTracker, embed_faces, embed_image, iou
from perr.features.base import ClipContext
from perr.intervals import true_runs
from perr.manifest import Character
from perr.video import source_frame_size

TRACK_IOU = 0.3  # consecutive-step boxes with at least this IoU continue one track

#: Detections per step, and tracks as (step, index into that step's detections).
Detections = dict[int, list[FaceBox]]
StepTrack = list[tuple[int, int]]
Roles = list[list[FaceBox | None]]


def load_box_track(path: Path) -> list[tuple[float, FaceBox]]:
    """A saved per-frame box track: JSON list of {"t"|"time": s, "box": [x0, y0, x1, y1]} (pixels of the
    source video) or a {"boxes": [...]} wrapper. Sorted by time."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict):
        raw = raw.get("boxes", raw.get("track", []))
    out = []
    for i, r in enumerate(raw):
        try:
            t = float(r["t"] if "t" in r else r["time"])
            b = r["box"] if "box" in r else [r["x0"], r["y0"], r["x1"], r["y1"]]
            out.append((t, FaceBox(*map(float, b))))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: box track entry {i}: {e!r}") from e
    return sorted(out, key=lambda x: x[0])


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
        need = [t for t in range(T) if on[:, t].any()]
        dets = self.detect(frames, need)
        tracks = link_detections(need, dets)
        owner = self.identify(ctx, tracks, dets, frames, on)
        for r in range(2):
            for t in need:
                if not on[r, t]:
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
        refs = self.references(ctx) if self.use_identity else [None, None]
        owner: dict[int, tuple[int, float]] = {}
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
        """dlib descriptor of each role's thumbnail (None when absent or faceless)."""
        import cv2

        refs: list[np.ndarray | None] = []
        for c in ctx.pair:
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
    p = ctx.path(char.boxes)
    if p is None or not p.exists():
        return []
    track = load_box_track(p)
    vw = ctx.cache.get("video_size")
    if vw is None:
        vw = ctx.cache["video_size"] = source_frame_size(ctx.video_path)
    sx, sy = W / vw[0], H / vw[1]
    return [(t, FaceBox(b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy)) for t, b in track]
