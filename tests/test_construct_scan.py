"""The build's one decode pass (perr.build.scan.ShotScan): PySceneDetect's shots and the sampled frames
from the same decode. Its cuts are checked against PySceneDetect's goldens in test_build_shots.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import VIDEO_EXTRA, run_or_dump, shared_file

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


#: ShotScan's own opening (stream with frame threads, FFmpeg logging set, seek to a chunk's start), a few
#: frames read, then the stream dropped mid-decode, as a chunk's pass does when it reaches its end.
_OPEN_READ_DROP = """
import sys
from perr.construct.scan import ShotScan
path, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    video, _ = ShotScan(path, start=float(i % 9), threading_mode="AUTO")._open()
    for _ in range(5 + i % 60):
        if video.read() is False:
            break
    del video
print("finished", n)
"""


def test_dropping_a_frame_threaded_stream_mid_decode_never_hangs() -> None:
    """The CI hang of a chunked build: with PyAV's Python log callback installed (any level), closing a
    frame-threaded decoder mid-stream waited for ever (PyAV issue 909). Before the fix this loop hung
    within 20-60 rounds on this clip (seen at rounds 26, 27, 51); run_or_dump fails with the stacks."""
    import sys

    clip = shared_file("video/face_recognition/short_hamilton_clip.mp4")
    done = run_or_dump([sys.executable, "-c", _OPEN_READ_DROP, str(clip), "150"], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "finished 150"


def test_perr_leaves_no_python_log_callback_in_pyav() -> None:
    """The state the no-hang test depends on, checked directly: after a scan opened its stream (which
    resets FFmpeg's callback) and after quiet_libraries, PyAV has no Python log callback (level None)."""
    import av

    from perr.logs import quiet_libraries

    av.logging.set_level(av.logging.ERROR)
    it = iter(ShotScan(shared_file("video/pyscenedetect/testvideo.mp4"), start=2.0))
    next(it)
    it.close()
    assert av.logging.get_level() is None
    av.logging.set_level(av.logging.ERROR)
    quiet_libraries(False)
    assert av.logging.get_level() is None
