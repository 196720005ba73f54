"""The default build on a few clips of the characters dev set (issue 33, point 6): every expectation is
read from the labels (benchmarks/devsets/characters/labels.json and the labels make_fixtures.py derives
from it), none from what the code under test produced.

- Megamind (real): its labelled people keep one identity each across its 4 shots, its scene boundaries
  are found (none: one scene), and its labelled pair scene yields a clip proposing those two people.
- derived_megamind_abab (Megamind's shots re-ordered woman/man x 3): the same.
- derived_megamind_bw_small (Megamind at a tenth, grey, in a black 640x360 frame: faces 16-30 px): the
  labelled people of the pair are both found, as two characters, and proposed as a pair.
- derived_audrey_looks (one woman in three shots, two of them re-coloured): one identity.
- derived_hamilton_aba (the performer, the audience, the performer): the performer is one character in
  both his shots, and no audience member shares it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA, VIDEO_EXTRA, tool

pytestmark = [pytest.mark.video, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks package lives at the repository root
    sys.path.insert(0, str(REPO))
cm = importlib.import_module("benchmarks.characters_metrics")

REAL = ["Megamind"]
DERIVED = [
    "derived_megamind_abab",
    "derived_megamind_bw_small",
    "derived_audrey_looks",
    "derived_hamilton_aba",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The dev-set videos above built once with the default configuration (subtitles off): key → match."""
    pytest.importorskip(*VIDEO_EXTRA)
    tool("ffmpeg")
    if not (SHARED_DATA / "video").is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA / 'video'} (the dev set's clips live there)")
    from perr.construct.config import BuildConfig
    from perr.construct.run import build

    mf = importlib.import_module("benchmarks.devsets.characters.make_fixtures")
    cache = tmp_path_factory.mktemp("fixtures")
    labels = {
        v.key: v for v in cm.load_labels(REPO / "benchmarks" / "devsets" / "characters" / "labels.json")
    }
    paths = {k: SHARED_DATA / labels[k].path for k in REAL}
    for v in cm.load_labels(mf.make(SHARED_DATA, cache, DERIVED)):
        labels[v.key] = v
        paths[v.key] = cache / v.path
    out = tmp_path_factory.mktemp("build")
    report = build(list(paths.values()), out, BuildConfig(subtitles="none"), show_progress=False)
    assert not report.failures, [(r.video, r.error) for r in report.failures]
    return {k: cm.match_video(labels[k], cm.read_build(out, k)) for k in paths}


def _pair_people(vm: object) -> list[tuple[str, str]]:
    return [sc.pair for sc in vm.labels.scenes if sc.scored and sc.pair is not None]


def _assert_one_identity_per_person(vm: object, min_recall: float = 1.0) -> None:
    gold, pred = cm.identity_items(vm)
    assert gold, f"{vm.labels.key}: no labelled person was found at all"
    p, r = cm.b_cubed(gold, pred)
    by_person: dict[str, set[str]] = {}
    for g, q in zip(gold, pred, strict=True):
        by_person.setdefault(g, set()).add(q)
    assert p == 1.0 and r >= min_recall, f"{vm.labels.key}: identities per labelled person {by_person}"


def _assert_pairs_proposed(vm: object) -> None:
    c = cm.video_counts(vm)
    assert c.get("pair_scenes", 0) == len(_pair_people(vm)) > 0
    assert c["pair_scenes_identified"] == c["pair_scenes"], (
        f"{vm.labels.key}: labelled pairs {_pair_people(vm)}, clips "
        f"{[(x.start, x.end, x.candidates) for x in vm.found.clips]}, characters {cm.character_people(vm)}"
    )


def _assert_scene_boundaries(vm: object) -> None:
    found = vm.found.boundaries()
    assert found is not None, "the build wrote no segments file"
    labelled = vm.labels.boundaries()
    assert cm.match_boundaries(found, labelled) == len(labelled) == len(found), (
        f"{vm.labels.key}: found segment starts {found}, labelled scene starts {labelled}"
    )


# Megamind with the default detector has one false face in shot 3 (yunet, score ~0.75, a 221-px box
# centred at x 0.63, y 0.21, above and right of the woman's face): since the benchmark matches a face box
# only near the labelled face centre, it is a false character of its own, not a second identity of the
# woman (it was, at B-cubed recall 0.78, before that rule). benchmarks/results/characters.json.
@pytest.mark.parametrize(("key", "min_recall"), [("Megamind", 1.0), ("derived_megamind_abab", 1.0)])
def test_a_conversation_is_two_identities_one_scene_one_pair(
    built: dict, key: str, min_recall: float
) -> None:
    vm = built[key]
    _assert_one_identity_per_person(vm, min_recall)
    _assert_scene_boundaries(vm)
    _assert_pairs_proposed(vm)


@pytest.mark.xfail(
    strict=True,
    reason="Megamind shrunk to a tenth (the whole scene 72x53 px, faces 16-30 px) is beyond the default: "
    "yunet upscaled to 880 px finds the man in one shot only (benchmarks/results/characters.json)",
)
def test_small_black_and_white_faces_yield_the_two_people(built: dict) -> None:
    vm = built["derived_megamind_bw_small"]
    (pair,) = _pair_people(vm)
    found = {m.person.id for m in vm.people}
    assert set(pair) <= found, f"labelled pair {pair}; found {sorted(found)}"
    who = cm.character_people(vm)
    assert {who.get(c) for c in who} >= set(pair), f"characters → people {who}"
    _assert_pairs_proposed(vm)


def test_another_look_is_the_same_person(built: dict) -> None:
    vm = built["derived_audrey_looks"]
    labelled = {p.id for s in vm.labels.shots for p in s.people if not p.optional}
    assert {m.person.id for m in vm.people} == labelled
    _assert_one_identity_per_person(vm)


def test_a_performer_cut_with_his_audience_keeps_one_identity(built: dict) -> None:
    vm = built["derived_hamilton_aba"]
    twice = [
        pid
        for pid in {p.id for s in vm.labels.shots for p in s.people if not p.optional}
        if sum(pid in {p.id for p in s.people} for s in vm.labels.shots) > 1
    ]
    assert twice == ["ha_performer"]  # what the labels say; the rest are audience members seen once
    chars = {m.segment.track.character for m in vm.people if m.person.id == "ha_performer"}
    assert len(chars) == 1 and None not in chars, f"the performer's characters: {chars}"
    others = {m.segment.track.character for m in vm.people if m.person.id != "ha_performer"}
    assert not chars & others, (
        f"the performer's character also stands for an audience member: {chars & others}"
    )
