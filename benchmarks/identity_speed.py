"""Identity descriptors: dlib-bin's own network against dlib's weights run in torch (perr.faces.dlib_resnet).

    python -m benchmarks.identity_speed --out benchmarks/results/identity_speed.json [--repeat 5]

The faces are the real reference photos in ../shared/data/video/face_recognition (and their mirrors),
aligned once by dlib (5 points, 150-px chips). Timed on one thread: dlib's
``compute_face_descriptor`` per chip and batched (dlib's own batch of 16), torch per chip and in
perr's zero-padded blocks of 1, 4 and 8. The JSON also records the largest difference between the two
descriptors, the CPU and the versions; compare the rows as ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.harness import header, write_result

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


def ms_per_face(fn: Callable[[], object], faces: int, repeat: int) -> dict[str, float]:
    fn()  # warm
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) / faces * 1e3)
    return {"median_ms": round(statistics.median(runs), 2), "min_ms": round(min(runs), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--faces", type=int, default=16, help="chips per timed pass")
    args = ap.parse_args()
    head = header("identity_speed", packages=("dlib-bin",))

    import cv2
    import dlib
    import torch

    from perr.faces import FaceEmbedder, face_model_dir, make_face_detector
    from perr.faces.dlib_resnet import one_thread

    torch.set_num_threads(1)
    shared = Path(os.environ.get("PERR_SHARED", REPO.parent / "shared")) / "data/video/face_recognition"
    emb = FaceEmbedder()
    chips = []
    with make_face_detector("mediapipe") as det:
        for name in ("lin-manuel-miranda.png", "alex-lacamoire.png"):
            img = cv2.cvtColor(cv2.imread(str(shared / name)), cv2.COLOR_BGR2RGB)
            for im in (img, np.ascontiguousarray(img[:, ::-1])):
                chips.append(emb.chips(im, det.detect(im)[:1])[0])
    batch = np.stack([chips[i % len(chips)] for i in range(args.faces)])
    rec = dlib.face_recognition_model_v1(str(face_model_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
    net = emb._net
    n = len(batch)
    rows = {
        "dlib, one chip a call": ms_per_face(
            lambda: [rec.compute_face_descriptor(c) for c in batch], n, args.repeat
        ),
        "dlib, all chips in one call": ms_per_face(
            lambda: rec.compute_face_descriptor(list(batch)), n, args.repeat
        ),
    }
    for block in (1, 4, 8):

        def run(block: int = block) -> None:
            with one_thread():
                for i in range(0, n, block):
                    net(torch.from_numpy(batch[i : i + block]))

        rows[f"torch, blocks of {block}"] = ms_per_face(run, n, args.repeat)
    rows["perr FaceEmbedder.embed_chips (blocks of 4)"] = ms_per_face(
        lambda: emb.embed_chips(batch), n, args.repeat
    )
    want = np.array([np.asarray(rec.compute_face_descriptor(c)) for c in chips], np.float32)
    got = emb.embed_chips(np.stack(chips))
    result = {
        "ms_per_face": rows,
        "speedup_blocks_of_4_vs_dlib_one_chip": round(
            rows["dlib, one chip a call"]["median_ms"]
            / rows["perr FaceEmbedder.embed_chips (blocks of 4)"]["median_ms"],
            2,
        ),
        "max_abs_difference_vs_dlib": float(np.abs(got - want).max()),
        "faces": "4 real chips (2 photos and their mirrors), tiled to --faces",
        "setup": {
            "torch_threads": torch.get_num_threads(),
        },
    }
    write_result(args.out, result, head)
    for k, v in rows.items():
        print(f"{k:45s} {v['median_ms']:7.2f} ms a face")
    print(f"max |torch - dlib| = {result['max_abs_difference_vs_dlib']:.2e}")


if __name__ == "__main__":
    main()
