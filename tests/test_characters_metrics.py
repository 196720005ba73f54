"""benchmarks/characters_metrics.py on hand-made labels and a hand-made build output (issue 33's cast
layout), every expected figure worked out by hand in the comments."""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks package lives at the repository root
    sys.path.insert(0, str(REPO))
cm = importlib.import_module("benchmarks.characters_metrics")


def test_b_cubed_by_hand() -> None:
    # gold A A A B B, pred 1 1 2 2 2:
    # precision per item 1, 1, 1/3, 2/3, 2/3 -> 11/15; recall per item 2/3, 2/3, 1/3, 1, 1 -> 11/15
    p, r = cm.b_cubed(list("AAABB"), [1, 1, 2, 2, 2])
    assert p == pytest.approx(11 / 15) and r == pytest.approx(11 / 15)
    # one cluster for all: precision (2/3 + 2/3 + 1/3) / 3 = 5/9, recall 1
    assert cm.b_cubed(list("AAB"), [1, 1, 1]) == pytest.approx((5 / 9, 1.0))
    # singletons: precision 1, recall (1/2 + 1/2 + 1) / 3 = 2/3
    assert cm.b_cubed(list("AAB"), [1, 2, 3]) == pytest.approx((1.0, 2 / 3))
    assert cm.b_cubed([], []) == (None, None)


def test_boundaries_one_to_one_within_tolerance() -> None:
    # 4.0-4.13 and 6.4-6.465 match; 9.0 is 0.617 s from 8.383: no
    assert cm.match_boundaries([4.0, 6.4, 9.0], [4.129, 6.465, 8.383], 0.5) == 2
    # two found near one labelled: only one counts
    assert cm.match_boundaries([5.0, 5.1], [5.05], 0.5) == 1
    assert cm.match_boundaries([], [1.0], 0.5) == 0


def test_point_interpolates_between_keyframes() -> None:
    p = cm.Person("a", "yes", 50, [(1.0, 0.2, 0.4), (3.0, 0.6, 0.4)])
    assert p.point(0.0) == (0.2, 0.4)  # before the first: stays
    assert p.point(2.0) == pytest.approx((0.4, 0.4))
    assert p.point(9.0) == (0.6, 0.4)  # after the last: stays


LABELS = {
    "version": 1,
    "videos": [
        {
            "key": "toy",
            "path": "toy.mp4",
            "width": 200,
            "height": 100,
            "shots": [
                {
                    "start": 0.0,
                    "end": 2.0,
                    "people": [
                        {"id": "A", "face": "yes", "face_px": 30, "at": [[1.0, 0.25, 0.5]]},
                        {"id": "B", "face": "yes", "face_px": 60, "at": [[1.0, 0.75, 0.5]]},
                    ],
                    "non_person": [{"what": "face on a screen", "face_px": 10, "at": [[1.0, 0.5, 0.2]]}],
                },
                {
                    "start": 2.0,
                    "end": 4.0,
                    "people": [
                        {"id": "A", "face": "yes", "face_px": 60, "at": [[3.0, 0.5, 0.5]]},
                        {"id": "B", "face": "back", "face_px": None, "at": [[3.0, 0.9, 0.5]]},
                        {"id": "C", "face": "yes", "face_px": 20, "optional": True, "at": [[3.0, 0.1, 0.1]]},
                    ],
                },
            ],
            "scenes": [{"shots": [0, 1], "pair": ["A", "B"]}],
        }
    ],
}


def _track(i: int, character: str | None, kind: str, box: list[float], times: list[float]) -> dict:
    return {
        "id": i,
        "shot": 0,
        "start": times[0],
        "end": times[-1],
        "character": character,
        "kind": kind,
        "face_px": box[3] - box[1],
        "boxes": [[t, *box] for t in times],
    }


def _write_build(out: Path, tracks: list[dict], segments: list[dict], clips: list[dict], done: dict) -> None:
    chars = sorted({t["character"] for t in tracks if t["character"]})
    cast = {
        "version": 1,
        "video": "toy.mp4",
        "key": "toy",
        "characters": [
            {"id": c, "name": None, "seconds": 1.0, "clips": [], "thumbnails": [], "tracks": []}
            for c in chars
        ],
        "tracks": tracks,
    }
    for sub, name, payload in (
        ("characters", "toy.json", cast),
        ("segments", "toy.json", segments),
        ("done", "toy.json", done),
    ):
        (out / sub).mkdir(parents=True, exist_ok=True)
        (out / sub / name).write_text(json.dumps(payload))
    (out / "clips").mkdir(exist_ok=True)
    (out / "clips" / "toy.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))


def test_figures_of_a_hand_made_build(tmp_path: Path) -> None:
    tracks = [
        _track(1, "c1", "face", [40, 40, 60, 60], [0.5, 1.0]),  # A, shot 0
        _track(2, "c2", "body", [130, 20, 170, 95], [0.5, 1.0]),  # B's body only, shot 0
        _track(3, "c3", "face", [95, 15, 105, 25], [0.5, 1.0]),  # the face on the screen
        _track(4, "c1", "face", [90, 40, 110, 60], [2.5, 3.0]),  # A, shot 1
        _track(5, "c1", "body", [170, 20, 195, 90], [2.5, 3.0]),  # B from behind, taken for c1
        _track(6, None, "face", [15, 85, 25, 95], [2.5]),  # nothing labelled there
    ]
    clips = [{"clip_id": "toy_000", "video": "toy.mp4", "start": 0.0, "end": 4.0, "candidates": ["c1", "c2"]}]
    done = {"stage_seconds": {"faces": 0.3}, "counts": {"sampled_frames": 12}}
    _write_build(tmp_path, tracks, [{"index": 0, "start": 0.0, "end": 4.0, "shots": [0, 1]}], clips, done)
    (labels,) = cm.load_labels(LABELS)
    found = cm.read_build(tmp_path, "toy")
    vm = cm.match_video(labels, found)
    assert [s.track.id for s in vm.unmatched] == [6]
    assert [m.segment.track.id for m in vm.non_person] == [3]
    s = cm.summarize([vm])
    # people: A, B in shot 0, A, B in shot 1 (C optional): all four found
    assert s["people_recall"] == 1.0
    # small faces: A in shot 0 (30 px), found with a face track; large: B shot 0 (body track only: no),
    # A shot 1 (yes); B in shot 1 shows his back: not a face
    assert s["counts"]["faces_small"] == 1 and s["face_recall_small"] == 1.0
    assert s["counts"]["faces_large"] == 2 and s["face_recall_large"] == 0.5
    # c3 matched only the screen face
    assert s["false_characters"] == 1 and s["false_characters_nonperson"] == 1
    # identity items: (A,c1) (B,c2) (A,c1) (B,c1):
    # precision 2/3, 1, 2/3, 1/3 -> 2/3; recall 1, 1/2, 1, 1/2 -> 3/4
    assert s["identity_bcubed_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["identity_bcubed_recall"] == pytest.approx(3 / 4, abs=1e-4)
    # one labelled scene, one found segment: no interior boundary on either side
    assert s["scene_boundary_precision"] is None and s["scene_boundary_recall"] is None
    # the clip spans the scene with candidates c1 (mostly A) and c2 (B)
    assert s["pair_recall"] == 1.0 and s["pair_recall_identified"] == 1.0
    assert s["ms_per_sampled_frame"] == 25.0
    assert s["ms_per_sampled_frame_by_stage"] == {"faces": 25.0}
    assert s["videos"]["toy"]["people_recall"] == 1.0


def test_a_split_track_is_a_duplicate_not_a_false_character(tmp_path: Path) -> None:
    tracks = [
        _track(1, "c1", "face", [40, 40, 60, 60], [0.2, 0.5]),  # A, first half of shot 0
        _track(2, "c4", "face", [42, 40, 62, 60], [1.2, 1.5]),  # A again, another id
        _track(3, "c2", "face", [140, 40, 160, 60], [0.5, 1.0]),  # B
    ]
    _write_build(tmp_path, tracks, [{"index": 0, "start": 0.0, "end": 4.0, "shots": [0, 1]}], [], {})
    (labels,) = cm.load_labels(LABELS)
    vm = cm.match_video(labels, cm.read_build(tmp_path, "toy"))
    primary = [m.segment.track.id for m in vm.people if m.primary]
    dupes = [m.segment.track.id for m in vm.people if not m.primary]
    assert sorted(primary) == [1, 3] or sorted(primary) == [2, 3]
    assert len(dupes) == 1
    s = cm.summarize([vm])
    assert s["false_characters"] == 0
    # items (A,c1) (A,c4) (B,c2): precision 1; recall 1/2, 1/2, 1 -> 2/3
    assert s["identity_bcubed_precision"] == 1.0
    assert s["identity_bcubed_recall"] == pytest.approx(2 / 3, abs=1e-4)
    # shot 1's A and B got nothing: people recall 2/4; no clip: pair recall 0
    assert s["people_recall"] == 0.5
    assert s["pair_recall"] == 0.0
    assert s["ms_per_sampled_frame"] is None


def test_a_track_across_a_cut_counts_in_each_shot(tmp_path: Path) -> None:
    # one track from shot 0 (A at x 0.25) into shot 1 (A at x 0.5): two items, one per shot
    t = _track(1, "c1", "face", [40, 40, 60, 60], [0.5, 1.0])
    t["boxes"] += [[2.5, 90, 40, 110, 60], [3.0, 90, 40, 110, 60]]
    _write_build(
        tmp_path,
        [t],
        [
            {"index": 0, "start": 0.0, "end": 2.0, "shots": [0]},
            {"index": 1, "start": 2.0, "end": 4.0, "shots": [1]},
        ],
        [],
        {},
    )
    (labels,) = cm.load_labels(LABELS)
    vm = cm.match_video(labels, cm.read_build(tmp_path, "toy"))
    assert [(m.segment.shot, m.person.id) for m in vm.people] == [(0, "A"), (1, "A")]
    s = cm.summarize([vm])
    # a found boundary at 2.0, none labelled: precision 0/1, recall undefined
    assert s["scene_boundary_precision"] == 0.0 and s["scene_boundary_recall"] is None


def test_gate_keeps_far_boxes_apart() -> None:
    person = cm.Person("A", "yes", 30, [(0.0, 0.25, 0.5)])
    seg = cm.Segment(cm.FoundTrack(1, "c1", "face", []), 0, [(0.0, 100, 40, 120, 60)])
    # the box's nearest edge is 0.25 of the width from the point: beyond the 0.06 gate
    assert cm.segment_cost(seg, person, 200, 100) >= 1e6
    near = cm.Segment(cm.FoundTrack(1, "c1", "body", []), 0, [(0.0, 55, 40, 75, 60)])
    # 5 px left of the box = 0.025 of the width: inside the gate (a body box: no centre rule)
    assert cm.segment_cost(near, person, 200, 100) < 0.1


def test_the_dev_set_labels_parse() -> None:
    videos = cm.load_labels(REPO / "benchmarks" / "devsets" / "characters" / "labels.json")
    keys = [v.key for v in videos]
    assert "Megamind" in keys
    for v in videos:
        for a, b in itertools.pairwise(v.shots):
            assert a.end == pytest.approx(b.start), (v.key, a.index)
        covered = sorted(i for sc in v.scenes for i in sc.shots)
        assert covered == (list(range(len(v.shots))) if v.scenes_labelled else [])
        for sh in v.shots:
            for p in [*sh.people, *sh.non_person]:
                assert all(0 <= x <= 1 and 0 <= y <= 1 for _, x, y in p.at)


def test_a_character_only_inside_an_ignore_region_is_not_false(tmp_path: Path) -> None:
    import copy

    labels = copy.deepcopy(LABELS)
    # shot 1: the bottom-left corner is a dim crowd, labelled as a region, not person by person
    labels["videos"][0]["shots"][1]["ignore"] = [{"box": [0.0, 0.8, 0.3, 1.0], "what": "dim crowd"}]
    tracks = [
        _track(1, "c1", "face", [40, 40, 60, 60], [0.5, 1.0]),  # A
        _track(6, "c9", "face", [15, 85, 25, 95], [2.5, 3.0]),  # centre (0.1, 0.9): inside the region
        _track(7, "c8", "face", [15, 85, 25, 95], [0.5]),  # the same place in shot 0: no region there
    ]
    _write_build(tmp_path, tracks, [{"index": 0, "start": 0.0, "end": 4.0, "shots": [0, 1]}], [], {})
    (lab,) = cm.load_labels(labels)
    vm = cm.match_video(lab, cm.read_build(tmp_path, "toy"))
    assert [s.track.id for s in vm.ignored] == [6]
    assert [s.track.id for s in vm.unmatched] == [7]
    c = cm.video_counts(vm)
    # c1 matched; c9 only in the region: ignored; c8 outside any region: false
    assert (c["characters"], c["characters_ignored"], c["false_characters"]) == (3, 1, 1)


def test_people_of_a_shot_too_short_to_sample_are_not_counted(tmp_path: Path) -> None:
    import copy

    labels = copy.deepcopy(LABELS)
    labels["videos"][0]["shots"][1]["end"] = 2.2  # 0.2 s: may fall between two samples at 3 a second
    tracks = [
        _track(1, "c1", "face", [40, 40, 60, 60], [0.5, 1.0]),
        _track(2, "c2", "face", [140, 40, 160, 60], [0.5, 1.0]),
    ]
    _write_build(tmp_path, tracks, [{"index": 0, "start": 0.0, "end": 2.2, "shots": [0, 1]}], [], {})
    (lab,) = cm.load_labels(labels)
    c = cm.video_counts(cm.match_video(lab, cm.read_build(tmp_path, "toy")), min_shot=0.4)
    # shot 0's A and B only; shot 1's A, B (and the optional C) not counted
    assert (c["people"], c["people_found"], c["shots_too_short"]) == (2, 2, 1)


def test_a_large_face_box_beside_a_face_is_not_that_face() -> None:
    person = cm.Person("A", "yes", 40, [(0.0, 0.25, 0.5)])  # (50, 50) in a 200x100 frame, 40 px face
    # a 60-px box whose corner reaches the point: point-to-box 0 but centre (78, 22), 40 px away:
    # more than max(0.5 x 40, 0.05 x 223.6 = 11.2) = 20 px
    beside = cm.Segment(cm.FoundTrack(1, "c1", "face", []), 0, [(0.0, 48, -8, 108, 52)])
    assert cm.segment_cost(beside, person, 200, 100) >= 1e6
    # the same box as a body track: a body box may well hold the face off its centre
    body = cm.Segment(cm.FoundTrack(1, "c1", "body", []), 0, [(0.0, 48, -8, 108, 52)])
    assert cm.segment_cost(body, person, 200, 100) < 1e6
    # a face box 8 px off the point (< 20 px): still that face
    near = cm.Segment(cm.FoundTrack(1, "c1", "face", []), 0, [(0.0, 38, 28, 78, 68)])
    assert cm.segment_cost(near, person, 200, 100) < 1e6
