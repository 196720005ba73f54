"""Bad input for the people of a build: a crowd, a still image made into a video, no people at all, and a
picture of a face (poster, paused screen) in a real scene. Each must finish in bounded time and memory
and say what happened in the manifest and the summary. Fixtures are made from the real files in
../shared/data with ffmpeg; the names say SYNTHETIC where the scene itself is made up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import VIDEO_EXTRA, ffmpeg, shared_file

pytestmark = [pytest.mark.video, pytest.mark.slow]
pytest.importorskip(*VIDEO_EXTRA)

PERR = [sys.executable, "-m", "perr"]


def _build(inputs: list[Path], out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PERR, "build", "run", *map(str, inputs), "--out", str(out), "--no-progress", *flags],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _done(out: Path, key: str) -> dict:
    return json.loads((out / "done" / f"{key}.json").read_text())


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    face = shared_file("video/face_recognition/lin-manuel-miranda.png")
    megamind = shared_file("video/opencv/Megamind.avi")
    d = tmp_path_factory.mktemp("people_bad")
    crowd = d / "synthetic_crowd.mp4"  # 12 × 7 copies of a face, drifting: 84 faces a frame
    ffmpeg(
        "-loop", "1", "-i", str(face), "-t", "6", "-r", "10",
        "-vf", "scale=96:96,tile=12x7,scale=1152:672,crop=1120:640:'16+8*sin(t)':'16+8*cos(t)',format=yuv420p",
        str(crowd),
    )  # fmt: skip
    still = d / "synthetic_still_photo.mp4"  # a photo made into a 6-second video
    ffmpeg(
        "-loop", "1", "-i", str(face), "-t", "6", "-r", "10", "-vf", "scale=640:-2,format=yuv420p", str(still)
    )
    empty = d / "synthetic_no_people.mp4"  # colour bars and a moving test pattern
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=5", "-pix_fmt", "yuv420p", str(empty))
    poster = d / "synthetic_poster_in_megamind.mp4"  # a photo pinned in the corner of a real scene
    ffmpeg(
        "-i", str(megamind), "-loop", "1", "-i", str(face), "-an",
        "-filter_complex", "[1]scale=150:-2[p];[0][p]overlay=W-w-10:10:shortest=1,format=yuv420p",
        str(poster),
    )  # fmt: skip
    return {"crowd": crowd, "still": still, "empty": empty, "poster": poster}


def test_a_crowd_is_capped_and_said(fixtures: dict[str, Path], tmp_path: Path) -> None:
    res = _build([fixtures["crowd"]], tmp_path, "--max-faces", "16")
    assert res.returncode == 0, res.stderr[-2000:]
    done = _done(tmp_path, "synthetic_crowd")
    assert done["counts"]["crowded_frames"] >= done["counts"]["sampled_frames"] // 3 > 0  # --face-every 3
    assert done["counts"]["faces"] <= 16 * done["counts"]["sampled_frames"]
    assert any("crowd" in p for p in done["problems"])
    assert "crowd" in res.stderr  # the summary table says it
    clips = [
        json.loads(line)
        for f in ("clips", "dropped")
        for line in (tmp_path / f / "synthetic_crowd.jsonl").open()
    ]
    assert clips and all("a crowd" in (c.get("notes") or "") for c in clips if c["end"] - c["start"] >= 1)


def test_a_still_photo_is_not_a_person_and_no_people_is_said(
    fixtures: dict[str, Path], tmp_path: Path
) -> None:
    res = _build([fixtures["still"], fixtures["empty"]], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    still = _done(tmp_path, "synthetic_still_photo")
    assert still["counts"]["still_face_tracks"] >= 1 and still["counts"]["characters"] == 0
    assert any("never moved" in p for p in still["problems"])
    empty = _done(tmp_path, "synthetic_no_people")
    assert empty["counts"]["tracks"] == 0 and any("no person found" in p for p in empty["problems"])
    assert "never moved" in res.stderr and "no person found" in res.stderr
    cast = json.loads((tmp_path / "characters" / "synthetic_still_photo.json").read_text())
    assert cast["characters"] == []


def test_a_poster_face_beside_real_people_is_left_out_of_the_cast(
    fixtures: dict[str, Path], tmp_path: Path
) -> None:
    res = _build([fixtures["poster"]], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    key = "synthetic_poster_in_megamind"
    done = _done(tmp_path, key)
    assert done["counts"]["still_face_tracks"] >= 1, done["counts"]
    cast = json.loads((tmp_path / "characters" / f"{key}.json").read_text())
    tracks = {t["id"]: t for t in cast["tracks"]}
    in_corner = [t for t in cast["tracks"] if t["boxes"] and min(b[1] for b in t["boxes"]) > 720 - 170]
    assert in_corner and all(t["character"] is None for t in in_corner)
    # the woman and the man of the scene are still its pair
    clips = [json.loads(line) for line in (tmp_path / "clips" / f"{key}.jsonl").open()]
    assert clips and len(clips[0]["candidates"]) >= 2
    assert all(tracks[t]["character"] for c in cast["characters"] for t in c["tracks"])
