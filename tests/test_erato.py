"""ERATO importer on a fixture generated in ERATO's third-party layout:
img/<class>/<clip>/000001.jpg (ffmpeg-rendered frames), mp3/<class>/<clip>.mp3 (espeak-ng speech
padded with silence to a known length), srt/<class>/<clip>.srt (written here) — then the manifest
goes through feature extraction, so the frames-folder source is exercised for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import FEATURES_EXTRA, VIDEO_EXTRA, ffmpeg, speech_wav

pytest.importorskip(*VIDEO_EXTRA)
pytest.importorskip(*FEATURES_EXTRA)

from perr.data.erato import EratoError, erato_label, import_erato, scan_erato
from perr.manifest import load_manifest

pytestmark = pytest.mark.video
SPEECH = "I never want to see you again. Get out of my house."
FPS = 10
SECONDS = 4.0


def _frames(folder: Path, source: list[str]) -> None:
    folder.mkdir(parents=True)
    ffmpeg(*source, "-t", str(SECONDS), "-vf", f"fps={FPS}", "-q:v", "4", str(folder / "%06d.jpg"))


@pytest.fixture(scope="module")
def erato_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("erato")
    # Class "Hostile" (capitalised as in the release): frames, speech mp3 and a subtitle.
    _frames(root / "img" / "Hostile" / "1", ["-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}"])
    wav = root / "speech.wav"
    speech_wav(SPEECH, wav)
    (root / "mp3" / "Hostile").mkdir(parents=True)
    # 1 s of silence, the speech, then silence up to exactly SECONDS.
    ffmpeg(
        "-i",
        str(wav),
        "-af",
        f"adelay=1000:all=1,apad,atrim=0:{SECONDS}",
        "-ar",
        "16000",
        "-ac",
        "1",
        str(root / "mp3" / "Hostile" / "1.mp3"),
    )
    (root / "srt" / "Hostile").mkdir(parents=True)
    (root / "srt" / "Hostile" / "1.srt").write_text(
        f"1\n00:00:01,000 --> 00:00:03,000\n{SPEECH}\n\n", encoding="utf-8"
    )
    # Class "tense" (lower case, as in the release): frames only — needs --fps, has no audio/subtitles.
    _frames(root / "img" / "tense" / "2", ["-f", "lavfi", "-i", f"mandelbrot=size=320x240:rate={FPS}"])
    return root


@pytest.mark.parametrize(
    "folder, label",
    [
        ("Hostile", "hostile"),
        ("tense", "tense"),
        ("INTIMATE", "intimate"),
        ("Mild", "mild"),
        ("neutral", "neutral"),
        ("intimacy", "intimate"),
        ("0_hostile", "hostile"),
    ],
)
def test_class_folders_map_to_perr_labels(folder: str, label: str) -> None:
    assert erato_label(folder) == label


def test_unknown_class_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "img" / "Angry" / "1").mkdir(parents=True)
    with pytest.raises(EratoError, match="'Angry'"):
        scan_erato(tmp_path)
    with pytest.raises(EratoError, match="no img/ folder"):
        scan_erato(tmp_path / "img")


def test_import_infers_fps_from_audio_and_needs_fps_without_it(erato_root: Path, tmp_path: Path) -> None:
    scan = scan_erato(erato_root)
    ids = [c.clip_id for c in scan.clips]
    assert "erato/hostile/1" in ids
    assert "erato/tense/2" not in ids  # no mp3 and no --fps: listed, not guessed
    assert any("tense" in p and "--fps" in p for p in scan.problems)
    hostile = next(c for c in scan.clips if c.clip_id == "erato/hostile/1")
    assert hostile.fps == pytest.approx(FPS, rel=0.03)  # 40 frames / ~4 s of mp3
    assert hostile.label == "hostile" and hostile.audio and hostile.audio.endswith("1.mp3")
    assert [(s.start, s.end, s.text) for s in hostile.subtitles] == [(1.0, 3.0, SPEECH)]

    out = tmp_path / "erato.jsonl"
    res = import_erato(erato_root, out, fps=FPS)
    clips = {c.clip_id: c for c in load_manifest(out, check_files=True)}  # relative paths resolve
    assert {"erato/hostile/1", "erato/tense/2"} <= set(clips)
    assert clips["erato/tense/2"].audio is None and clips["erato/tense/2"].end == pytest.approx(SECONDS)
    assert res.per_class["hostile"] == 1


def test_extractors_accept_the_imported_frames_folders(erato_root: Path, tmp_path: Path) -> None:
    from perr.features.config import ExtractConfig
    from perr.features.files import clip_filename, read_clip_file
    from perr.features.job import extract_manifest

    manifest = tmp_path / "erato.jsonl"
    import_erato(erato_root, manifest, fps=FPS)
    cfg = ExtractConfig(T=8)
    summary = extract_manifest(manifest, tmp_path / "feats", cfg, progress=False, threads=1)
    assert not summary.failed, summary.failed
    x, m, meta = read_clip_file(tmp_path / "feats" / "clips" / clip_filename("erato/hostile/1"))
    times = meta["times"]
    np.testing.assert_allclose(times, (np.arange(8) + 0.5) * 0.5, atol=0.02)  # 4 s, 8 uniform steps
    # text: exactly the steps inside the subtitle [1, 3)
    np.testing.assert_array_equal(m["text"], ((times >= 1.0) & (times < 3.0)).astype(np.uint8))
    assert np.abs(x["text"][m["text"] == 1]).sum() > 0
    # audio present everywhere; speech activity (last value) high in the speech, low in the leading silence
    assert m["audio"].all()
    speech_frac = x["audio"][:, -1]
    assert speech_frac[times < 0.7].max() < 0.2 and speech_frac[(times > 1.3) & (times < 2.7)].mean() > 0.5
    assert m["background"].all() and np.abs(x["background"]).sum(axis=1).min() > 0
    # testsrc has no faces: the person modalities are empty, never an error
    assert not m["person_a"].any() and not m["person_b"].any()

    _x2, m2, _ = read_clip_file(tmp_path / "feats" / "clips" / clip_filename("erato/tense/2"))
    assert not m2["audio"].any() and not m2["text"].any() and m2["background"].all()
