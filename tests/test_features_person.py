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


_KERAS_REFERENCE = """
import os, sys
import numpy as np
os.environ["KERAS_BACKEND"] = "torch"
import keras
m = keras.models.load_model(sys.argv[1], compile=False)
both = keras.Model(inputs=m.inputs, outputs=[m.get_layer("add_4").output, m.outputs[0]])
faces = np.load(sys.argv[2])
x = (faces.astype(np.float32) / 255.0 - 0.5) * 2.0
fmap, probs = both(x[..., None], training=False)
np.savez(sys.argv[3], emb=np.asarray(fmap.detach()).mean(axis=(1, 2)), probs=np.asarray(probs.detach()))
"""


def test_expression_network_in_torch_equals_keras_on_real_faces(tmp_path: Path) -> None:
    """perr runs fer's HDF5 network in torch (perr.features.person.fer_net); keras, which the file was
    made for, is the reference: the same faces (real crops from Megamind, plus noise and flat images)
    give the same embeddings and probabilities. keras runs in its own process, as a user would load it."""
    import importlib.util
    import subprocess
    import sys

    import cv2

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (the test-reference extra: the reference for this test)")
    from conftest import shared_file
    from perr.features.person.expression import ExpressionModel, fer_model_path
    from perr.video import VideoReader

    model = ExpressionModel()
    with VideoReader(shared_file("video/opencv/Megamind.avi")) as reader:
        frames = [f.image for _, f in reader.iter_frames_at([1.0, 3.0, 5.0, 7.0])]
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    h, w = grays[0].shape
    crops = [
        fer_crop(g, Box(x0, y0, x0 + side, y0 + side), model.size)
        for g in grays
        for x0, y0, side in ((w // 4, h // 6, h // 2), (w // 2, h // 4, h // 3))
    ]
    rng = np.random.default_rng(0)
    faces = np.stack(
        [
            *crops,
            rng.integers(0, 256, (64, 64), dtype=np.uint8),
            np.zeros((64, 64), np.uint8),
            np.full((64, 64), 255, np.uint8),
        ]
    )
    np.save(tmp_path / "faces.npy", faces)
    subprocess.run(
        [
            sys.executable,
            "-c",
            _KERAS_REFERENCE,
            fer_model_path(),
            str(tmp_path / "faces.npy"),
            str(tmp_path / "ref.npz"),
        ],
        check=True,
        timeout=300,
    )
    ref = np.load(tmp_path / "ref.npz")
    emb, probs = model(faces)
    assert emb.shape == (len(faces), 128) and probs.shape == (len(faces), 7)
    np.testing.assert_allclose(emb, ref["emb"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs, ref["probs"], rtol=1e-4, atol=1e-6)
    assert len(set(probs.argmax(axis=1).tolist())) > 1  # the faces are told apart, not one constant answer
