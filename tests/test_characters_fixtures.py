"""The labels of the characters dev set's derived fixtures follow from the source labels by construction
(benchmarks/devsets/characters/make_fixtures.py); checked here without rendering any video."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks package lives at the repository root
    sys.path.insert(0, str(REPO))
mf = importlib.import_module("benchmarks.devsets.characters.make_fixtures")

SOURCES = {
    v["key"]: v
    for v in json.loads((REPO / "benchmarks" / "devsets" / "characters" / "labels.json").read_text())[
        "videos"
    ]
}


def _fixture(name: str) -> dict:
    (fx,) = [f for f in mf.fixtures() if f.name == name]
    return mf.fixture_labels(fx, SOURCES)


def test_every_fixture_name_says_derived() -> None:
    assert all(f.name.startswith("derived_") for f in mf.fixtures())


def test_small_faces_are_scaled_and_placed() -> None:
    lab = _fixture("derived_megamind_bw_small")
    mm = SOURCES["Megamind"]
    assert (lab["width"], lab["height"]) == (640, 360)
    # 720x528 at 0.1 -> 72x52, centred: offset (284, 154)
    woman = lab["shots"][0]["people"][0]
    src = mm["shots"][0]["people"][0]
    assert woman["id"] == src["id"] == "mm_woman"
    assert woman["face_px"] == pytest.approx(src["face_px"] * 52 / 528, abs=0.1)  # 165 px -> 16.3 px
    t, x, y = src["at"][1]
    assert [t, (284 + x * 72) / 640, (154 + y * 52) / 360] in [
        pytest.approx(k, abs=1e-3) for k in woman["at"]
    ]
    assert all(p["face_px"] is None or p["face_px"] < 40 for s in lab["shots"] for p in s["people"])
    assert lab["scenes"] == [{"shots": [0, 1, 2, 3], "pair": ["mm_woman", "mm_man"]}]


def test_abab_shots_are_shifted_source_shots_in_one_scene() -> None:
    lab = _fixture("derived_megamind_abab")
    mm = SOURCES["Megamind"]["shots"]
    order = [2, 1, 0, 3, 0, 1]
    assert [s["from"]["shot"] for s in lab["shots"]] == order
    now = 0.0
    for s, i in zip(lab["shots"], order, strict=True):
        length = mm[i]["end"] - mm[i]["start"] - 2 * mf.MARGIN
        assert s["start"] == pytest.approx(now, abs=1e-3) and s["end"] == pytest.approx(
            now + length, abs=1e-3
        )
        assert [p["id"] for p in s["people"]] == [p["id"] for p in mm[i]["people"]]
        now += length
    assert len(lab["scenes"]) == 1 and lab["scenes"][0]["pair"] == ["mm_woman", "mm_man"]


def test_two_clips_joined_keep_both_sources_scenes() -> None:
    lab = _fixture("derived_concat_megamind_audrey")
    starts = [lab["shots"][sc["shots"][0]]["start"] for sc in lab["scenes"]]
    audrey_scene_2 = SOURCES["audrey_hardsub"]["shots"][2]["start"]
    assert starts == pytest.approx([0.0, 11.26, 11.26 + audrey_scene_2], abs=1e-3)
    assert [sc["pair"] for sc in lab["scenes"]] == [["mm_woman", "mm_man"], None, None]


def test_another_look_keeps_the_person() -> None:
    lab = _fixture("derived_audrey_looks")
    assert [[p["id"] for p in s["people"]] for s in lab["shots"]] == [["au_woman"]] * 3
    assert [s["from"]["look"] for s in lab["shots"]] == [None, mf.DARK_GREEN, mf.SEPIA_BRIGHT]
    assert len(lab["scenes"]) == 1
