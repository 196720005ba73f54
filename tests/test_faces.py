"""Face detectors (registry: mediapipe default, dlib-hog alternative) and the dlib identity embedding,
on the real reference photos shipped with face_recognition's examples."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import VIDEO_EXTRA, shared_file

pytest.importorskip(*VIDEO_EXTRA)

from perr.faces import (
    FACE_DETECTORS,
    SAME_PERSON_DISTANCE,
    FaceBox,
    crop_face,
    embed_faces,
    embed_image,
    face_model_dir,
    iou,
    make_face_detector,
)

pytestmark = pytest.mark.video


def _rgb(name: str) -> np.ndarray:
    import cv2

    img = cv2.imread(str(shared_file(f"video/face_recognition/{name}")))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def test_registry_lists_both_detectors() -> None:
    assert FACE_DETECTORS.names()[:2] == ["mediapipe", "dlib-hog"]
    with pytest.raises(KeyError, match="mediapipe"):
        make_face_detector("mtcnn-without-weights")


def test_both_detectors_find_the_same_face() -> None:
    img = _rgb("lin-manuel-miranda.png")
    boxes = {}
    for name in ("mediapipe", "dlib-hog"):
        with make_face_detector(name) as det:
            found = det.detect(img)
        assert len(found) == 1, name
        boxes[name] = found[0]
    assert iou(boxes["mediapipe"], boxes["dlib-hog"]) > 0.3
    b = boxes["mediapipe"]
    assert 0 <= b.x0 < b.x1 <= img.shape[1] and 0 <= b.y0 < b.y1 <= img.shape[0]
    assert len(b.keypoints) == 6


def test_identity_embedding_separates_people_and_survives_a_mirror() -> None:
    lin, alex = _rgb("lin-manuel-miranda.png"), _rgb("alex-lacamoire.png")
    e_lin, e_alex = embed_image(lin), embed_image(alex)
    e_mirror = embed_image(np.ascontiguousarray(lin[:, ::-1]))
    assert e_lin.shape == (128,) and e_lin.dtype == np.float32
    assert np.linalg.norm(e_lin - e_mirror) < SAME_PERSON_DISTANCE
    assert np.linalg.norm(e_lin - e_alex) > SAME_PERSON_DISTANCE


def test_embed_faces_batch_and_models_found_without_pkg_resources() -> None:
    assert (face_model_dir() / "dlib_face_recognition_resnet_model_v1.dat").is_file()
    img = _rgb("alex-lacamoire.png")
    with make_face_detector("mediapipe") as det:
        (box,) = det.detect(img)
    two = embed_faces(img, [box, box])
    assert two.shape == (2, 128)
    np.testing.assert_allclose(two[0], two[1], atol=1e-6)
    assert embed_faces(img, []).shape == (0, 128)
    thumb = crop_face(img, box)
    assert thumb.shape[0] > box.y1 - box.y0 and thumb.shape[2] == 3


def test_no_face_in_a_blank_image() -> None:
    blank = np.full((240, 320, 3), 127, np.uint8)
    with make_face_detector("mediapipe") as det:
        assert det.detect(blank) == []
    with pytest.raises(ValueError, match="no face"):
        embed_image(blank)
    assert FaceBox(0, 0, 10, 10).area == 100


def _chips(names: list[str]) -> tuple[np.ndarray, list[np.ndarray], list]:
    from perr.faces import default_embedder

    emb = default_embedder()
    images, boxes = [], []
    with make_face_detector("mediapipe") as det:
        for name in names:
            img = _rgb(name)
            for im in (img, np.ascontiguousarray(img[:, ::-1])):
                (box,) = det.detect(im)
                images.append(im)
                boxes.append(box)
    chips = np.concatenate([emb.chips(im, [b]) for im, b in zip(images, boxes, strict=True)])
    return chips, images, boxes


def test_identity_network_in_torch_gives_dlibs_own_descriptor() -> None:
    """perr runs dlib's ResNet (its own weights, read from the .dat) in torch: the descriptors must be
    dlib's, to float rounding, on real faces and their mirrors."""
    import dlib

    from perr.faces import default_embedder

    chips, _, _ = _chips(["lin-manuel-miranda.png", "alex-lacamoire.png"])
    rec = dlib.face_recognition_model_v1(str(face_model_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
    want = np.array([np.asarray(rec.compute_face_descriptor(c)) for c in chips], np.float32)
    got = default_embedder().embed_chips(chips)
    assert got.shape == (4, 128) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)
    assert np.abs(want).max() > 0.05, "not a zero descriptor"


def test_a_descriptor_does_not_depend_on_the_other_chips_of_its_call() -> None:
    """Blocks of a fixed shape: the same chip alone, first, last or among noise gives the same bits."""
    from perr.faces import default_embedder

    emb = default_embedder()
    chips, _, _ = _chips(["alex-lacamoire.png"])
    alone = emb.embed_chips(chips[:1])[0]
    noise = np.random.default_rng(0).integers(0, 256, (6, 150, 150, 3), dtype=np.uint8)
    for batch, at in ((np.concatenate([chips[:1], noise]), 0), (np.concatenate([noise, chips[:1]]), 6)):
        np.testing.assert_array_equal(emb.embed_chips(batch)[at], alone)


def test_a_truncated_identity_model_file_names_the_byte(tmp_path) -> None:
    from perr.faces.dlib_resnet import DlibFormatError, read_dlib_resnet

    data = (face_model_dir() / "dlib_face_recognition_resnet_model_v1.dat").read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match=r"cut\.dat: .* at byte \d+"):
        read_dlib_resnet(bad)
    layers, inputs = read_dlib_resnet(face_model_dir() / "dlib_face_recognition_resnet_model_v1.dat")
    assert inputs["rows"] == inputs["cols"] == 150
    assert [ly.kind for ly in layers].count("con") == 29 and layers[-1].kind == "fc"
