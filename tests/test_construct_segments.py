"""Story segments (shot / reverse-shot grouping) and clip windows, on shot lists known by construction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import VIDEO_EXTRA

pytest.importorskip(*VIDEO_EXTRA)

from perr.construct.segments import Segment, ShotLooks, clip_windows, segment_shots
from perr.construct.shots import Shot


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
