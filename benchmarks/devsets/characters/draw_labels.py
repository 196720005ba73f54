"""Draw the labels over their frames, to check them by eye: every keyframe time of a video becomes one
frame with each labelled person (red; optional ones orange; non-person faces magenta) drawn as a box of
the labelled face height around the labelled point, and the shot's ignore regions in grey, 2 x 2 frames
a sheet.

    python -m benchmarks.devsets.characters.draw_labels [--labels FILE] [--data DIR] [--out DIR] [KEY ...]

`--labels` defaults to labels.json beside this file and `--data` to ../shared/data; for the derived
fixtures pass ``--labels runs/devsets/characters/labels.json --data runs/devsets/characters``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from benchmarks.devsets.characters.make_fixtures import stream_start

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def draw(labels: dict, data: Path, out: Path, keys: list[str]) -> list[Path]:
    import cv2
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for v in labels["videos"]:
        if keys and v["key"] not in keys:
            continue
        path = data / v["path"]
        origin = stream_start(path)
        times = sorted({k[0] for s in v["shots"] for p in s["people"] + s["non_person"] for k in p["at"]})
        tiles = []
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "f.png"
            for t in times:
                subprocess.run(
                    [
                        "ffmpeg",
                        "-v",
                        "error",
                        "-y",
                        "-ss",
                        f"{t + origin:.4f}",
                        "-i",
                        str(path),
                        "-frames:v",
                        "1",
                        str(png),
                    ],
                    check=True,
                )
                im = cv2.imread(str(png))
                H, W = im.shape[:2]
                k = max(1.0, W / 720)
                for s in v["shots"]:
                    if not s["start"] <= t < s["end"]:
                        continue
                    for r in s.get("ignore", []):
                        x0, y0, x1, y1 = r["box"]
                        cv2.rectangle(
                            im,
                            (int(x0 * W), int(y0 * H)),
                            (int(x1 * W) - 1, int(y1 * H) - 1),
                            (160, 160, 160),
                            1,
                        )
                        cv2.putText(
                            im, "ignore", (int(x0 * W) + 4, int(y1 * H) - 6), 0, 0.5 * k, (160, 160, 160), 1
                        )
                    for p in s["people"] + s["non_person"]:
                        for kt, x, y in p["at"]:
                            if abs(kt - t) > 1e-6:
                                continue
                            h = p.get("face_px") or 30
                            col = (
                                (255, 0, 255)
                                if "id" not in p
                                else (0, 200, 255)
                                if p.get("optional")
                                else (0, 0, 255)
                            )
                            x0, y0 = int(x * W - 0.4 * h), int(y * H - h / 2)
                            cv2.rectangle(im, (x0, y0), (int(x * W + 0.4 * h), int(y * H + h / 2)), col, 2)
                            cv2.drawMarker(im, (int(x * W), int(y * H)), col, cv2.MARKER_CROSS, 12, 2)
                            cv2.putText(im, p.get("id", "non-person"), (x0, y0 - 4), 0, 0.5 * k, col, 2)
                cv2.putText(im, f"{v['key']} {t}", (10, int(30 * k)), 0, k, (255, 255, 255), 2)
                tiles.append(cv2.resize(im, (480, int(480 * H / W))))
        for i in range(0, len(tiles), 4):
            group = tiles[i : i + 4]
            group += [np.zeros_like(tiles[0])] * (4 - len(group))
            sheet = np.vstack([np.hstack(group[:2]), np.hstack(group[2:])])
            dest = out / f"{v['key']}_{i // 4}.png"
            cv2.imwrite(str(dest), sheet)
            written.append(dest)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=HERE / "labels.json")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "devsets" / "characters" / "drawn")
    ap.add_argument("keys", nargs="*", help="video keys (default: all)")
    args = ap.parse_args()
    for p in draw(json.loads(args.labels.read_text()), args.data, args.out, args.keys):
        print(p)


if __name__ == "__main__":
    main()
