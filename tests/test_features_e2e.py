"""End to end on real video: Megamind.avi → `perr build` → pair = top-2 candidates → features → store.

The person features of each character must be present exactly where the build says that character is
on screen (mask 1 ⇔ inside one of its spans), non-zero there and zero elsewhere. Then the store is
offered to checkpoints trained on the embedded synthetic default: with its own synthetic extractor names it
is refused with a message naming the mismatch; laid out like the real extractors (--like-extractors) it evaluates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import FEATURES_EXTRA, VIDEO_EXTRA, shared_file

pytest.importorskip(*VIDEO_EXTRA)
pytest.importorskip(*FEATURES_EXTRA)

from perr.config import TrainConfig
from perr.construct.run import build
from perr.data.synth import SynthConfig, write_synthetic
from perr.features.config import ExtractConfig
from perr.features.files import clip_filename, read_clip_file
from perr.features.job import extract_manifest
from perr.features.pack import pack_features
from perr.manifest import load_manifest, write_manifest
from perr.store import FeatureStore, StoreError
from perr.train import evaluate, train

pytestmark = [pytest.mark.video, pytest.mark.slow]

T = 16


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:

    video = shared_file("video/opencv/Megamind.avi")
    out = tmp_path_factory.mktemp("e2e") / "build"
    report = build([video], out, show_progress=False)
    assert not report.failures, [(f.video, f.error) for f in report.failures]
    return out / "manifest.jsonl"


@pytest.fixture(scope="module")
def pipeline(built: Path) -> dict:

    clips = load_manifest(built)
    assert clips, "the build proposed no clip for Megamind.avi"
    clip = clips[0]
    assert len(clip.candidates) >= 2
    # The pair is the top-2 candidates; the label is a placeholder so the store has a target column.
    clip = clip.model_copy(update={"pair": tuple(clip.candidates[:2]), "split": "test", "label": "neutral"})
    manifest = built.parent / "pair.jsonl"
    write_manifest(manifest, [clip])
    feats = built.parent / "features"
    summary = extract_manifest(manifest, feats, ExtractConfig(T=T), progress=False, threads=1)
    assert not summary.failed, summary.failed
    x, m, meta = read_clip_file(feats / "clips" / clip_filename(clip.clip_id))
    store = built.parent / "store"
    pack_features(feats, manifest, store)
    return {"clip": clip, "x": x, "m": m, "meta": meta, "store": store}


def test_person_features_exist_exactly_where_the_character_is_on_screen(pipeline: dict) -> None:
    clip, x, m, times = pipeline["clip"], pipeline["x"], pipeline["m"], pipeline["meta"]["times"]
    for modality, cid in zip(("person_a", "person_b"), clip.pair, strict=True):
        char = clip.character(cid)
        on = np.zeros(T, bool)
        for s in char.spans:
            on |= (times >= s.start - 1e-6) & (times <= s.end + 1e-6)
        assert on.any() and not on.all(), (
            f"{cid}: a shot/reverse-shot dialogue shows each character part of the time"
        )
        np.testing.assert_array_equal(
            m[modality].astype(bool), on, err_msg=f"{modality} ({cid}) mask vs build spans"
        )
        nonzero = np.abs(x[modality]).sum(axis=1) > 0
        np.testing.assert_array_equal(nonzero, on, err_msg=f"{modality} ({cid}) non-zero rows vs build spans")
    # the two characters take turns: both on screen at once is rare in this clip
    assert (m["person_a"] & m["person_b"]).sum() <= T // 4


def test_store_from_real_video_loads_and_a_synthetic_checkpoint_refuses_it(
    pipeline: dict, tmp_path: Path
) -> None:

    store = FeatureStore(pipeline["store"])
    header = store.header
    assert header.T == T and not header.synthetic and len(store["test"]) == 1
    dims = header.dims
    synth = write_synthetic(tmp_path / "synth", SynthConfig(n=60, T=T, dims=dict(dims)))
    run = tmp_path / "run"
    train(
        synth.store,
        TrainConfig(model="lstm", epochs=1, d_model=16, stage2_hidden=16, ff_dim=16, device="cpu"),
        run,
    )
    ckpt = next(run.rglob("*.pt"))
    with pytest.raises(StoreError, match="extractor") as e:
        evaluate(ckpt, pipeline["store"], split="test", device="cpu")
    assert "synthetic-latent-projection" in str(e.value)


def test_checkpoint_trained_on_the_embedded_default_evaluates_the_real_store(
    pipeline: dict, tmp_path: Path
) -> None:
    """Issue 6 point 6: Megamind → build → pair → features → store → evaluate with a checkpoint trained on
    the embedded (SYNTHETIC) default laid out like the real extractors. The figure itself means nothing
    (one clip, placeholder label); what is checked is that the real store and that checkpoint fit."""

    synth = write_synthetic(tmp_path / "synth", SynthConfig(n=60, T=T, like_extractors=True))
    run = tmp_path / "run"
    train(
        synth.store,
        TrainConfig(
            model="smta-transformer", epochs=1, d_model=16, stage2_hidden=16, ff_dim=16, heads=2, device="cpu"
        ),
        run,
    )
    result = evaluate(run / "best.pt", pipeline["store"], split="test", device="cpu", out=tmp_path / "eval")
    assert result["metrics"]["5"]["n"] == 1 and result["metrics"]["3"]["n"] == 1
    assert not result["synthetic"]  # the evaluated store is real features
    assert (tmp_path / "eval" / "predictions.csv").read_text().count("\n") == 2


class _CountingDetector:
    """The real face detector, counting the images it is asked about."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def detect(self, image: np.ndarray) -> list:
        self.calls += 1
        return self.inner.detect(image)  # type: ignore[attr-defined]


def test_person_features_reuse_the_builds_boxes_and_descriptors(built: Path) -> None:
    """Issue 13 point 2: the build's face boxes stand for detection at every step near one of them, and
    its descriptors for the thumbnails. Checked against the detector itself: at those steps a fresh
    detection finds the face where the saved box says (same time base, same pixel scale)."""
    from perr.construct.config import BuildConfig
    from perr.construct.pipeline import Detectors
    from perr.faces import iou, make_face_detector
    from perr.features.base import ClipContext
    from perr.features.person.roles import RoleAssigner, box_at, saved_track
    from perr.features.sampling import Sampling

    clip = load_manifest(built)[0]
    clip = clip.model_copy(update={"pair": tuple(clip.candidates[:2])})
    ctx = ClipContext(clip, built.parent, Sampling(T=T))
    frames = ctx.frames
    H, W = frames.shape[1:3]
    on = np.stack([ctx.on_screen(c) for c in ctx.pair])
    saved = [saved_track(ctx, c, W, H) for c in ctx.pair]
    assert all(saved), "the build wrote a box track for each character"
    covered = [
        [t for t in range(T) if on[r, t] and box_at(saved[r], float(ctx.times[t])) is not None]
        for r in range(2)
    ]
    assert sum(map(len, covered)) >= on.sum() // 2, "most on-screen steps are within a saved box"

    real = make_face_detector("mediapipe")  # the features' own detector, for the steps with no saved box
    counting = _CountingDetector(real)
    build_detector = Detectors(BuildConfig()).face  # the saved boxes are the build's detector's
    boxes = RoleAssigner(counting, use_identity=True).assign(ctx, on, frames)  # type: ignore[arg-type]
    uncovered = {t for t in range(T) for r in range(2) if on[r, t] and t not in covered[r]}
    assert counting.calls == len(uncovered), (
        "detection runs only where no saved box is near, never on thumbnails"
    )
    for r in range(2):
        for t in covered[r]:
            saved_box = boxes[r][t]
            assert saved_box is not None
            found = build_detector.detect(frames[t])
            best = max((iou(saved_box, d) for d in found), default=0.0)
            assert best >= 0.5, (
                f"role {r} step {t} ({ctx.times[t]:.2f} s): saved box IoU {best:.2f} with detection"
            )
    # descriptors: the saved one is the build's mean descriptor, and it is used instead of the thumbnail
    before = counting.calls
    refs = RoleAssigner(counting).references(ctx)
    assert all(ref is not None and ref.shape == (128,) for ref in refs)
    assert counting.calls == before
