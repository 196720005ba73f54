"""Episodes, not clips (issue 13) on a 1-minute generated episode (benchmarks/episode.py: the real clips
of ../shared/data re-encoded to one format and concatenated, cached under runs/episodes/).

- The build cut into 15 s chunks, SIGKILLed after its second chunk (a deterministic kill point) and
  resumed with two worker processes, writes exactly what one uninterrupted single pass writes: shots,
  subtitles, proposals, dropped windows, face boxes, descriptors and thumbnails. The resumed run
  reuses the chunks the killed one finished and redoes none of them.
- Feature extraction on the episode's proposals, SIGKILLed after its first clip and resumed, ends
  with the arrays of an uninterrupted run and redoes no finished clip.
- Chunked shot detection reproduces PySceneDetect's golden cut lists (chunk borders inside the clips).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FEATURES_EXTRA, SHARED_DATA, VIDEO_EXTRA, run_or_dump
from conftest import episode as generated_episode

pytest.importorskip(*VIDEO_EXTRA)

from perr.construct.chunks import merge_chunks, plan_chunks, scan_chunk
from perr.construct.config import BuildConfig
from perr.construct.pipeline import Detectors, Timer
from perr.construct.run import build
from perr.manifest import load_manifest, write_manifest
from perr.video import probe

pytestmark = [pytest.mark.video, pytest.mark.slow]

PERR = [sys.executable, "-m", "perr"]
MINUTES = 1.0  # six parts (one of them a corrupt file); the Ray cluster test uses the same episode
CHUNK = 15.0


@pytest.fixture(scope="module")
def episode() -> Path:
    return generated_episode(MINUTES)


@pytest.fixture(scope="module")
def single_pass(episode: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the whole episode in one pass, in this process, uninterrupted."""
    out = tmp_path_factory.mktemp("episode") / "single"
    report = build([episode], out, show_progress=False, chunk_seconds=None)
    assert not report.failures, [(f.video, f.error) for f in report.failures]
    return out


@pytest.fixture(scope="module")
def killed_and_resumed(episode: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("episode") / "chunked"
    cmd = [
        *PERR,
        "build",
        "run",
        str(episode),
        "--out",
        str(out),
        "--chunk-seconds",
        str(CHUNK),
        "--no-progress",
    ]
    killed = run_or_dump(
        [*cmd, "--jobs", "1"],  # one process: the kill point stops the whole run
        timeout=600,
        env={**os.environ, "PERR_KILL_AT": "build.chunk:2"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    key = episode.stem
    saved = sorted(p.name for p in (out / ".partial" / key).glob("chunk-*.json"))
    assert saved == ["chunk-0000.json", "chunk-0001.json"], saved
    assert not (out / "done" / f"{key}.json").exists()
    resumed = run_or_dump([*cmd, "--jobs", "2"], timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = json.loads((out / "done" / f"{key}.json").read_text())
    return out, done


def _outputs(out: Path) -> dict[str, Path]:
    """Every file a build leaves, except its bookkeeping (done markers, failures list, Ray's folder)."""
    skip = {"done", "ray", ".partial", "state"}  # state: the chunk files, as many as chunks were made
    return {
        str(p.relative_to(out)): p
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).parts[0] not in skip and p.name != "failures.json"
    }


def test_killed_chunked_build_resumes_to_the_single_pass_result(
    single_pass: Path, killed_and_resumed: tuple[Path, dict]
) -> None:
    chunked, done = killed_and_resumed
    counts = done["counts"]
    assert counts["chunks"] >= 4, "15 s chunks of a 1-minute episode"
    assert counts["chunks_resumed"] == 2, "the two chunks finished before the kill are not redone"
    want, got = _outputs(single_pass), _outputs(chunked)
    assert sorted(got) == sorted(want)
    assert any(name.startswith("clips/") for name in want) and load_manifest(single_pass / "manifest.jsonl")
    for name, path in want.items():
        if name.endswith(".npz"):  # zip entries carry a write time: compare the arrays
            with np.load(path) as a, np.load(got[name]) as b:
                assert sorted(a.files) == sorted(b.files), name
                for k in a.files:
                    np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}#{k}")
        else:
            assert path.read_bytes() == got[name].read_bytes(), f"{name} differs from the single pass"


def test_chunk_borders_fall_on_keyframes_inside_the_parts(episode: Path) -> None:
    """Chunks start at keyframes (seek-exact), so some start inside a part, not only at part borders."""
    parts = json.loads(episode.with_suffix(".mp4.json").read_text())["parts"]
    chunks = plan_chunks(episode, probe(episode).duration, CHUNK)
    starts = [c.start for c in chunks[1:]]
    assert len(starts) >= 3
    part_starts = {round(p["start"], 2) for p in parts}
    assert any(round(s, 2) not in part_starts for s in starts)


@pytest.fixture(scope="module")
def features_manifest(killed_and_resumed: tuple[Path, dict]) -> Path:
    pytest.importorskip(*FEATURES_EXTRA)
    out, _ = killed_and_resumed
    clips = [
        c.model_copy(update={"pair": tuple(c.candidates[:2]), "split": "test", "label": "neutral"})
        for c in load_manifest(out / "manifest.jsonl")
        if len(c.candidates) >= 2
    ]
    assert len(clips) >= 2, "the episode's proposals"
    path = out / "pairs.jsonl"
    write_manifest(path, clips)
    return path


def test_killed_feature_extraction_resumes_without_redoing_a_clip(features_manifest: Path) -> None:
    from perr.features.config import ExtractConfig
    from perr.features.files import clip_filename, read_clip_file
    from perr.features.job import extract_manifest

    cfg = ExtractConfig(T=8)  # all five modalities, few steps
    out = features_manifest.parent / "features"
    cmd = [*PERR, "features", "extract", str(features_manifest), "--out", str(out), "--T", "8", "--jobs", "1"]
    killed = run_or_dump(cmd, timeout=600, env={**os.environ, "PERR_KILL_AT": "features.clip:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    first = sorted(p.name for p in (out / "clips").glob("*.npz"))
    assert len(first) == 1 and not list(out.rglob("*.tmp"))
    resumed = extract_manifest(features_manifest, out, cfg, progress=False, threads=1)
    clips = load_manifest(features_manifest)
    assert sorted(clip_filename(cid) for cid in resumed.skipped) == first, "finished clips are not redone"
    assert len(resumed.done) == len(clips) - 1 and not resumed.failed
    ref_out = features_manifest.parent / "features-uninterrupted"
    ref = extract_manifest(features_manifest, ref_out, cfg, progress=False, threads=1)
    assert len(ref.done) == len(clips)
    for c in clips:
        name = clip_filename(c.clip_id)
        x, m, _ = read_clip_file(out / "clips" / name)
        rx, rm, _ = read_clip_file(ref_out / "clips" / name)
        assert sorted(x) == sorted(rx) == ["audio", "background", "person_a", "person_b", "text"]
        for k in rx:
            np.testing.assert_array_equal(m[k], rm[k], err_msg=f"{name}:{k}")
            np.testing.assert_allclose(x[k], rx[k], atol=2e-3, err_msg=f"{name}:{k}")


@pytest.fixture(scope="module")
def face_detector():
    models = Detectors(BuildConfig())
    yield models.face
    models.close()


@pytest.mark.parametrize(
    ("name", "detector", "threshold"),
    [
        ("testvideo.mp4", "content", None),
        ("testvideo.mp4", "adaptive", None),
        ("testvideo.mp4", "threshold", None),
        ("testvideo.mp4", "hash", None),
    ],
)
def test_chunked_cuts_match_pyscenedetect_goldens(name: str, detector: str, threshold, face_detector) -> None:
    """The build's chunked scan, chunks of ~4 s (each started 5 s early for the detector's state), gives
    PySceneDetect's golden cut list. (goldeneye-vfr-drop3.mp4 has one keyframe: it is never cut.)"""
    classes = {
        "content": "ContentDetector",
        "adaptive": "AdaptiveDetector",
        "threshold": "ThresholdDetector",
        "hash": "HashDetector",
    }
    golden = SHARED_DATA / "video" / "pyscenedetect" / "goldens" / f"{name}.{classes[detector]}.default.json"
    if not golden.exists():
        pytest.skip(f"real data not available: {golden}")
    path = golden.parent.parent / name
    cfg = BuildConfig(detector=detector, threshold=threshold)
    duration = probe(path).duration
    chunks = plan_chunks(path, duration, 4.0)
    assert len(chunks) >= 2, "the clip must be cut into chunks"
    scans = [scan_chunk(path, cfg, c, face_detector, None, duration, Timer()) for c in chunks]
    _, cuts = merge_chunks(scans).scene_list
    assert [int(c.frame_num) for c in cuts] == json.loads(golden.read_text())["cuts"]
