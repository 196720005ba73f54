"""Characters on the labelled dev set (issue 33, point 6): per face detector and per setting, how many of
the labelled people and faces a build finds, how many characters it invents, whether a person keeps one
identity across shots, where it cuts scenes, whether a two-person scene yields a pair, and what the face
detector costs a sampled frame.

    python -m benchmarks.characters [--detectors mediapipe yunet ...] [--set key=value[,value...] ...]
        [--videos real derived] [--only KEY ...] [--out benchmarks/results/characters.json] [--rescore]

The dev set: the real clips of ../shared/data labelled by eye (benchmarks/devsets/characters/labels.json,
see the README.md there) and the derived fixtures that make_fixtures.py cuts from them (made on the
first run, cached under runs/devsets/characters/). Every detector of ``perr.faces.FACE_DETECTORS`` is
run unless ``--detectors`` names some; ``--set key=v1,v2`` adds a grid axis over BuildConfig keys (each
value is read as YAML: 24, 0.5, none, true). Builds go to ``--work`` (one folder per detector and
setting) and are reused while their configuration is unchanged. Subtitles are off (``subtitles=none``)
unless set: they do not bear on characters and OCR would dominate the time.

``--rescore`` scores the build folders of the runs already in ``--out`` again (after a label fix),
keeping their timings. The figures (:mod:`benchmarks.characters_metrics`) are written for all videos
together, for the real and the derived ones apart, and per video with the counts behind them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from benchmarks.characters_metrics import (
    LabelledVideo,
    VideoMatch,
    load_labels,
    match_video,
    read_build,
    summarize,
)
from benchmarks.harness import grid, header, write_result
from perr.io import write_json

REPO = Path(__file__).resolve().parents[1]
DEVSET = REPO / "benchmarks" / "devsets" / "characters"
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_WORK = REPO / "runs" / "characters"
DEFAULT_CACHE = REPO / "runs" / "devsets" / "characters"
BASE_SETTINGS = {"subtitles": "none"}


def dev_set(data: Path, cache: Path, which: Sequence[str]) -> list[tuple[LabelledVideo, Path, str]]:
    """(labels, video path, "real" | "derived") of every dev-set video asked for; makes the fixtures."""
    out: list[tuple[LabelledVideo, Path, str]] = []
    if "real" in which:
        for v in load_labels(DEVSET / "labels.json"):
            out.append((v, data / v.path, "real"))
    if "derived" in which:
        import importlib

        mf = importlib.import_module("benchmarks.devsets.characters.make_fixtures")
        labels = mf.make(data, cache)
        for v in load_labels(labels):
            out.append((v, cache / v.path, "derived"))
    return out


def parse_axes(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["min_face=0,24", "fps=3"]`` → ``{"min_face": [0, 24], "fps": [3]}`` (values read as YAML)."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected key=value[,value...]")
        k, v = item.split("=", 1)
        axes[k.strip()] = [yaml.safe_load(x.strip()) for x in v.split(",")]
    return axes


def run_folder(work: Path, detector: str, settings: dict[str, Any]) -> Path:
    tag = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return work / detector / tag


def measure(
    videos: list[tuple[LabelledVideo, Path, str]],
    detector: str,
    settings: dict[str, Any],
    work: Path,
    force: bool = False,
) -> dict[str, Any]:
    """Build the dev set with one detector and setting, and score it."""
    from perr.construct.config import BuildConfig
    from perr.construct.run import build

    cfg = BuildConfig(**{**BASE_SETTINGS, **settings, "face_detector": detector})
    out = run_folder(work, detector, {**settings})
    t = time.perf_counter()
    report = build([p for _, p, _ in videos], out, cfg, force=force, show_progress=False)
    seconds = time.perf_counter() - t
    failed = {Path(r.video).name: r.error for r in report.results if r.status == "failed"}
    result: dict[str, Any] = {
        "detector": detector,
        "settings": {**BASE_SETTINGS, **settings},
        "config": asdict(cfg),
        "build_folder": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
        "build_seconds": round(seconds, 1),
        "reused": all(r.status == "skipped" for r in report.results),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    return {**result, **score(videos, out, failed)}


def score(
    videos: list[tuple[LabelledVideo, Path, str]], out: Path, failed: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The figures of one build folder: all videos, the real and the derived ones, and per video."""
    failed = failed or {}
    matches: dict[str, list[VideoMatch]] = {"real": [], "derived": []}
    errors: dict[str, str] = {}
    for lab, path, kind in videos:
        if path.name in failed:
            errors[lab.key] = f"build failed: {failed[path.name]}"
            continue
        try:
            found = read_build(out, lab.key)
        except FileNotFoundError as e:
            errors[lab.key] = f"no build output to score: {e.filename}"
            continue
        matches[kind].append(match_video(lab, found))
    both = matches["real"] + matches["derived"]
    result: dict[str, Any] = {"errors": errors}
    for name, group in (("all", both), ("real", matches["real"]), ("derived", matches["derived"])):
        if group:
            s = summarize(group)
            result[name] = {k: v for k, v in s.items() if k != "videos"}
            if name == "all":
                result["videos"] = compact_videos(s["videos"])
    return result


def compact_videos(videos: dict[str, Any]) -> dict[str, Any]:
    """Per video only what differs from nothing: figures that are defined and counts that are not zero
    (stage seconds are in the totals)."""
    out = {}
    for key, v in videos.items():
        figs = {
            k: x
            for k, x in v.items()
            if k not in ("counts", "ms_per_sampled_frame_by_stage") and x is not None
        }
        counts = {k: x for k, x in v["counts"].items() if x and not k.startswith("stage_seconds.")}
        out[key] = {**figs, "counts": counts}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="*", help="face detectors (default: every one registered)")
    ap.add_argument(
        "--set", dest="sets", action="append", default=[], help="key=value[,value...]: a grid axis"
    )
    ap.add_argument("--videos", nargs="*", default=["real", "derived"], choices=["real", "derived"])
    ap.add_argument("--only", nargs="*", help="video keys (default: the whole dev set)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="derived fixtures")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="build folders")
    ap.add_argument("--force", action="store_true", help="rebuild even where a build is reusable")
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="score the build folders of the runs in --out again (after a label fix), keeping their timings",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "characters.json")
    args = ap.parse_args(argv)

    from perr.faces import FACE_DETECTORS

    head = header("characters", packages=["mediapipe", "opencv-python-headless", "scenedetect"])
    detectors = args.detectors or FACE_DETECTORS.names()
    unknown = [d for d in detectors if d not in FACE_DETECTORS]
    if unknown:
        raise SystemExit(f"unknown face detector(s) {unknown}; known: {FACE_DETECTORS.names()}")
    if not (args.data / "video").is_dir():
        raise SystemExit(f"real data not found: {args.data / 'video'}")
    videos = dev_set(args.data, args.cache, args.videos)
    if args.only:
        videos = [v for v in videos if v[0].key in args.only]
    if args.rescore:
        prev = json.loads(args.out.read_text())
        for r in prev["runs"]:
            r.update(score(videos, REPO / r["build_folder"]))
        prev["rescored"] = {"date": header("characters")["date"], "git_commit": head["git_commit"]}
        write_json(args.out, prev)
        print(args.out)
        return
    axes = parse_axes(args.sets)
    runs = []
    for detector in detectors:
        for settings in grid(axes) if axes else [{}]:
            r = measure(videos, detector, settings, args.work, args.force)
            runs.append(r)
            a = r.get("all", {})
            print(
                f"{detector:<12} {json.dumps(settings):<30} faces<40 {a.get('face_recall_small')} "
                f">=40 {a.get('face_recall_large')} people {a.get('people_recall')} "
                f"false {a.get('false_characters')} B3 P/R {a.get('identity_bcubed_precision')}/"
                f"{a.get('identity_bcubed_recall')} scenes P/R {a.get('scene_boundary_precision')}/"
                f"{a.get('scene_boundary_recall')} pairs {a.get('pair_recall')} "
                f"ms/frame {a.get('ms_per_sampled_frame')}  errors {len(r['errors'])}",
                flush=True,
            )
    payload = {
        "dev_set": {
            "labels": str((DEVSET / "labels.json").relative_to(REPO)),
            "videos": [{"key": v.key, "kind": kind, "seconds": v.shots[-1].end} for v, _, kind in videos],
        },
        "runs": runs,
    }
    write_result(args.out, payload, head)
    print(args.out)


if __name__ == "__main__":
    main()
