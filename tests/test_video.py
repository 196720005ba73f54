"""perr.video: PTS-exact times (VFR included), sampled decoding, audio, embedded subtitles, bad files.

Ground truth comes from ffmpeg/ffprobe (independent of PyAV's Python layer) and from fixtures that
ffmpeg renders with known frame rate, duration and tone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import VIDEO_EXTRA, ffmpeg, shared_file, tool

pytest.importorskip(*VIDEO_EXTRA)

from perr.video import VideoError, VideoReader, is_vfr, iter_video_files, probe, read_audio


def _ffprobe_times(path: Path) -> np.ndarray:
    """Frame PTS (s) by ffprobe, relative to the video stream's start — the independent ground truth."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time:stream=start_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    vals = [float(x.strip(",")) for x in out if x.strip(",") not in ("", "N/A")]
    # stream start_time is printed last (one value after the frames)
    start, times = vals[-1], np.array(vals[:-1])
    return np.sort(times) - start


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Rendered once per session: 25 fps 4 s clip with a 440 Hz tone, the same without audio,
    a truncated copy, garbage bytes, and an MKV carrying an SRT subtitle stream."""
    d = tmp_path_factory.mktemp("video")
    av_clip = d / "synthetic_cfr25_tone440.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=4",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=4:sample_rate=48000",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(av_clip),
    )
    silent = d / "synthetic_noaudio.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(silent),
    )
    trunc = d / "synthetic_truncated.mp4"
    data = av_clip.read_bytes()
    trunc.write_bytes(data[: len(data) // 3])
    garbage = d / "synthetic_garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    srt = d / "synthetic.srt"
    srt.write_text(
        "1\n00:00:00,500 --> 00:00:01,500\nHello there\n\n2\n00:00:02,000 --> 00:00:03,250\n你好，世界\n\n",
        encoding="utf-8",
    )
    mkv = d / "synthetic_with_subs.mkv"
    ffmpeg(
        "-i", str(silent), "-i", str(srt), "-map", "0", "-map", "1", "-c:v", "copy", "-c:s", "srt", str(mkv)
    )
    return {"av": av_clip, "silent": silent, "trunc": trunc, "garbage": garbage, "mkv": mkv}


def test_probe_and_all_frames_of_a_known_clip(fixtures: dict[str, Path]) -> None:
    info = probe(fixtures["av"])
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(25, abs=0.01)
    assert info.duration == pytest.approx(4.0, abs=0.05)
    assert info.has_audio and info.audio_rate == 48000
    with VideoReader(fixtures["av"]) as r:
        frames = list(r.frames())
        times = r.timestamps()
    assert len(frames) == 100
    assert [f.index for f in frames] == list(range(100))
    np.testing.assert_allclose([f.time for f in frames], np.arange(100) / 25, atol=1e-6)
    np.testing.assert_allclose(times, np.arange(100) / 25, atol=1e-6)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8


def test_sampled_frames_follow_time_and_scale(fixtures: dict[str, Path]) -> None:
    with VideoReader(fixtures["av"]) as r:
        two = list(r.frames(fps=2))
        part = list(r.frames(fps=4, start=1.0, end=2.0, max_side=160))
        at = r.frames_at([3.01, 0.0, 1.5, 9.0])
    # each sample is the first frame at or after k/2 s: 0, 0.52 (0.5 falls between frames), 1.0, ...
    grid = np.arange(100) / 25
    expected = [grid[grid >= k * 0.5 - 1e-9][0] for k in range(8)]
    np.testing.assert_allclose([f.time for f in two], expected, atol=1e-6)
    expected = [grid[grid >= 1.0 + k * 0.25 - 1e-9][0] for k in range(5)]  # 1.0, 1.28, 1.52, 1.76, 2.0
    np.testing.assert_allclose([f.time for f in part], expected, atol=1e-6)
    assert part[0].image.shape == (120, 160, 3)
    # The frame on screen at t: last frame with time <= t; past the end, the last frame.
    assert [f.index for f in at] == [75, 0, 37, 99]


def test_sampled_frame_pixels_matchffmpeg(fixtures: dict[str, Path]) -> None:
    """The image returned for t=2.0 is the frame ffmpeg itself decodes at that time (RGB order)."""
    raw = subprocess.run(
        [
            tool("ffmpeg"),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(fixtures["av"]),
            "-vf",
            "select=eq(n\\,50)",
            "-vframes",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(240, 320, 3)
    with VideoReader(fixtures["av"]) as r:
        (f,) = r.frames_at([2.0])
    assert f.index == 50
    assert np.abs(f.image.astype(int) - ref.astype(int)).mean() < 2.0


def test_audio_is_the_rendered_tone(fixtures: dict[str, Path]) -> None:
    x = read_audio(fixtures["av"], sample_rate=16000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) / 16000 == pytest.approx(4.0, abs=0.1)
    spec = np.abs(np.fft.rfft(x[8000:40000]))
    peak = np.fft.rfftfreq(32000, 1 / 16000)[spec.argmax()]
    assert peak == pytest.approx(440, abs=2)
    stereo = read_audio(fixtures["av"], sample_rate=8000, mono=False, start=1.0, end=2.0)
    assert stereo.shape[1] == 8000


@pytest.mark.parametrize(
    "name, message",
    [
        ("trunc", "truncated"),
        ("garbage", "truncated or not a video"),
    ],
)
def test_broken_files_raise_video_error_naming_the_file(
    fixtures: dict[str, Path], name: str, message: str
) -> None:
    with pytest.raises(VideoError, match=message) as e, VideoReader(fixtures[name], backend="pyav"):
        pass
    assert str(fixtures[name]) in str(e.value)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    tone = tmp_path / "synthetic_tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=300:d=1", str(tone))
    with pytest.raises(VideoError, match="no video stream"):
        VideoReader(tone)


def test_missing_file() -> None:
    with pytest.raises(VideoError, match="file not found"):
        VideoReader("/nonexistent/perr-video.mp4")


def test_audio_less_file(fixtures: dict[str, Path]) -> None:
    with pytest.raises(VideoError, match="no audio stream"):
        read_audio(fixtures["silent"])


def test_embedded_subtitle_stream_events(fixtures: dict[str, Path]) -> None:
    with VideoReader(fixtures["mkv"]) as r:
        assert len(r.info.subtitle_streams) == 1
        ev = r.subtitle_events()
    assert [t for _, _, t in ev] == ["Hello there", "你好，世界"]
    np.testing.assert_allclose([(a, b) for a, b, _ in ev], [(0.5, 1.5), (2.0, 3.25)], atol=0.01)


def test_opencv_backend_same_interface(fixtures: dict[str, Path]) -> None:
    with VideoReader(fixtures["silent"], backend="opencv") as r:
        assert r.info.backend == "opencv"
        fr = list(r.frames(fps=1))
    np.testing.assert_allclose([f.time for f in fr], [0, 1, 2, 3], atol=0.02)
    assert fr[0].image.shape == (240, 320, 3)


def test_vfr_times_are_pts_from_ffprobe() -> None:
    p = shared_file("video/pyscenedetect/goldeneye-vfr-drop3.mp4")
    truth = _ffprobe_times(p)
    with VideoReader(p) as r:
        ts = r.timestamps()
        decoded = [f.time for f in r.frames()]
    assert is_vfr(truth) and is_vfr(ts)
    assert len(ts) == len(truth) == 160
    np.testing.assert_allclose(ts, truth, atol=1e-6)
    np.testing.assert_allclose(decoded, truth, atol=1e-6)
    # index / nominal rate (ffprobe r_frame_rate 24000/1001) would put the last frame seconds early
    assert truth[-1] - 159 / (24000 / 1001) > 3.0


def test_stream_start_offset_is_time_zero() -> None:
    """short_hamilton_clip's video stream starts 0.85 s into the container: frame 0 is at t=0
    (PySceneDetect's and OpenCV's clock), and audio is cut to the same clock."""
    p = shared_file("video/face_recognition/short_hamilton_clip.mp4")
    truth = _ffprobe_times(p)
    with VideoReader(p) as r:
        ts = r.timestamps()
        a = r.audio(sample_rate=16000)
    np.testing.assert_allclose(ts, truth, atol=1e-6)
    assert ts[0] == pytest.approx(0.0, abs=1e-6)
    assert len(a) / 16000 == pytest.approx(10.0078 - (0.852019 - 0.008005), abs=0.05)


def test_corrupt_megamind_bugy_reads_with_a_clear_report() -> None:
    """Megamind_bugy.avi: packed B-frames with shuffled PTS and no audio. Frames still decode with
    increasing times, the repair is reported, and asking for audio is a clear VideoError."""
    p = shared_file("video/opencv/Megamind_bugy.avi")
    with VideoReader(p) as r:
        times = [f.time for f in r.frames()]
        assert not r.info.has_audio
        assert any("out of order" in m for m in r.problems)
        with pytest.raises(VideoError, match="no audio stream"):
            r.audio()
    assert len(times) == 270
    assert np.all(np.diff(times) > 0)


def test_iter_video_files_expands_folders_and_globs(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.MKV", "notes.txt", "sub/c.avi"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    got = iter_video_files([tmp_path, str(tmp_path / "*.mp4"), tmp_path / "missing.mp4"])
    names = [p.name for p in got]
    assert names == ["a.mp4", "b.MKV", "c.avi", "missing.mp4"]


def test_frames_at_far_apart_times_seek_and_match_sequential_decoding() -> None:
    """testvideo.mp4 (24 s): times 14 s apart are reached by seeking; the frames are the ones a
    full sequential decode shows at those times."""
    p = shared_file("video/pyscenedetect/testvideo.mp4")
    want = [22.9, 0.5, 15.02, 15.5]
    with VideoReader(p) as r:
        got = r.frames_at(want, max_side=320)
        every = [(f.time, f.image) for f in r.frames(max_side=320)]
    times = np.array([t for t, _ in every])
    for t, f in zip(want, got, strict=True):
        k = int(np.flatnonzero(times <= t + 1e-6)[-1])
        assert f.time == pytest.approx(times[k], abs=1e-6)
        assert np.abs(f.image.astype(int) - every[k][1].astype(int)).mean() < 1.0


# -- sparse decoding: non-reference frames skipped away from the requested times ---------------------------


def _same_frames(r: VideoReader, times: np.ndarray) -> None:
    full = list(r.iter_frames_at(times, max_side=320))
    sparse = list(r.iter_frames_at(times, max_side=320, skip_nonref=True))
    assert [i for i, _ in sparse] == [i for i, _ in full]
    for (_, a), (_, b) in zip(full, sparse, strict=True):
        assert (a.time, a.index) == (b.time, b.index)
        assert np.array_equal(a.image, b.image)


@pytest.mark.parametrize(
    "name",
    [
        "video/pyscenedetect/testvideo.mp4",
        "video/pyscenedetect/goldeneye-vfr-drop3.mp4",  # variable frame rate
        "video/opencv/Megamind.avi",  # MPEG-4 with packed B-frames: shuffled PTS, decoded in full
        "video/moviepy/audrey_hardsub.mp4",
    ],
)
def test_skipping_nonreference_frames_gives_the_frames_of_a_full_decode(name: str) -> None:
    """Feature extraction's sampling (T = 32 over spans of the file, plus random times): the same frames,
    times, indices and pixels as decoding every frame."""
    with VideoReader(shared_file(name)) as r:
        d = r.info.duration
        rng = np.random.default_rng(0)
        _same_frames(r, np.sort(np.r_[np.linspace(0.2, d - 0.2, 32), rng.uniform(0, d, 16), d + 1.0]))


def test_skipping_nonreference_frames_decodes_fewer_frames() -> None:
    """On x264 output, asking for one time 20 s in decodes far fewer frames than decoding them all."""
    from perr.video.sparse import NonrefSkipping

    with VideoReader(shared_file("video/pyscenedetect/testvideo.mp4")) as r:
        full = {f.time: f.index for f in r.impl.raw(0.0, 21.0, lambda t: True)}
        skipping = NonrefSkipping(np.array([20.0]), r.info.fps)
        sparse = list(r.impl.raw(0.0, 21.0, lambda t: True, sparse=skipping))
    assert len(full) > 600
    assert len(sparse) < 0.8 * len(full)
    assert all(full[f.time] == f.index for f in sparse)  # indices still count the skipped frames


def test_a_skipped_frame_that_was_on_screen_is_decoded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A VFR file whose frames are 1 s apart after 4 s, B-frames non-reference (no pyramid): asked for times
    0.9 s after each frame, the frame on screen is older than the always-decoded window, so a skipped B-frame
    must be noticed and its span decoded again in full (counted here), with a full decode's result."""
    import perr.video.sparse as sparse

    vfr = tmp_path / "synthetic_vfr_gaps.mp4"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4.4", "-vf", "setpts='PTS+max(0,N-100)*1.0/TB'"),
        *("-fps_mode", "passthrough", "-c:v", "libx264", "-x264-params", "b-pyramid=0"),
        *("-pix_fmt", "yuv420p"),
        str(vfr),
    )
    caught = []
    check = sparse.NonrefSkipping.check

    def counted(self: sparse.NonrefSkipping, picked: float, t: float) -> None:
        try:
            check(self, picked, t)
        except sparse.SparseDecodeUnsafe as e:
            caught.append(e)
            raise

    monkeypatch.setattr(sparse.NonrefSkipping, "check", counted)
    with VideoReader(vfr) as r:
        times = r.timestamps()[100:-1] + 0.9
        _same_frames(r, times)
    assert caught, "no skipped frame was ever the one on screen: the fixture no longer tests the fallback"
