"""`perr features extract` / `pack` on the real Megamind clips: per-modality evidence and masks, failure
isolation, kill-and-resume, config checks, the packed store, and Ray giving the local backend's arrays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FEATURES_EXTRA, VIDEO_EXTRA, shared_file

pytest.importorskip(*VIDEO_EXTRA)
pytest.importorskip(*FEATURES_EXTRA)

from perr.errors import ConfigMismatch
from perr.execution import ExecutionConfig
from perr.features.config import ExtractConfig
from perr.features.files import read_clip_file
from perr.features.job import extract_manifest
from perr.features.pack import pack_features
from perr.features.person import person_slices
from perr.features.workers import planned_specs
from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan, write_manifest
from perr.modalities import DEFAULT_SIGNATURE
from perr.store import FeatureStore

pytestmark = pytest.mark.video
PERR = [sys.executable, "-m", "perr"]
T = 8
CFG = ExtractConfig(T=T)
# Megamind.avi: shot / reverse shot with cuts near 4.13, 6.47 and 8.38 s (the woman first).
WOMAN = [(0.0, 4.13), (6.47, 8.38)]
MAN = [(4.13, 6.47), (8.38, 11.26)]


def _char(cid: str, spans: list[tuple[float, float]], lo: float, hi: float) -> Character:
    cut = [TimeSpan(start=max(a, lo), end=min(b, hi)) for a, b in spans if b > lo and a < hi]
    return Character(id=cid, spans=cut, occurrences=10)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    video = shared_file("video/opencv/Megamind.avi")
    bugy = shared_file("video/opencv/Megamind_bugy.avi")
    root = tmp_path_factory.mktemp("feat")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    clips = [
        Clip(
            clip_id="mm_a",
            video=str(video),
            start=0.0,
            end=5.5,
            characters=[_char("w", WOMAN, 0, 5.5), _char("m", MAN, 0, 5.5)],
            pair=("w", "m"),
            subtitles=[SubtitleEvent(start=1.0, end=2.5, text="You look lovely tonight.")],
            label="mild",
            split="train",
        ),
        Clip(
            clip_id="mm_b",
            video=str(video),
            start=5.5,
            end=11.2,
            characters=[_char("w", WOMAN, 5.5, 11.2), _char("m", MAN, 5.5, 11.2)],
            pair=("w", "m"),
            label="neutral",
            split="test",
        ),
        Clip(
            clip_id="bugy", video=str(bugy), start=0.0, end=9.0, label="tense", split="train"
        ),  # no audio track
        Clip(clip_id="missing", video="nope.mp4", label="hostile", split="train"),
        Clip(clip_id="broken", video="broken.mp4", label="hostile", split="train"),
    ]
    path = root / "manifest.jsonl"
    write_manifest(path, clips)
    return path


@pytest.fixture(scope="module")
def local_run(manifest: Path) -> tuple[Path, object]:
    out = manifest.parent / "local"
    return out, extract_manifest(manifest, out, CFG, progress=False, threads=1)


def test_failures_are_isolated_and_reported(local_run: tuple[Path, object]) -> None:
    out, summary = local_run
    assert sorted(summary.done) == ["bugy", "mm_a", "mm_b"]
    assert set(summary.failed) == {"missing", "broken"}
    assert "nope.mp4" in summary.failed["missing"] and "broken.mp4" in summary.failed["broken"]
    assert "FAILED broken" in str(summary)
    err = json.loads((out / "errors" / "broken.json").read_text())
    assert err["clip_id"] == "broken" and "Traceback" in err["traceback"]
    assert sorted(p.name for p in (out / "clips").iterdir()) == [
        "bugy.npz",
        "mm_a.npz",
        "mm_b.npz",
    ]  # no temp files left


def test_each_modality_has_evidence_exactly_where_it_exists(local_run: tuple[Path, object]) -> None:
    out, _ = local_run
    x, m, meta = read_clip_file(out / "clips" / "mm_a.npz")
    times = meta["times"]
    assert meta["config"]["T"] == T and [s["name"] for s in meta["modalities"]] == list(CFG.modalities)
    for name, spans in (("person_a", WOMAN), ("person_b", MAN)):
        on = np.zeros(T, bool)
        for a, b in spans:
            on |= (times >= a) & (times <= b)
        np.testing.assert_array_equal(m[name], on.astype(np.uint8), err_msg=name)
        assert (np.abs(x[name][on]).sum(axis=1) > 0).all() and not x[name][~on].any()
    # expression probabilities are a distribution wherever the person is on screen
    probs = x["person_a"][m["person_a"] == 1][:, person_slices()["emotions"]]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(m["text"], ((times >= 1.0) & (times < 2.5)).astype(np.uint8))
    assert m["background"].all() and m["audio"].all()
    assert x["audio"][:, -1].max() > 0.5  # the dialogue is speech
    # the clip without an audio track: zeros and mask 0, and its pair comes from the video
    xb, mb, _ = read_clip_file(out / "clips" / "bugy.npz")
    assert not mb["audio"].any() and not xb["audio"].any()
    assert mb["background"].all() and mb["person_a"].sum() >= 2


def test_rerun_skips_finished_clips_and_refuses_another_config(
    manifest: Path, local_run: tuple[Path, object]
) -> None:
    out, _ = local_run
    before = (out / "clips" / "mm_a.npz").stat().st_mtime_ns
    again = extract_manifest(manifest, out, CFG, progress=False, threads=1)
    assert sorted(again.skipped) == ["bugy", "mm_a", "mm_b"] and not again.done
    assert set(again.failed) == {"missing", "broken"}  # failures are retried, and fail again
    assert (out / "clips" / "mm_a.npz").stat().st_mtime_ns == before
    with pytest.raises(ConfigMismatch, match="different configuration"):
        extract_manifest(manifest, out, ExtractConfig(T=T + 1), progress=False, threads=1)


def test_pack_builds_the_store_with_the_extractors_in_its_header(
    manifest: Path, local_run: tuple[Path, object], tmp_path: Path
) -> None:
    out, _ = local_run
    summary = pack_features(out, manifest, tmp_path / "store")
    assert summary.counts == {"train": 2, "test": 1}
    assert sorted(summary.missing) == ["broken", "missing"]
    store = FeatureStore(tmp_path / "store")
    header = store.header
    assert header.modality_names == ["person_a", "person_b", "background", "audio", "text"]
    assert [(s.name, s.dim, s.extractor, s.version) for s in header.modalities] == [
        (s.name, s.dim, s.extractor, s.version) for s in planned_specs(CFG)
    ]
    assert header.T == T and not header.synthetic
    train = store["train"]
    assert train.column("clip_id") == ["mm_a", "bugy"]
    assert list(train.targets("5")) == [2, 1]  # mild, tense in perr.labels.FINE order
    x, m, _ = read_clip_file(out / "clips" / "mm_a.npz")
    for name in header.modality_names:
        np.testing.assert_array_equal(train.mask(name)[0], m[name])
        np.testing.assert_allclose(train.features(name)[0], x[name].astype(np.float16), rtol=0, atol=0)


@pytest.mark.services
def test_ray_backend_gives_the_local_features(
    manifest: Path, local_run: tuple[Path, object], tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    summary = extract_manifest(
        manifest, out, CFG, ExecutionConfig(backend="ray", num_cpus=2), progress=False, threads=1
    )
    assert sorted(summary.done) == ["bugy", "mm_a", "mm_b"] and set(summary.failed) == {"missing", "broken"}
    assert (out / "ray").is_dir()  # Ray's temp files stay in the run folder
    ref_dir = local_run[0]
    for name in ("mm_a.npz", "mm_b.npz", "bugy.npz"):
        x, m, meta = read_clip_file(out / "clips" / name)
        rx, rm, rmeta = read_clip_file(ref_dir / "clips" / name)
        assert meta["modalities"] == rmeta["modalities"]
        for k in rx:
            np.testing.assert_array_equal(m[k], rm[k], err_msg=f"{name}:{k}")
            np.testing.assert_allclose(x[k], rx[k], atol=2e-3, err_msg=f"{name}:{k}")


def test_default_extractors_match_the_signature_the_synthetic_default_copies() -> None:
    """`perr data synth --like-extractors` lays values out as perr.modalities.DEFAULT_SIGNATURE says; the
    default extractors must produce exactly that (names, dims, extractor ids, versions)."""
    assert planned_specs(ExtractConfig()) == list(DEFAULT_SIGNATURE)


def test_background_onnx_runtime_equals_the_torch_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPU default runs the background network exported to ONNX (cached in perr's cache folder);
    on real frames it gives the torch model's embedding."""
    from perr.features.extractors.background import BackgroundExtractor
    from perr.video import VideoReader

    monkeypatch.setenv("PERR_CACHE_DIR", str(tmp_path / "cache"))
    with VideoReader(shared_file("video/opencv/Megamind.avi")) as r:
        frames = np.stack([f.image for f in r.frames(fps=1.0)])
    onnx = BackgroundExtractor(runtime="onnxruntime")
    assert onnx.runtime == BackgroundExtractor().runtime == "onnxruntime"
    got = onnx.embed(frames)
    assert onnx.onnx_path().parent == tmp_path / "cache" / "models"
    want = BackgroundExtractor(runtime="torch").embed(frames)
    assert got.shape == want.shape == (len(frames), 1280)
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=0)
    assert np.abs(want).max() > 0.5  # a real embedding, not zeros


def test_background_runs_reuse_their_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime's arena keeps one batch's activations: a second clip's frames fault in (almost) no
    new pages and give the first run's bits. With the arena off every batch of 8 frames faulted in
    ~20,000 fresh pages that the kernel had to zero (a third of the network's time on one host)."""
    import resource

    from perr.features.extractors.background import BackgroundExtractor

    monkeypatch.setenv("PERR_CACHE_DIR", str(tmp_path / "cache"))
    frames = np.random.default_rng(0).integers(0, 256, (16, 120, 160, 3), dtype=np.uint8)
    ex = BackgroundExtractor()
    first = ex.embed(frames)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    again = ex.embed(frames)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    np.testing.assert_array_equal(again, first)
    assert faults < 2000, f"{faults} page faults embedding 16 frames a second time"


def test_units_of_work_shrink_so_every_worker_gets_two() -> None:
    from perr.features.job import GROUP_SECONDS, MIN_GROUP_SECONDS, unit_seconds

    clips = [Clip(clip_id=f"c{i}", video="ep.mp4", start=60.0 * i, end=60.0 * i + 30.0) for i in range(10)]
    assert unit_seconds(clips, workers=1) == GROUP_SECONDS  # one worker: the largest units
    assert unit_seconds(clips, workers=2) == pytest.approx(570.0 / 4)  # 570 s of video, 4 units
    assert unit_seconds(clips, workers=4) == pytest.approx(570.0 / 8)
    assert unit_seconds(clips[:2], workers=4) == MIN_GROUP_SECONDS  # 90 s / 8 is below the floor


_DRIVER_PROBE = """
import sys
from pathlib import Path
from perr.execution import ExecutionConfig
from perr.features.job import extract_manifest
summary = extract_manifest(sys.argv[1], sys.argv[2], execution=ExecutionConfig(backend="local", jobs=2),
                           progress=False)
assert sorted(summary.failed) == ["gone_a", "gone_b"], summary.failed
print("torch" in sys.modules)
"""


def test_the_driver_of_worker_processes_never_loads_torch(tmp_path: Path) -> None:
    """With worker processes, `perr features extract` only hands out work: torch (~190 MB of RSS) loads
    in the workers, which also resolve ``--device auto`` on their own machine."""
    clips = [
        Clip(clip_id=f"gone_{k}", video=str(tmp_path / f"gone_{k}.mp4"), start=0.0, end=5.0) for k in "ab"
    ]
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, clips)
    res = subprocess.run(
        [sys.executable, "-c", _DRIVER_PROBE, str(manifest), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "False"
