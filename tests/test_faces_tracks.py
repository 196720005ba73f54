"""Face tracks: the streaming tracker and the identity clustering, on boxes and descriptors known by
construction."""

from __future__ import annotations

import numpy as np

from perr.faces import FaceBox, FaceTracker, Track, TrackedFace, cluster_identities


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

    tracks = [
        track(0, 0, [0, 0.3], a),
        track(1, 1, [1, 1.3], b),
        track(2, 2, [2, 2.3], a),
        track(3, 3, [3, 3.3], b),
        track(4, 2, [2, 2.3], a),
    ]  # 4 is a look-alike of 2 in the same frames: must stay apart
    groups = cluster_identities(tracks, threshold=0.5)
    ids = sorted(sorted(t.id for t in g) for g in groups)
    assert [0, 1] not in ids and [1, 3] in ids
    assert not any({2, 4} <= set(g) for g in ids)
