"""Segments, clip windows, face tracking/clustering units, and §3.3 statistics on manifests whose
numbers are known by construction."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from perr.build.characters import FaceTracker, Track, TrackedFace, cluster_tracks
from perr.build.faces import FaceBox
from perr.build.segments import Segment, ShotLooks, clip_windows, segment_shots
from perr.build.shots import Shot
from perr.build.stats import compute_stats, dataset_stats, pair_timing
from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan, write_manifest


def _shots(bounds: list[float]) -> list[Shot]:
    return [Shot(i, a, b, int(a * 25), int(b * 25)) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


def _colour(rgb: tuple[int, int, int]) -> np.ndarray:
    img = np.zeros((54, 96, 3), np.uint8)
    img[:] = rgb
    img[20:34, 40:56] = (200, 180, 160)  # a "face" patch shared by every shot
    return img


def test_shot_reverse_shot_is_one_segment_and_a_new_set_starts_another() -> None:
    a, b, c = (150, 40, 40), (40, 40, 150), (40, 160, 40)
    shots = _shots([0, 4, 7, 11, 14, 20, 26])
    looks = ShotLooks()
    for s, col in zip(shots, [a, b, a, b, c, c], strict=True):
        for _ in range(3):
            looks.update(s.index, _colour(col))
    segs = segment_shots(shots, looks, min_similarity=0.5)
    assert [[s.index for s in g.shots] for g in segs] == [[0, 1, 2, 3], [4, 5]]


def test_clip_windows_respect_bounds() -> None:
    seg = Segment(0, tuple(_shots([0, 10, 20, 30, 40, 41, 44])))
    windows, rejects = clip_windows(seg, min_len=5, max_len=35)
    assert [(w.start, w.end) for w in windows] == [(0, 30), (30, 44)] and rejects == []
    windows, rejects = clip_windows(Segment(2, tuple(_shots([50, 53]))), 5, 35)
    assert windows == [] and rejects == [(50, 53, "shorter than 5 s (3.0 s)")]
    long = Segment(1, tuple(_shots([0, 80])))
    windows, _ = clip_windows(long, 5, 35)
    assert [(w.start, w.end) for w in windows] == [(0, 35), (35, 70), (70, 80)]
    with pytest.raises(ValueError):
        clip_windows(seg, 10, 5)


def test_tracker_follows_moving_faces_and_splits_at_shots() -> None:
    img = np.zeros((360, 640, 3), np.uint8)
    tr = FaceTracker(min_faces=2)
    tr.new_shot(0)
    for k in range(4):  # two faces moving right by 30 px per sample (IoU falls, centres stay close)
        tr.update(k / 3, img, [FaceBox(50 + 30 * k, 100, 130 + 30 * k, 180), FaceBox(400, 100, 480, 180)])
    tr.new_shot(1)
    tr.update(2.0, img, [FaceBox(60, 100, 140, 180)])
    tr.update(2.33, img, [FaceBox(62, 100, 142, 180)])
    tr.update(2.66, img, [FaceBox(300, 50, 330, 80)])  # a lone detection: dropped (min_faces)
    tracks = tr.finish()
    assert sorted((t.shot, len(t.faces)) for t in tracks) == [(0, 4), (0, 4), (1, 2)]
    assert all(len(t.crops) <= 2 for t in tracks)


def test_clustering_joins_close_tracks_and_never_same_frame_faces() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=128), rng.normal(size=128)
    a, b = 0.6 * a / np.linalg.norm(a), 0.6 * b / np.linalg.norm(b)  # |a - b| ≈ 0.85

    def track(i: int, shot: int, times: list[float], centre: np.ndarray) -> Track:
        t = Track(i, shot, [TrackedFace(x, FaceBox(0, 0, 50, 50)) for x in times])
        t.embedding = centre + rng.normal(scale=0.02, size=128)
        return t

    tracks = [track(0, 0, [0, 0.3], a), track(1, 1, [1, 1.3], b), track(2, 2, [2, 2.3], a), track(3, 3, [3, 3.3], b),
              track(4, 2, [2, 2.3], a)]  # 4 is a look-alike of 2 in the same frames: must stay apart
    groups = cluster_tracks(tracks, threshold=0.5)
    ids = sorted(sorted(t.id for t in g) for g in groups)
    assert [0, 1] not in ids and [1, 3] in ids
    assert not any({2, 4} <= set(g) for g in ids)


def _clip(cid: str, a: list[tuple[float, float]], b: list[tuple[float, float]], subs: list[tuple[float, float]],
          label: str | None = None, n_shots: int = 2) -> Clip:
    return Clip(
        clip_id=cid, video="v.mp4", start=0.0, end=20.0,
        shots=[TimeSpan(start=i * 20 / n_shots, end=(i + 1) * 20 / n_shots) for i in range(n_shots)],
        characters=[Character(id="A", spans=[TimeSpan(start=s, end=e) for s, e in a], occurrences=5),
                    Character(id="B", spans=[TimeSpan(start=s, end=e) for s, e in b], occurrences=3)],
        candidates=["A", "B"],
        subtitles=[SubtitleEvent(start=s, end=e, text="x") for s, e in subs],
        label=label,
    )


KNOWN = [  # (clip, appearance ratio, IoM mode, subtitle ratio)
    (_clip("alt", [(0, 10)], [(10, 15)], [(0, 5), (4, 10)], "tense", 2), 0.5, "IoM=0", 0.5),
    (_clip("part", [(0, 10)], [(5, 15)], [], "neutral", 3), 1.0, "0<IoM<1", 0.0),
    (_clip("incl", [(0, 20)], [(2, 4), (6, 8)], [(0, 20)], "neutral", 1), 0.2, "IoM=1", 1.0),
]


@pytest.mark.parametrize("clip, ratio, mode, sub", KNOWN, ids=[k[0].clip_id for k in KNOWN])
def test_pair_timing_by_construction(clip: Clip, ratio: float, mode: str, sub: float) -> None:
    from perr.build.stats import subtitle_ratio

    t = pair_timing(clip)
    assert t is not None and t.appearance_ratio == pytest.approx(ratio) and t.mode == mode
    assert subtitle_ratio(clip) == pytest.approx(sub)


def test_stats_json_and_figures(tmp_path: Path) -> None:
    clips = [k[0] for k in KNOWN]
    clips[1] = clips[1].model_copy(update={"pair": ("B", "A")})
    write_manifest(tmp_path / "m.jsonl", clips)
    s = dataset_stats(tmp_path / "m.jsonl", tmp_path / "stats")
    assert s["n_clips"] == 3 and s["duration"]["mean"] == 20.0
    assert s["shots_per_clip"]["mean"] == pytest.approx(2.0)
    assert s["interaction_mode"]["counts"] == {"IoM=0": 1, "0<IoM<1": 1, "IoM=1": 1}
    assert s["appearance_ratio"]["mean"] == pytest.approx((0.5 + 1.0 + 0.2) / 3)
    assert s["subtitle_ratio"]["no_subtitle_share"] == pytest.approx(1 / 3)
    assert s["classes"]["fine"]["neutral"] == {"count": 2, "ratio": pytest.approx(2 / 3)}
    assert s["classes"]["coarse"]["negative"]["count"] == 1
    on_disk = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert on_disk["interaction_mode"] == s["interaction_mode"]
    assert sorted(p.name for p in (tmp_path / "stats").glob("*.png")) == ["fig2_statistics.png",
                                                                          "fig3_interaction_modes.png"]


def test_compute_stats_of_unlabelled_proposals_has_no_class_table() -> None:
    s = compute_stats([KNOWN[0][0].model_copy(update={"label": None})])
    assert s["classes"] is None and s["n_clips"] == 1
