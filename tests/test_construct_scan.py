"""The build's one decode pass (perr.build.scan.ShotScan): PySceneDetect's shots and the sampled frames
from the same decode. Its cuts are checked against PySceneDetect's goldens in test_build_shots.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import VIDEO_EXTRA, shared_file

pytest.importorskip(*VIDEO_EXTRA)

from perr.construct.scan import ShotScan, shot_index
from perr.construct.shots import detect_shots
from perr.video import VideoError, VideoReader

pytestmark = pytest.mark.video


@pytest.mark.parametrize(
    "name",
    [
        "video/opencv/Megamind_bugy.avi",  # shuffled timestamps (repaired like VideoReader)
        "video/pyscenedetect/goldeneye-vfr-drop3.mp4",  # variable frame rate
        "video/face_recognition/short_hamilton_clip.mp4",
    ],
)
def test_samples_and_shots_equal_the_two_pass_way(name: str) -> None:
    """Same frames (time and pixels) as VideoReader.frames(fps=3, max_side=720), same shots as
    detect_shots, and every handed-out shot index right."""
    path = shared_file(name)
    scan = ShotScan(path, fps=3.0, max_side=720)
    got = list(scan)
    shots = detect_shots(path)
    assert [(s.start, s.end) for s in scan.shots] == [(s.start, s.end) for s in shots]
    with VideoReader(path) as r:
        want = list(r.frames(fps=3.0, max_side=720))
    assert [f.time for f, _ in got] == [f.time for f in want]
    for (f, _), w in zip(got, want, strict=True):
        assert np.array_equal(f.image, w.image), f"pixels differ at t={f.time}"
    starts = [s.start for s in shots]
    assert [si for _, si in got] == [shot_index(starts, f.time) for f, _ in got]
    assert scan.consistent()
    assert len({si for _, si in got}) == len(shots)  # every shot got sampled frames


def test_consumer_stopping_early_ends_the_background_pass() -> None:
    scan = ShotScan(shared_file("video/pyscenedetect/testvideo.mp4"))
    it = iter(scan)
    next(it)
    it.close()  # runs the generator's finally: the pass is stopped and joined, not abandoned
    import threading

    assert not [t for t in threading.enumerate() if t.name == "perr-shot-scan"]


def test_undecodable_file_is_a_video_error(tmp_path: Path) -> None:
    bad = tmp_path / "synthetic_truncated.avi"
    bad.write_bytes(shared_file("video/opencv/Megamind.avi").read_bytes()[:4000])
    with pytest.raises(VideoError) as e:
        list(ShotScan(bad))
    assert "synthetic_truncated.avi" in str(e.value)
