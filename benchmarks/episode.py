"""Make an episode-length video from the real clips in ../shared/data: the input users have.

    python -m benchmarks.episode --minutes 20 --height 720 --out runs/episodes/episode-20min-720p.mp4

Each clip is re-encoded once to one size and frame rate — letterboxed to 16:9 at `--height`, 25 fps, BT.709
colours in every part (one set of stream parameters, so seeking into the episode is exact), H.264 CRF 23 with x264's default keyframe interval, AAC 48 kHz stereo (a silent track where the clip has
none) — and the parts are concatenated (stream copy) and repeated until the episode is `--minutes` long.
The output is deterministic (bit-exact flags, fixed part order) and cached: the parts live under
`runs/episodes/parts-<height>p/`, and an existing episode with the same recipe is reused. Beside the
video, `<out>.json` lists every part with its source and its start in the episode (ground truth for
where the cuts and subtitles are). Never commit a generated video.

Also importable: ``make_episode(minutes, height, out) -> Path`` and ``episode_path(minutes)`` (the benchmarks' copy).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERR_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"
#: The real clips an episode is made of, in order (dialogue, corrupt file, stage show, burned subtitles,
#: variable frame rate, a montage, a 1080p clip with embedded subtitle streams).
SOURCES = (
    "opencv/Megamind.avi",
    "opencv/Megamind_bugy.avi",
    "face_recognition/short_hamilton_clip.mp4",
    "moviepy/audrey_hardsub.mp4",
    "pyscenedetect/goldeneye-vfr-drop3.mp4",
    "pyscenedetect/testvideo.mp4",
    "pyscenedetect/issue-236-split-copy.mkv",
)
FPS = 25
RECIPE_VERSION = "2"


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _has_audio(path: Path) -> bool:
    out = _run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=index",
            "-of",
            "csv=p=0",
            str(path),
        ]
    )
    return bool(out.strip())


def _duration(path: Path) -> float:
    return float(
        _run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)])
    )


def _part(src: Path, height: int, folder: Path) -> Path:
    """One source clip at the episode's size, rate and codecs (cached)."""
    width = height * 16 // 9
    out = folder / f"{src.stem}.v{RECIPE_VERSION}.mp4"
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    video = (  # one colour description for every part: the concatenated stream has one set of parameters
        f"scale={width}:{height}:force_original_aspect_ratio=decrease:out_color_matrix=bt709:out_range=tv,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},format=yuv420p"
    )
    inputs = ["-i", str(src)]
    if _has_audio(src):
        audio_map = ["-map", "0:a:0"]
    else:  # a silent track, so every part (and the episode) has the same streams
        inputs += ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
        audio_map = ["-map", "1:a:0", "-shortest"]
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            *inputs,
            "-map",
            "0:v:0",
            *audio_map,
            "-vf",
            video,
            "-c:v",
            "libx264",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-color_range",
            "tv",
            "-crf",
            "23",
            "-preset",
            "medium",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-map_metadata",
            "-1",
            "-sn",
            str(tmp),
        ],
        check=True,
    )
    os.replace(tmp, out)
    return out


def recipe_key(minutes: float, height: int, sources: list[Path]) -> str:
    h = hashlib.sha256(json.dumps([RECIPE_VERSION, minutes, height, FPS]).encode())
    for s in sources:
        h.update(s.name.encode())
        h.update(str(s.stat().st_size).encode())
    return h.hexdigest()[:12]


def make_episode(minutes: float, height: int, out: Path, cache: Path | None = None) -> Path:
    """The episode file at `out` (made unless one with the same recipe is there); `<out>.json` beside it."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed (make system installs it)")
    sources = [DATA / s for s in SOURCES if (DATA / s).exists()]
    if not sources:
        raise FileNotFoundError(f"no real clips under {DATA} (set PERR_SHARED_DATA)")
    out = Path(out)
    key = recipe_key(minutes, height, sources)
    meta_path = out.with_suffix(out.suffix + ".json")
    if out.exists() and meta_path.exists() and json.loads(meta_path.read_text()).get("key") == key:
        return out
    cache = Path(cache) if cache is not None else REPO / "runs" / "episodes"
    parts = [_part(s, height, cache / f"parts-{height}p") for s in sources]
    durations = [_duration(p) for p in parts]
    target = minutes * 60.0
    plan: list[dict[str, object]] = []
    t = 0.0
    while t < target:
        for src, part, d in zip(sources, parts, durations, strict=True):
            if t >= target:
                break
            plan.append(
                {"source": str(src.relative_to(DATA)), "part": part.name, "start": round(t, 3), "duration": d}
            )
            t += d
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        listing = Path(tmpdir) / "concat.txt"
        listing.write_text("".join(f"file '{cache / f'parts-{height}p' / p['part']}'\n" for p in plan))
        tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(listing),
                "-c",
                "copy",
                "-fflags",
                "+bitexact",
                "-map_metadata",
                "-1",
                str(tmp),
            ],
            check=True,
        )
        os.replace(tmp, out)
    meta = {
        "key": key,
        "minutes": minutes,
        "height": height,
        "fps": FPS,
        "seconds": round(t, 3),
        "parts": plan,
        "synthetic_composition": "real clips re-encoded and concatenated; the episode itself is made here",
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out


def episode_path(minutes: float, height: int = 720) -> Path:
    """Where the benchmarks keep the episode of `minutes` (made on first use)."""
    return make_episode(minutes, height, REPO / "runs" / "episodes" / f"episode-{minutes:g}min-{height}p.mp4")


def parse_minutes(text: str) -> list[float]:
    """`--episode-minutes 10,20,45` → [10.0, 20.0, 45.0]."""
    try:
        return [float(m) for m in text.split(",") if m.strip()]
    except ValueError:
        raise SystemExit(f"--episode-minutes {text!r}: expected minutes like 10,20,45") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--minutes", type=float, required=True, help="episode length in minutes (e.g. 2.5, 10, 20, 45)"
    )
    ap.add_argument(
        "--height", type=int, default=720, choices=(360, 720, 1080), help="frame height (16:9, letterboxed)"
    )
    ap.add_argument("--out", type=Path, required=True, help="the episode file to write (.mp4)")
    ap.add_argument(
        "--cache", type=Path, default=None, help="folder for the re-encoded parts (default runs/episodes)"
    )
    args = ap.parse_args(argv)
    path = make_episode(args.minutes, args.height, args.out, args.cache)
    meta = json.loads(path.with_suffix(path.suffix + ".json").read_text())
    print(f"{path}: {meta['seconds'] / 60:.1f} min, {len(meta['parts'])} parts, {args.height}p")
    return 0


if __name__ == "__main__":
    sys.exit(main())
