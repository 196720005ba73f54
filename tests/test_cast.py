"""One identity per person across a video: stitching, cannot-link clustering, faces linked to bodies,
scenes joined by shared people, the cast file, and `perr build cast` edits on a real build.

The unit tests use hand-made tracks whose answer is worked out by hand; the build tests use the real
clips in ../shared/data (skipped with the reason when absent).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import VIDEO_EXTRA, ffmpeg, shared_file
from perr.construct.cast import Cast, CastMember, make_cast, shot_people
from perr.construct.cast_edits import CastEditError, apply_edits
from perr.construct.segments import segment_shots
from perr.construct.shots import Shot
from perr.faces import FaceBox, Track, TrackedFace, cluster_identities, link_bodies


def _track(
    tid: int, shot: int, times: list[float], x: float, vec: np.ndarray | None = None, w: float = 40
) -> Track:
    t = Track(tid, shot)
    t.faces = [TrackedFace(tt, FaceBox(x, 100, x + w, 100 + w, 0.9)) for tt in times]
    t.embedding = vec
    return t


def _vec(seed: int, noise: float = 0.0, base: int | None = None) -> np.ndarray:
    """A unit-ish 128-d descriptor; `noise` around the vector of `base` (default: `seed`)."""
    v = np.random.default_rng(base if base is not None else seed).normal(size=128)
    v = v / np.linalg.norm(v) * 0.8
    if noise:
        v = v + np.random.default_rng(seed + 1000).normal(size=128) * noise / np.sqrt(128)
    return v.astype(np.float32)


def test_same_person_in_three_shots_is_one_identity_and_two_faces_in_a_frame_are_two() -> None:
    a1, a2, a3 = (_vec(s, 0.2, base=1) for s in (11, 12, 13))  # one person, three looks (distance ~0.28)
    b = _vec(2)
    tracks = [
        _track(0, 0, [0.0, 0.33, 0.67], 50, a1),
        _track(1, 0, [0.0, 0.33, 0.67], 400, b),  # same frames as track 0: another person
        _track(2, 1, [2.0, 2.33], 60, a2),
        _track(3, 2, [4.0, 4.33], 60, a3),
    ]
    groups = cluster_identities(tracks, threshold=0.5)
    ids = sorted(sorted(t.id for t in g) for g in groups)
    assert ids == [[0, 2, 3], [1]]


def test_cannot_link_keeps_look_alikes_apart_when_they_share_a_frame() -> None:
    v = _vec(5)
    tracks = [_track(0, 0, [0.0, 0.33], 50, v), _track(1, 0, [0.33, 0.67], 400, _vec(6, 0.05, base=5))]
    assert len(cluster_identities(tracks, threshold=0.5)) == 2


def test_a_face_lost_for_a_second_is_stitched_but_not_across_a_cut_or_a_jump() -> None:
    tracks = [
        _track(0, 0, [0.0, 0.33, 0.67], 100),  # no descriptors: only stitching can join them
        _track(1, 0, [1.67, 2.0], 110),  # 1 s later, 10 px away: the same face
        _track(2, 0, [2.67, 3.0], 500),  # far away: someone else
        _track(3, 1, [3.5, 3.83], 110),  # next shot: never stitched
    ]
    groups = cluster_identities(tracks, threshold=0.5)
    assert sorted(sorted(t.id for t in g) for g in groups) == [[0, 1], [2], [3]]


def test_faces_are_linked_to_their_bodies_and_a_back_view_is_a_person_of_its_own() -> None:
    face = _track(0, 0, [0.0, 1.0, 2.0], 120, w=30)  # face at x 120–150, y 100–130
    body_of_face = Track(10, 0)
    body_of_face.faces = [TrackedFace(t, FaceBox(90, 90, 180, 360, 0.8)) for t in (0.0, 1.0, 2.0)]
    back = Track(11, 0)  # a person seen from behind: a body with no face in its head region
    back.faces = [TrackedFace(t, FaceBox(400, 80, 500, 360, 0.8)) for t in (0.0, 1.0, 2.0)]
    people = link_bodies([face], [body_of_face, back], next_id=20)
    assert [p.kind for p in people] == ["face+body", "body"]
    assert people[0].bodies[0].box.x0 == 90 and people[1].id == 20 and not people[1].faces


def test_cast_ids_rank_people_by_presence_and_skip_glimpses() -> None:
    a, b = _vec(1), _vec(2)
    tracks = [
        _track(0, 0, [0.0, 0.33], 50, a),
        _track(1, 1, [1.0, 1.33, 1.67, 2.0], 50, b),
        _track(2, 2, [3.0], 50, _vec(3)),  # one sampled frame: a glimpse, no character
    ]
    cast = make_cast(tracks, threshold=0.5, min_occurrences=2)
    assert [(m.id, [t.id for t in m.tracks]) for m in cast.members] == [("c1", [1]), ("c2", [0])]
    assert shot_people(cast) == {1: frozenset({"c1"}), 0: frozenset({"c2"})}


def test_edits_merge_split_and_name_and_refuse_unknown_ids() -> None:
    tracks = [_track(i, i, [float(i)], 0) for i in range(4)]
    cast = Cast(
        [CastMember("c1", tracks[:2]), CastMember("c2", tracks[2:3]), CastMember("c3", tracks[3:])], issued=3
    )
    edited = apply_edits(
        cast,
        [
            {"op": "merge", "into": "c1", "from": ["c3"]},
            {"op": "split", "character": "c1", "tracks": [1]},
            {"op": "name", "character": "c4", "name": "Roxanne"},
        ],
    )
    assert {m.id: sorted(t.id for t in m.tracks) for m in edited.members} == {
        "c1": [0, 3],
        "c2": [2],
        "c4": [1],
    }
    assert edited.by_id("c4").name == "Roxanne" and cast.by_id("c3")  # the original is untouched
    with pytest.raises(CastEditError, match=r"edits\[0\].*c9"):
        apply_edits(cast, [{"op": "merge", "into": "c1", "from": ["c9"]}])
    with pytest.raises(CastEditError, match="not tracks of c2"):
        apply_edits(cast, [{"op": "split", "character": "c2", "tracks": [0]}])


def _shots(bounds: list[float]) -> list[Shot]:
    return [Shot(i, a, b, int(a * 24), int(b * 24)) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


def test_a_three_setup_exchange_of_short_shots_stays_one_scene() -> None:
    """Listener, speaker 1, speaker 2 (1.4 + 4.0 + 3.2 s, three looks, no shared face): one segment,
    and a long unrelated scene after it stays apart."""
    shots = _shots([0.0, 1.4, 5.4, 8.6, 30.0])
    looks = {i: np.eye(4)[i] for i in range(4)}  # four unrelated looks (intersection 0)
    segs = segment_shots(shots, looks, min_similarity=0.5, min_seconds=5.0)
    assert [[s.index for s in seg.shots] for seg in segs] == [[0, 1, 2], [3]]
    assert len(segment_shots(shots, looks, min_similarity=0.5)) == 4  # without the merge: the old cut


def test_shared_people_join_shots_in_one_place_but_not_in_another() -> None:
    shots = _shots([0.0, 6.0, 12.0, 18.0])
    half = np.array([0.5, 0.5, 0.0, 0.0])
    looks = {0: np.array([1.0, 0, 0, 0]), 1: half, 2: np.array([0, 0, 1.0, 0])}
    people = {0: frozenset({"c1"}), 1: frozenset({"c1", "c2"}), 2: frozenset({"c1", "c2"})}
    segs = segment_shots(shots, looks, min_similarity=0.6, people=people)
    # shot 1 shares c1 and looks half alike (0.5 ≥ 0.6 / 2): same scene; shot 2, same people, another place
    assert [[s.index for s in seg.shots] for seg in segs] == [[0, 1], [2]]


# -- on a real build ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def episode_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Megamind, then the Hamilton clip, then Megamind again, as one video: the woman and the man must
    keep their ids from the first clip to the last."""
    pytest.importorskip(*VIDEO_EXTRA)
    from perr.construct.config import BuildConfig
    from perr.construct.run import build

    mm = shared_file("video/opencv/Megamind.avi")
    ham = shared_file("video/face_recognition/short_hamilton_clip.mp4")
    root = tmp_path_factory.mktemp("cast")
    parts = []
    for i, src in enumerate((mm, ham, mm)):
        part = root / f"part{i}.mp4"
        ffmpeg(
            "-i", str(src), "-an", "-vf", "scale=640:360,fps=24,format=yuv420p", "-c:v", "libx264", str(part)
        )
        parts.append(part)
    listing = root / "parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    video = root / "synthetic_concat_megamind_hamilton_megamind.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(video))
    out = root / "out"
    report = build([video], out, BuildConfig(subtitles="none"), show_progress=False)
    assert not report.failures, report.failures
    return out


@pytest.mark.video
@pytest.mark.slow
def test_the_same_people_keep_their_ids_across_clips_of_a_video(episode_build: Path) -> None:
    from perr.manifest import load_manifest

    clips = load_manifest(episode_build / "manifest.jsonl")
    first = [c for c in clips if c.end <= 11.5]
    last = [c for c in clips if c.start >= 20.0]
    assert first and last, [(c.clip_id, c.start, c.end) for c in clips]
    pair_first = set(first[0].candidates[:2])
    pair_last = set(last[-1].candidates[:2])
    assert pair_first == pair_last, (pair_first, pair_last)
    cast = json.loads(
        (episode_build / "characters" / "synthetic_concat_megamind_hamilton_megamind.json").read_text()
    )
    listed = {c["id"]: c for c in cast["characters"]}
    for cid in pair_first:
        assert first[0].clip_id in listed[cid]["clips"] and last[-1].clip_id in listed[cid]["clips"]
        assert listed[cid]["thumbnails"] and all(
            (episode_build / t).exists() for t in listed[cid]["thumbnails"]
        )
    tracks = {t["id"]: t for t in cast["tracks"]}
    assert all(tracks[t]["character"] == cid for cid, c in listed.items() for t in c["tracks"])


@pytest.mark.video
@pytest.mark.slow
def test_cast_edits_rename_and_merge_follow_into_manifest_and_label_studio_tasks(
    episode_build: Path, tmp_path: Path
) -> None:
    import shutil

    from perr.annotate.export import clip_task
    from perr.cli import app
    from perr.manifest import load_manifest

    out = tmp_path / "out"
    shutil.copytree(episode_build, out)
    key = "synthetic_concat_megamind_hamilton_megamind"
    before = {c.clip_id: c for c in load_manifest(out / "manifest.jsonl")}
    pair = next(c for c in before.values() if c.end <= 11.5).candidates[:2]
    runner = CliRunner()
    res = runner.invoke(app, ["build", "cast", str(out), key, "--name", f"{pair[0]}=Roxanne"])
    assert res.exit_code == 0, res.output
    assert "Roxanne" in res.output
    after = load_manifest(out / "manifest.jsonl")
    named = [ch for c in after for ch in c.characters if ch.id == pair[0]]
    assert named and all(ch.name == "Roxanne" for ch in named)
    assert [c.clip_id for c in after] == list(before)  # nothing re-detected: the same clips
    task = clip_task(next(c for c in after if pair[0] in c.candidates), out)
    option = next(o for o in task["data"]["pair_options"] if o["value"] == pair[0])
    assert "Roxanne" in option["html"] and option["html"].count("<img") >= 2  # clip + cast thumbnails
    res = runner.invoke(app, ["build", "cast", str(out), key, "--merge", f"{pair[0]},{pair[1]}"])
    assert res.exit_code == 0, res.output
    merged = json.loads((out / "characters" / f"{key}.json").read_text())
    assert pair[1] not in {c["id"] for c in merged["characters"]}
    res = runner.invoke(app, ["build", "cast", str(out), key, "--merge", f"{pair[0]},c99"])
    assert res.exit_code == 2 and "c99" in res.output
    assert (
        len(json.loads((out / "characters" / f"{key}.edits.json").read_text())) == 2
    )  # the bad one not kept
