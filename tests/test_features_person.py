"""Pure parts of the person extractor, against hand-computed values: relative-position features,
track linking, the fer crop, the saved box-track format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import VIDEO_EXTRA

pytest.importorskip(*VIDEO_EXTRA)

from perr.faces import FaceBox as Box
from perr.features.person import (
    PERSON_DIM,
    box_at,
    fer_crop,
    link_detections,
    load_box_track,
    person_slices,
    relation_features,
)


def test_layout_adds_up() -> None:
    sl = person_slices()
    assert [
        sl[k].stop - sl[k].start for k in ("expression", "emotions", "pose_flag", "pose", "relation")
    ] == [128, 7, 1, 99, 14]
    assert sl["relation"].stop == PERSON_DIM == 249


def test_relation_features_by_hand() -> None:
    own, other = Box(0, 0, 100, 100), Box(50, 50, 150, 150)  # in a 200×100 frame
    v = relation_features(own, other, 200, 100)
    np.testing.assert_allclose(v[0:4], [0.25, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(v[4:8], [0.5, 1.0, 0.5, 1.0])
    assert v[8] == 1.0
    np.testing.assert_allclose(v[9:11], [0.25, 0.5])
    np.testing.assert_allclose(v[11], np.hypot(50, 50) / np.hypot(200, 100), rtol=1e-6)
    np.testing.assert_allclose(v[12], 2500 / (10000 + 10000 - 2500), rtol=1e-6)  # IoU
    np.testing.assert_allclose(v[13], 2500 / 10000, rtol=1e-6)  # intersection over the smaller box
    alone = relation_features(own, None, 200, 100)
    assert alone[8:].sum() == 0 and alone[0] == pytest.approx(0.25)


def test_tracks_link_overlapping_boxes_on_consecutive_steps_only() -> None:
    dets = {
        0: [Box(0, 0, 10, 10), Box(50, 50, 60, 60)],
        1: [Box(1, 1, 11, 11), Box(51, 50, 61, 60)],
        3: [Box(1, 1, 11, 11)],  # step 2 missing: a new track starts
    }
    tracks = link_detections([0, 1, 3], dets)
    assert sorted(map(sorted, tracks)) == [[(0, 0), (1, 0)], [(0, 1), (1, 1)], [(3, 0)]]


def test_fer_crop_squares_pads_and_resizes() -> None:
    gray = np.zeros((100, 100), np.uint8)
    gray[40:60, 30:50] = 255  # a bright 20×20 "face"
    crop = fer_crop(gray, Box(30, 40, 50, 60), size=64)  # 20 px + 10 px each side → 40 px square
    assert crop.shape == (64, 64)
    assert crop[32, 32] == 255 and crop[2, 2] == 0  # centre bright, border is the dark padding
    edge = fer_crop(gray, Box(-5, -5, 15, 15), size=64)  # partly outside the frame: zero-filled, no error
    assert edge.shape == (64, 64)


def test_box_track_formats_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "w.json"
    p.write_text(
        json.dumps([{"t": 2.0, "box": [1, 2, 3, 4]}, {"time": 1.0, "x0": 5, "y0": 6, "x1": 7, "y1": 8}])
    )
    assert load_box_track(p) == [(1.0, Box(5, 6, 7, 8)), (2.0, Box(1, 2, 3, 4))]
    p.write_text(json.dumps({"boxes": [{"t": 0.5, "box": [0, 0, 1, 1]}]}))
    assert load_box_track(p) == [(0.5, Box(0, 0, 1, 1))]
    p.write_text(json.dumps([{"t": 0.5}]))
    with pytest.raises(ValueError, match=r"w\.json: box track entry 0"):
        load_box_track(p)


def test_build_box_tracks_by_key_and_the_box_at_a_step(tmp_path: Path) -> None:
    p = tmp_path / "tracks.json"
    p.write_text(json.dumps({"c1/c0": [[2.0, 10, 10, 20, 20], [1.0, 0, 0, 10, 10]], "c1/c1": []}))
    track = load_box_track(p, "c1/c0")
    assert track == [(1.0, Box(0, 0, 10, 10)), (2.0, Box(10, 10, 20, 20))]
    with pytest.raises(ValueError, match=r"tracks\.json#c2/c0: no box track"):
        load_box_track(p, "c2/c0")
    close = [(1.0, Box(0, 0, 10, 10)), (1.4, Box(4, 4, 14, 14))]
    mid = box_at(close, 1.1)  # between two saved boxes: interpolated
    assert mid is not None and (mid.x0, mid.y0, mid.x1, mid.y1) == pytest.approx((1, 1, 11, 11))
    assert box_at(close, 1.8) == Box(4, 4, 14, 14)  # past the last, within the gap: the nearest
    assert box_at(close, 2.0) is None  # 0.6 s from any saved box
    assert box_at(track, 1.5) == Box(5, 5, 15, 15)  # neighbours exactly MAX_BOX_GAP either side


_FER_PROBE = """
import os, sys
import numpy as np
os.environ["KERAS_BACKEND"] = "torch"
if sys.argv[1] == "plain":
    import keras  # keras finds jax (installed with mediapipe) and imports it
from perr.features.person.expression import ExpressionModel
faces = np.random.default_rng(0).integers(0, 256, (4, 64, 64), dtype=np.uint8)
emb, probs = ExpressionModel()(faces)
np.savez(sys.argv[2], emb=emb, probs=probs, jax=np.array("jax" in sys.modules))
"""


def test_expression_model_loads_without_jax_and_gives_the_same_outputs(tmp_path: Path) -> None:
    """keras would import jax (~95 MB of RSS in every feature worker); perr hides it while keras loads.
    The model must give exactly what it gives when keras is imported the ordinary way, jax and all."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (the features extra)")
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: keras has nothing to import, perr nothing to hide")
    out = {}
    for mode in ("hidden", "plain"):
        out[mode] = tmp_path / f"{mode}.npz"
        subprocess.run([sys.executable, "-c", _FER_PROBE, mode, str(out[mode])], check=True, timeout=300)
    hidden, plain = np.load(out["hidden"]), np.load(out["plain"])
    assert not bool(hidden["jax"]) and bool(plain["jax"])
    np.testing.assert_array_equal(hidden["emb"], plain["emb"])
    np.testing.assert_array_equal(hidden["probs"], plain["probs"])
    np.testing.assert_allclose(hidden["probs"].sum(axis=1), 1.0, atol=1e-5)
