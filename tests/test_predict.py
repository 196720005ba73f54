"""`perr predict` end to end on real video: build stages → pair → real extractors → model → JSON + HTML report.

The checkpoint is trained for one epoch on a tiny SYNTHETIC store shaped like the real extractors'
output (test-only), so the assertions are about the pipeline, never about the predicted class.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import perr
from conftest import (
    FEATURES_EXTRA,
    MPL_CYCLE,
    VIDEO_EXTRA,
    colour_share,
    ffmpeg,
    png_pixels,
    shared_file,
    tool,
)
from perr.config import load_config
from perr.train import train
from toydata import TINY, make_toy_store

pytestmark = [pytest.mark.video, pytest.mark.slow]

pytest.importorskip(*VIDEO_EXTRA)
pytest.importorskip(*FEATURES_EXTRA)
PERR = [sys.executable, "-m", "perr"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from perr.features.config import ExtractConfig
    from perr.features.workers import planned_specs

    root = tmp_path_factory.mktemp("pred")
    store = make_toy_store(
        root / "store",
        sizes={"train": 40, "test": 10},
        T=32,
        modalities=tuple(planned_specs(ExtractConfig())),
    )
    train(store, load_config(None, [*TINY, "epochs=1"]), root / "run")
    return root / "run" / "best.pt"


@pytest.fixture(scope="module")
def one_person_clip(tmp_path_factory) -> Path:
    """A 6 s silent clip of one face (a reference photo, drifting across the frame so that the build does
    not take it for a picture on a wall): fewer than two characters, no audio."""
    png = shared_file("video/face_recognition/lin-manuel-miranda.png")
    out = tmp_path_factory.mktemp("fixture") / "one_person.mp4"
    drift = "scale=720:-2,crop=640:in_h-40:'40+40*sin(t)':'20+20*cos(t)',format=yuv420p"
    ffmpeg("-loop", "1", "-i", str(png), "-t", "6", "-r", "10", "-vf", drift, str(out))
    return out


@pytest.fixture(scope="module")
def batch(checkpoint, one_person_clip, tmp_path_factory):
    """One CLI batch: a real two-person dialogue, the same scene corrupted without audio, a fake video."""
    megamind = shared_file("video/opencv/Megamind.avi")
    bugy = shared_file("video/opencv/Megamind_bugy.avi")
    root = tmp_path_factory.mktemp("batch")
    fake = root / "not_a_video.mp4"
    fake.write_bytes(b"this is not a video" * 100)
    out = root / "out"
    res = subprocess.run(
        [
            *PERR,
            "predict",
            str(megamind),
            str(bugy),
            str(fake),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--subtitles",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return res, out


def test_batch_goes_on_past_a_corrupt_file(batch):
    res, out = batch
    assert res.returncode == 1, res.stderr[-2000:]
    assert "not_a_video.mp4" in res.stderr and "1 of 3 clip(s) failed" in res.stderr
    assert (out / "Megamind" / "prediction.json").exists() and (
        out / "Megamind_bugy" / "prediction.json"
    ).exists()


def test_prediction_json(batch):
    _, out = batch
    p = json.loads((out / "Megamind" / "prediction.json").read_text())
    assert list(p["fine"]) == ["hostile", "tense", "mild", "intimate", "neutral"]
    assert list(p["coarse"]) == ["negative", "positive", "neutral"]
    assert sum(p["fine"].values()) == pytest.approx(1, abs=1e-5) and sum(
        p["coarse"].values()
    ) == pytest.approx(1, abs=1e-5)
    assert p["coarse"]["negative"] == pytest.approx(p["fine"]["hostile"] + p["fine"]["tense"], abs=1e-6)
    assert (
        p["model"] == "smta-transformer" and p["pair"] == ["c1", "c2"] and p["trained_on_synthetic"] is True
    )
    assert p["missing_modalities"] == {"text": "no subtitles"}
    assert "joint" not in p  # no joint head, no joint reading
    bugy = json.loads((out / "Megamind_bugy" / "prediction.json").read_text())
    assert "audio" in bugy["missing_modalities"]  # the corrupted copy has no audio track


@pytest.mark.services
def test_report_renders_in_headless_chromium(batch, tmp_path):
    _, out = batch
    chromium = tool("chromium")
    page = out / "Megamind" / "report.html"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    p = json.loads((out / "Megamind" / "prediction.json").read_text())
    verdict = f"{max(p['fine'], key=p['fine'].get)} ({max(p['coarse'], key=p['coarse'].get)})"
    assert f'<h1 id="verdict">{verdict}</h1>' in dom
    assert '<span id="pair">c1 &amp; c2</span>' in dom and "person A" in dom and "person B" in dom
    assert "SYNTHETIC" in dom and 'src="attention.png"' in dom and 'src="timeline.png"' in dom
    attention = png_pixels(page.parent / "attention.png")  # one line per modality of the model
    assert all(colour_share(attention, c, tol=20) > 0.0005 for c in MPL_CYCLE[:5])
    timeline = png_pixels(page.parent / "timeline.png")
    assert timeline.shape[0] > 100 and timeline.std() > 10  # drawn, not blank
    for thumb in ("thumb_1.jpg", "thumb_2.jpg"):  # the candidates' face crops as JPEG images
        with Image.open(page.parent / thumb) as im:
            assert im.format == "JPEG" and min(im.size) >= 24
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1100,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    pixels = Image.open(shot).convert("L").resize((64, 96))
    assert len(set(pixels.getdata())) > 30  # images and text rendered, not a blank page


def test_fewer_than_two_characters_and_python_api(checkpoint, one_person_clip, tmp_path):
    (res,) = perr.predict(
        one_person_clip, checkpoint=checkpoint, out=tmp_path, subtitles="none", report=False
    )
    assert res.ok, res.error
    r = res.result
    assert r["pair"][1] is None and r["characters"] == 1
    assert set(r["missing_modalities"]) == {"person_b", "audio", "text"}
    assert json.loads((tmp_path / "one_person" / "prediction.json").read_text())["pair"] == r["pair"]


def test_joint_head_reading_is_in_prediction_json(one_person_clip, tmp_path):
    """A model trained with joint_task=3 reports its joint head's own 3-class reading beside the 5 classes."""
    from perr.features.config import ExtractConfig
    from perr.features.workers import planned_specs

    store = make_toy_store(
        tmp_path / "store",
        sizes={"train": 40, "test": 10},
        T=32,
        modalities=tuple(planned_specs(ExtractConfig())),
    )
    train(store, load_config(None, [*TINY, "epochs=1", "model=pair-cross", "joint_task=3"]), tmp_path / "run")
    (res,) = perr.predict(
        one_person_clip,
        checkpoint=tmp_path / "run" / "best.pt",
        out=tmp_path / "o",
        subtitles="none",
        report=False,
    )
    assert res.ok, res.error
    joint = json.loads((tmp_path / "o" / "one_person" / "prediction.json").read_text())["joint"]
    assert joint["task"] == "3" and list(joint["probabilities"]) == ["negative", "positive", "neutral"]
    assert sum(joint["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert joint["pred"] == max(joint["probabilities"], key=joint["probabilities"].get)
    assert list(res.result["fine"]) == ["hostile", "tense", "mild", "intimate", "neutral"]


def test_checkpoint_from_other_extractors_is_refused(tmp_path, one_person_clip):
    store = make_toy_store(tmp_path / "store", sizes={"train": 20, "test": 5}, T=32)  # extractor "toy"
    train(store, load_config(None, [*TINY, "epochs=1"]), tmp_path / "run")
    res = subprocess.run(
        [
            *PERR,
            "predict",
            str(one_person_clip),
            "--checkpoint",
            str(tmp_path / "run" / "best.pt"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2
    assert (
        "features do not match the checkpoint" in res.stderr
        and "modality 'person_a': dim is 249" in res.stderr
    )


def test_pair_option_picks_candidates_by_number_or_id():
    from perr.inference import PredictError, parse_pair
    from perr.manifest import Clip

    clip = Clip(
        clip_id="c",
        video="v.mp4",
        characters=[{"id": i} for i in ("c1", "c2", "c3")],
        candidates=["c1", "c2", "c3"],
    )
    assert parse_pair("1,3", clip) == ("c1", "c3")
    assert parse_pair("c3,c2", clip) == ("c3", "c2")
    assert parse_pair(None, clip) is None
    with pytest.raises(PredictError, match="candidate #4 does not exist"):
        parse_pair("1,4", clip)
    with pytest.raises(PredictError, match="two different candidates"):
        parse_pair("2,2", clip)


def test_predict_a_build_manifest_with_its_edited_cast(checkpoint, tmp_path):
    """`perr predict --manifest`: a build's proposals predicted with the cast a user named, no detection
    run again (the report names the pair)."""
    from perr.construct.config import BuildConfig
    from perr.construct.run import build

    megamind = shared_file("video/opencv/Megamind.avi")
    out = tmp_path / "build"
    build([megamind], out, BuildConfig(subtitles="none"), show_progress=False)
    clip = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    first, second = clip["candidates"][:2]
    named = subprocess.run(
        [
            *PERR,
            "build",
            "cast",
            str(out),
            "Megamind",
            "--name",
            f"{first}=Roxanne",
            "--name",
            f"{second}=Megamind",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert named.returncode == 0, named.stderr[-2000:]
    res = subprocess.run(
        [
            *PERR,
            "predict",
            "--manifest",
            str(out / "manifest.jsonl"),
            "--clip",
            clip["clip_id"],
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "pred"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    p = json.loads((tmp_path / "pred" / clip["clip_id"] / "prediction.json").read_text())
    assert p["pair"] == [first, second] and p["clip"] == clip["clip_id"]
    page = (tmp_path / "pred" / clip["clip_id"] / "report.html").read_text()
    assert "Roxanne" in page and "Megamind" in page
    missing = subprocess.run(
        [
            *PERR,
            "predict",
            "--manifest",
            str(out / "manifest.jsonl"),
            "--clip",
            "nope",
            "-k",
            str(checkpoint),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "nope" in missing.stderr
